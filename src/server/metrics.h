// MetricsServer: GET /metrics ([admin] metrics) on a thread of its own, so
// that a slow scraper never holds up the control thread's signals. One
// connection at a time, each bounded (8 KiB of request head, 2 s to send it
// and 2 s to take the answer), closed after its answer. The text comes from
// the server's render function (Server::render_metrics), which asks each
// worker for what only it can read and waits for the answers a bounded time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "egw/address.h"
#include "egw/unique_fd.h"

namespace egw::server {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // Binds and listens (at start-up, before privileges are dropped); null
  // with `error` on failure.
  static std::unique_ptr<MetricsServer> bind(const SocketAddress& addr, std::string& error);
  ~MetricsServer();

  void start(Render render);
  const SocketAddress& address() const { return address_; }

 private:
  MetricsServer() = default;
  void run();
  void serve(int fd);

  UniqueFd listen_;
  UniqueFd stop_;  // eventfd: the destructor wakes the thread with it
  SocketAddress address_;
  Render render_;
  std::thread thread_;
};

}  // namespace egw::server

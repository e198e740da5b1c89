// MetricsServer: GET /metrics ([admin] metrics) on a thread of its own, so
// that a slow scraper never holds up the control thread's signals. One
// connection at a time, each bounded (8 KiB of request head, 2 s to send it
// and 2 s to take the answer), closed after its answer. The text comes from
// the server's render function (Server::render_metrics), which asks each
// worker for what only it can read and waits for the answers a bounded time.
#pragma once

#include <atomic>
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
  // Takes over the listening socket a binary upgrade handed over.
  static std::unique_ptr<MetricsServer> adopt(UniqueFd fd, std::string& error);
  ~MetricsServer();

  void start(Render render);
  const SocketAddress& address() const { return address_; }
  int listen_fd() const { return listen_.get(); }
  // After a binary upgrade: accepts no more (the new process does). Any
  // thread.
  void hand_over();

 private:
  MetricsServer() = default;
  void run();
  void serve(int fd);

  UniqueFd listen_;
  UniqueFd stop_;  // eventfd: wakes the thread for stop_flag_ or handed_over_
  std::atomic<bool> stop_flag_{false};
  std::atomic<bool> handed_over_{false};
  SocketAddress address_;
  Render render_;
  std::thread thread_;
};

}  // namespace egw::server

// Connector: one outgoing TCP connect at a time, with a linked timeout (the
// only per-connection kernel timeout the engine uses: a linked timeout is
// detached in O(1), research notes §6). On success the connected,
// non-blocking socket is handed over with take_fd(); a connector can be
// reused for the next attempt (retries) once it has reported.
#pragma once

#include <cstdint>

#include "egw/address.h"
#include "egw/result.h"
#include "egw/unique_fd.h"
#include "uring/event_loop.h"

namespace egw::uring {

class Connector;

class ConnectorHandler {
 public:
  // err: 0, ETIMEDOUT (the linked timeout fired), or the connect errno.
  virtual void on_connect_done(Connector& c, int err) = 0;
  // close() finished and nothing is in flight.
  virtual void on_connector_released(Connector& c) = 0;

 protected:
  ~ConnectorHandler() = default;
};

class Connector final : public Owner {
 public:
  Connector(EventLoop& loop, ConnectorHandler& handler);
  ~Connector() override;

  // Starts connecting to `addr`; the result comes through on_connect_done().
  // Fails at once only when no socket could be created.
  Status connect(const SocketAddress& addr, uint32_t timeout_ms);
  bool connecting() const { return connecting_; }
  // The connected socket, after on_connect_done(…, 0).
  UniqueFd take_fd() { return std::move(fd_); }
  int fd() const { return fd_.get(); }
  // Abandons any attempt in flight; on_connector_released() follows.
  void close();

 private:
  void on_connect(const io_uring_cqe& cqe);
  void on_timeout(const io_uring_cqe& cqe);
  void on_cancel(const io_uring_cqe& cqe);
  void on_released() override;

  EventLoop& loop_;
  ConnectorHandler& handler_;
  Completion connect_, timeout_, cancel_;
  UniqueFd fd_;
  bool connecting_ = false;
  bool closing_ = false;
};

}  // namespace egw::uring

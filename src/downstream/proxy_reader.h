// ProxyReader: the PROXY protocol header at the start of a connection on a
// listener with `proxy_protocol`, read before the connection's session
// exists. The connection's source must be in `trusted`; then the header
// (v1 or v2) must arrive whole within `timeout_ms`. It is peeked at
// (MSG_PEEK: SO_RCVLOWAT makes the poll wake only once the bytes it needs
// can be there) and then exactly its bytes are read, so what follows stays
// in the socket for the session: a TLS handshake, HTTP, or L4 bytes to
// splice. The session then gets the addresses the header carried (or the
// connection's own, for LOCAL / UNKNOWN) and the socket.
//
// A connection from an untrusted source, with a bad header or none in time
// is closed (nothing is written: the peer is not speaking to us yet) and
// counted.
#pragma once

#include <cstdint>

#include "egw/address.h"
#include "egw/unique_fd.h"
#include "src/downstream/session.h"
#include "uring/poll_waiter.h"
#include "uring/timer_wheel.h"

namespace egw::server {
class Worker;
struct WorkerSnapshot;
}  // namespace egw::server

namespace egw::downstream {

// The addresses a PROXY header gave a connection.
struct Proxied {
  SocketAddress src;
  SocketAddress dst;
};

class ProxyReader final : public Session, private uring::PollWaiterHandler {
 public:
  ProxyReader(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener, UniqueFd fd);
  ~ProxyReader() override;

  void start();
  void abort() override { finish(false); }
  // Draining: the header is still read; the session it starts is drained.
  void drain() override {}
  void describe(SessionInfo& out) const override;

  // For the worker once it is done (on_poll_released): the outcome.
  bool ok() const { return ok_; }
  UniqueFd take_fd() { return std::move(fd_); }
  // Null when the header carried no addresses.
  const Proxied* proxied() const { return has_addresses_ ? &addresses_ : nullptr; }
  size_t listener() const { return listener_; }
  server::WorkerSnapshot& snapshot() { return snap_; }

 private:
  void read();
  void finish(bool ok);
  void on_poll_ready(uring::PollWaiter& w, int result) override;
  void on_poll_released(uring::PollWaiter& w) override;

  server::Worker& worker_;
  server::WorkerSnapshot& snap_;
  UniqueFd fd_;
  SocketAddress peer_;  // the connection's own source
  Proxied addresses_;
  uring::PollWaiter poller_;
  uring::Timer timer_;
  uint32_t listener_;
  uint64_t accept_ns_;
  int rcvlowat_ = 0;  // SO_RCVLOWAT set while waiting (0: untouched)
  bool peer_done_ = false;
  bool has_addresses_ = false;
  bool finishing_ = false;
  bool ok_ = false;
};

}  // namespace egw::downstream

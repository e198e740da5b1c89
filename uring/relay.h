// Relay: moves bytes both ways between two connected sockets until both
// directions have seen EOF (each passed on as shutdown(SHUT_WR) of the other
// side, so half-close works) or one fails. Two implementations:
// SpliceRelay (zero-copy through kernel pipes) and CopyRelay (provided
// buffers through user space, when no pipe is free or the kernel lacks splice).
#pragma once

#include <cstdint>

#include "egw/unique_fd.h"

namespace egw::uring {

class Relay;

class RelayHandler {
 public:
  // Both directions finished (err 0) or one failed (err = errno). Nothing is
  // closed yet; the handler calls close().
  virtual void on_relay_done(Relay& r, int err) = 0;
  // Closed and nothing in flight: the relay may be destroyed.
  virtual void on_relay_released(Relay& r) = 0;

 protected:
  ~RelayHandler() = default;
};

class Relay {
 public:
  virtual ~Relay() = default;
  // Takes ownership of two connected, non-blocking sockets and starts.
  virtual void start(UniqueFd a, UniqueFd b) = 0;
  // Stops at once and closes both sockets. Idempotent.
  virtual void close() = 0;
  virtual uint64_t bytes_a_to_b() const = 0;
  virtual uint64_t bytes_b_to_a() const = 0;
  // Loop time (ms) of the last byte moved either way.
  virtual uint64_t last_activity_ms() const = 0;
  virtual bool a_eof() const = 0;
  virtual bool b_eof() const = 0;
};

}  // namespace egw::uring

// Socket set-up helpers (plain system calls, used at start-up and per new
// connection) and the SQE preparation helpers the engine's owners share.
#pragma once

#include <liburing.h>

#include <cstdint>

#include "egw/address.h"
#include "egw/result.h"
#include "egw/unique_fd.h"

namespace egw::uring {

struct ListenOptions {
  bool reuseport = true;  // one listener per worker (research notes §3)
  int backlog = 4096;
  bool v6_only = true;    // "[::]:80" does not also take IPv4
  bool freebind = false;  // IP_FREEBIND: bind before the address exists
};

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen. Non-blocking,
// close-on-exec. Errors name the step ("bind: Address already in use").
Result<UniqueFd> listen_tcp(const SocketAddress& addr, const ListenOptions& options);

// A TCP socket of `family` for an outgoing connection: non-blocking for
// inline system calls (splice), blocking when only io_uring drives it.
Result<UniqueFd> tcp_socket(int family, bool nonblocking = true);

// Latency settings for a proxied TCP socket: TCP_NODELAY.
void tune_tcp(int fd);

}  // namespace egw::uring

// Lane: what a Client hands requests to, one at a time. An HTTP/1.1
// Connection is one lane (no pipelining); an HTTP/2 connection (H2Link) has
// --streams lanes, one per concurrent stream. The Client keeps one FIFO of
// available lanes and does not know which kind it drives.
#pragma once

#include <cstdint>

#include "src/load/stats.h"

namespace egw::load {

class Lane {
 public:
  virtual ~Lane() = default;
  // Opens the connection before the run (keep-alive). Reports to
  // Client::on_available() when connected or failed.
  virtual void preconnect() = 0;
  // Assigns a request (the lane must be available). `measured`: its
  // intended time falls in the measured window. The outcome reaches Stats,
  // then Client::request_ended() and Client::on_available(); either may
  // happen before this returns.
  virtual void start(uint64_t intended_ns, bool measured) = 0;
  // Gives up the request in flight, if any, counting it as `kind`.
  virtual void abandon(ErrorKind kind) = 0;
  // Comes back through Client::on_available() after `ms`.
  virtual void backoff(uint64_t ms) = 0;
  // Closes the connection (FIN); the lane must carry no request.
  virtual void close() = 0;
  // When it last became available (for the generator-lag measurement).
  virtual uint64_t idle_since_ns() const = 0;
};

}  // namespace egw::load

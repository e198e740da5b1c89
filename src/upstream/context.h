// Context: what the upstream side of a session (an HTTP exchange, an L4
// attempt) needs from the worker it runs on. The worker implements it; code
// below the server layer sees only this, never the worker itself.
#pragma once

#include <memory>

#include "src/stats/counters.h"
#include "uring/event_loop.h"

namespace egw::tls {
class ClientContext;
}

namespace egw::upstream {

class EndpointState;
class HttpConnection;
class H2Pool;
class Pool;
struct WorkerCluster;

class Context {
 public:
  virtual uring::EventLoop& loop() = 0;
  virtual stats::WorkerStats& stats() = 0;
  virtual unsigned worker_index() const = 0;
  // The idle-connection pool of an endpoint on this worker, for connections
  // made with `tls` (null: plain): see upstream/pool.h.
  virtual Pool& http_pool(const std::shared_ptr<EndpointState>& ep,
                          const tls::ClientContext* tls) = 0;
  // The HTTP/2 connections to an endpoint on this worker, made with `tls`
  // (null: cleartext, prior knowledge): see upstream/h2_connection.h.
  virtual H2Pool& h2_pool(const std::shared_ptr<EndpointState>& ep, tls::ClientContext* tls) = 0;
  // A new upstream HTTP connection (not yet connected), or nullptr at the cap.
  virtual HttpConnection* new_http_connection(std::shared_ptr<EndpointState> ep, Pool* pool) = 0;
  // A connection slot of `wc`'s cluster freed: serve a waiter here, or wake
  // a worker that has one.
  virtual void slot_freed(WorkerCluster& wc) = 0;

 protected:
  ~Context() = default;
};

}  // namespace egw::upstream

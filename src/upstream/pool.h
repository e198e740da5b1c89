// Pool: the idle keep-alive HTTP/1.1 connections to one endpoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "egw/intrusive_list.h"
#include "src/tls/session.h"
#include "src/upstream/http_connection.h"
#include "uring/event_loop.h"

namespace egw::upstream {

// The idle connections of one endpoint on one worker (LIFO: the most
// recently used is the most likely still open). A worker keeps one pool per
// endpoint and TLS client context: connections in one pool are
// interchangeable (same address, same TLS settings, SNI and ALPN); a reload
// that changes a cluster's TLS gives it new contexts, so connections made
// under the old settings are never handed out again (they idle out).
class Pool {
 public:
  Pool(uring::EventLoop& loop) : loop_(loop) {}
  ~Pool();

  // An idle connection ready for a new exchange, or nullptr: the most
  // recently used one opened with PROXY header `proxy_header` (empty: none).
  // Pools of send_proxy clusters hold connections of many clients; the scan
  // is over the idle ones, at most max_idle.
  HttpConnection* checkout(std::string_view proxy_header = {});
  // Puts `c` back after a clean exchange (kept if below `max_idle`, closed
  // otherwise); it is closed after `idle_timeout_ms` unused.
  void checkin(HttpConnection* c, uint32_t max_idle, uint32_t idle_timeout_ms);
  // An idle connection saw EOF, data or an error: drop it.
  void remove(HttpConnection* c);
  size_t idle() const { return idle_count_; }
  // TLS: the latest resumption state from a connection to this endpoint,
  // offered by the next new one.
  std::shared_ptr<tls::SavedSession> tls_resume;

 private:
  uring::EventLoop& loop_;
  IntrusiveList<HttpConnection, &HttpConnection::pool_node_> idle_;
  size_t idle_count_ = 0;
};

}  // namespace egw::upstream

// WorkerStats: the counters of one worker (read by the control thread at
// exit and by the admin API; relaxed atomics so reads from other threads are
// defined).
#pragma once

#include <atomic>
#include <cstdint>

namespace egw::stats {

struct WorkerStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> refused_no_endpoint{0};
  std::atomic<uint64_t> refused_queue_full{0};
  std::atomic<uint64_t> queued{0};
  std::atomic<uint64_t> queue_timeouts{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> relays_splice{0};
  std::atomic<uint64_t> relays_copy{0};
  std::atomic<uint64_t> bytes_in{0};   // client -> upstream
  std::atomic<uint64_t> bytes_out{0};  // upstream -> client
  // HTTP
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> http_errors{0};       // answered by the proxy with an error status
  std::atomic<uint64_t> http_status[6] = {};  // by class: [2] = 2xx ... [5] = 5xx
  std::atomic<uint64_t> tunnels{0};
  std::atomic<uint64_t> request_timeouts{0};
  std::atomic<uint64_t> response_timeouts{0};
  std::atomic<uint64_t> slow_bodies{0};
  std::atomic<uint64_t> upstream_reused{0};
  std::atomic<uint64_t> upstream_connects{0};
  std::atomic<uint64_t> upstream_refused{0};  // HTTP/2 streams refused unprocessed, sent again
  // TLS
  std::atomic<uint64_t> tls_handshakes{0};  // completed downstream (full + resumed)
  std::atomic<uint64_t> tls_resumed{0};
  std::atomic<uint64_t> tls_failures{0};  // bad, garbage or refused handshakes
  std::atomic<uint64_t> tls_timeouts{0};  // handshakes past handshake_timeout_ms
  std::atomic<uint64_t> tls_upstream_handshakes{0};
  std::atomic<uint64_t> tls_upstream_resumed{0};
  std::atomic<uint64_t> tls_upstream_failures{0};  // including failed verification
  std::atomic<uint64_t> sni_routed{0};             // tcp passthrough sessions routed by SNI
  std::atomic<uint64_t> sni_missing{0};            // ... that had no (parsable) SNI
  // PROXY protocol headers read on listeners that expect them.
  std::atomic<uint64_t> proxy_headers{0};    // accepted (every kind)
  std::atomic<uint64_t> proxy_local{0};      // ... LOCAL / UNKNOWN: the connection's own addresses
  std::atomic<uint64_t> proxy_untrusted{0};  // connections from outside `trusted`, closed
  std::atomic<uint64_t> proxy_invalid{0};    // a bad header (or none), closed
  std::atomic<uint64_t> proxy_timeouts{0};   // no whole header within timeout_ms, closed
  // Access logs.
  std::atomic<uint64_t> access_log_lines{0};         // lines buffered
  std::atomic<uint64_t> access_log_dropped{0};       // lines lost: buffer full, or a failed write
  std::atomic<uint64_t> access_log_write_errors{0};  // writes that failed
};

}  // namespace egw::stats

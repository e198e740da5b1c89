// Latency histograms by phase, per listener and per cluster, kept by each
// worker and merged on demand (SIGUSR1, the metrics endpoint), with the
// responses counted by protocol and status class beside them.
//
//   accept_to_headers  accept (or, on a kept-alive connection, the request's
//                      first byte) to a complete request head
//   tls_handshake      TLS handshake on a downstream connection
//   queue_wait         time in a cluster queue waiting for maxconn
//   connect            upstream TCP connect
//   ttfb               complete request head to the response head from the
//                      endpoint (time to first byte, as the proxy sees it)
//   total              request's first byte to the end of its response
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "egw/histogram.h"

namespace egw::stats {

enum class Phase : uint8_t {
  kAcceptToHeaders,
  kTlsHandshake,
  kQueueWait,
  kConnect,
  kTimeToFirstByte,
  kTotal,
  kCount,
};
const char* to_string(Phase p);

struct PhaseLatency {
  std::array<Histogram, static_cast<size_t>(Phase::kCount)> phases;
  // Responses by protocol (0: HTTP/1.1, 1: HTTP/2; a listener's is the
  // client's, a cluster's the one spoken to its endpoints) and status class
  // (index 1..5). Written by the owning worker only.
  std::array<std::array<uint64_t, 6>, 2> responses{};
  // Counted beside them: a listener's accepted connections; a cluster's
  // failed connects, retries, refusals (no endpoint, queue full) and queue
  // timeouts.
  uint64_t accepted = 0, connect_failures = 0, retries = 0, refused = 0, queue_timeouts = 0;

  void count_response(size_t protocol, uint16_t status) {
    const size_t cls = status / 100;
    if (protocol < 2 && cls >= 1 && cls <= 5) ++responses[protocol][cls];
  }

  void record(Phase p, uint64_t from_ns, uint64_t to_ns) {
    phases[static_cast<size_t>(p)].record(to_ns > from_ns ? (to_ns - from_ns) / 1000 : 0);
  }
  void merge(const PhaseLatency& o) {
    for (size_t i = 0; i < phases.size(); ++i)
      phases[i].merge(o.phases[i]);
    for (size_t p = 0; p < 2; ++p)
      for (size_t c = 0; c < 6; ++c)
        responses[p][c] += o.responses[p][c];
    accepted += o.accepted;
    connect_failures += o.connect_failures;
    retries += o.retries;
    refused += o.refused;
    queue_timeouts += o.queue_timeouts;
  }
  // One line per phase that has samples: "phase n=.. p50=..us p99=.. p99.9=.. max=..".
  std::string summary(const std::string& prefix) const;
};

}  // namespace egw::stats

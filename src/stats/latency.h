// Latency histograms by phase, per listener and per cluster, kept by each
// worker and merged on demand (SIGUSR1 now; the metrics endpoint later).
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

  void record(Phase p, uint64_t from_ns, uint64_t to_ns) {
    phases[static_cast<size_t>(p)].record(to_ns > from_ns ? (to_ns - from_ns) / 1000 : 0);
  }
  void merge(const PhaseLatency& o) {
    for (size_t i = 0; i < phases.size(); ++i)
      phases[i].merge(o.phases[i]);
  }
  // One line per phase that has samples: "phase n=.. p50=..us p99=.. p99.9=.. max=..".
  std::string summary(const std::string& prefix) const;
};

}  // namespace egw::stats

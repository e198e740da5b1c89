#include "src/stats/latency.h"

#include <fmt/format.h>

namespace egw::stats {

const char* to_string(Phase p) {
  switch (p) {
    case Phase::kAcceptToHeaders:
      return "accept_to_headers";
    case Phase::kTlsHandshake:
      return "tls_handshake";
    case Phase::kQueueWait:
      return "queue_wait";
    case Phase::kConnect:
      return "connect";
    case Phase::kTimeToFirstByte:
      return "ttfb";
    case Phase::kTotal:
      return "total";
    case Phase::kCount:
      break;
  }
  return "?";
}

std::string PhaseLatency::summary(const std::string& prefix) const {
  std::string out;
  for (size_t i = 0; i < phases.size(); ++i) {
    const Histogram& h = phases[i];
    if (h.count() == 0) continue;
    out += fmt::format("{} {}: n={} p50={}us p99={}us p99.9={}us max={}us\n", prefix,
                       to_string(static_cast<Phase>(i)), h.count(), h.value_at_percentile(50),
                       h.value_at_percentile(99), h.value_at_percentile(99.9), h.max());
  }
  return out;
}

}  // namespace egw::stats

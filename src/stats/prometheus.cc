#include "src/stats/prometheus.h"

#include <fmt/format.h>

namespace egw::stats {

LatencyBuckets LatencyBuckets::of(const Histogram& h) {
  LatencyBuckets b;
  h.cumulative_counts(kLatencyBoundsUs, kLatencyBuckets, b.cumulative);
  b.count = h.count();
  b.sum_seconds = static_cast<double>(h.sum()) / 1e6;
  return b;
}

void LatencyBuckets::add(const LatencyBuckets& o) {
  for (size_t i = 0; i < kLatencyBuckets; ++i)
    cumulative[i] += o.cumulative[i];
  count += o.count;
  sum_seconds += o.sum_seconds;
}

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Exposition::labels(Labels labels, std::string_view le) {
  if (labels.size() == 0 && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += fmt::format("{}=\"{}\"", k, escape_label(v));
  }
  if (!le.empty()) out_ += fmt::format("{}le=\"{}\"", first ? "" : ",", le);
  out_ += '}';
}

void Exposition::sample(std::string_view name, Labels l, double value) {
  out_ += name;
  labels(l);
  out_ += fmt::format(" {}\n", value);
}

void Exposition::sample(std::string_view name, Labels l, uint64_t value) {
  out_ += name;
  labels(l);
  out_ += fmt::format(" {}\n", value);
}

void Exposition::histogram(std::string_view name, Labels l, const LatencyBuckets& b) {
  for (size_t i = 0; i < kLatencyBuckets; ++i) {
    out_ += fmt::format("{}_bucket", name);
    labels(l, fmt::format("{}", static_cast<double>(kLatencyBoundsUs[i]) / 1e6));
    out_ += fmt::format(" {}\n", b.cumulative[i]);
  }
  out_ += fmt::format("{}_bucket", name);
  labels(l, "+Inf");
  out_ += fmt::format(" {}\n", b.count);
  out_ += fmt::format("{}_sum", name);
  labels(l);
  out_ += fmt::format(" {}\n", b.sum_seconds);
  out_ += fmt::format("{}_count", name);
  labels(l);
  out_ += fmt::format(" {}\n", b.count);
}

}  // namespace egw::stats

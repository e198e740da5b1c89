// The Prometheus text exposition format (version 0.0.4): metric families
// with HELP and TYPE lines, samples with escaped label values, and
// histograms with cumulative buckets, _sum and _count.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "egw/histogram.h"

namespace egw::stats {

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// The phase histograms' bucket bounds, in microseconds: 50 us to 30 s.
inline constexpr uint64_t kLatencyBoundsUs[] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000};
inline constexpr size_t kLatencyBuckets = std::size(kLatencyBoundsUs);

// A histogram reduced to those buckets (what a worker hands the scrape).
struct LatencyBuckets {
  uint64_t cumulative[kLatencyBuckets] = {};
  uint64_t count = 0;
  double sum_seconds = 0;

  static LatencyBuckets of(const Histogram& h);
  void add(const LatencyBuckets& o);
};

class Exposition {
 public:
  // Starts a family; `type` is counter, gauge or histogram. A family is
  // declared once, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, double value);
  void sample(std::string_view name, Labels labels, uint64_t value);
  // `name`_bucket{...,le=...}, `name`_sum, `name`_count.
  void histogram(std::string_view name, Labels labels, const LatencyBuckets& b);

  const std::string& text() const { return out_; }

 private:
  void labels(Labels labels, std::string_view le = {});

  std::string out_;
};

// A label value escaped for the exposition format (\\, \", \n).
std::string escape_label(std::string_view v);

}  // namespace egw::stats

#include "egw/histogram.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>

namespace egw {
namespace {

constexpr unsigned kHdrTicksPerHalfDistance = 5;

// The percentile level after `level` in HdrHistogram's percentile iteration:
// steps of 100 / (ticks * 2^(h+1)) where h is the number of whole halvings
// of the distance to 100% already made, so each halving gets `ticks` lines.
// Computed as HdrHistogram does (natural logs, truncation) so that the levels
// match its output digit for digit. Returns 100 or more when no finite next
// level exists.
double next_percentile_level(double level, unsigned ticks_per_half_distance) {
  const double halvings = std::log(100.0 / (100.0 - level)) / std::log(2.0);
  if (!(halvings < 62)) return 100.0;
  const auto reporting_ticks = static_cast<double>(ticks_per_half_distance) *
                               std::pow(2.0, static_cast<double>(static_cast<int>(halvings) + 1));
  return level + 100.0 / reporting_ticks;
}

// "812 us", "12.345 ms", "1.250 s": the number right-aligned in 10 columns.
std::string format_us(uint64_t us) {
  if (us < 1000) return fmt::format("{:>10} us", us);
  if (us < 1'000'000) return fmt::format("{:>10.3f} ms", static_cast<double>(us) / 1e3);
  return fmt::format("{:>10.3f} s", static_cast<double>(us) / 1e6);
}

}  // namespace

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < kCounters; ++i)
    counts_[i] += other.counts_[i];
  overflow_ += other.overflow_;
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::reset() {
  counts_.fill(0);
  overflow_ = 0;
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

void Histogram::cumulative_counts(const uint64_t* bounds_us, size_t n, uint64_t* out) const {
  uint64_t running = 0;
  size_t i = 0;
  for (size_t b = 0; b < n; ++b) {
    // Through the bucket that holds the bound (it starts at or below it).
    const size_t last = bounds_us[b] > kMaxTrackableUs ? kCounters - 1 : index_of(bounds_us[b]);
    if (count_ != 0) {
      for (; i <= last; ++i)
        running += counts_[i];
    }
    out[b] = running;
  }
}

double Histogram::mean() const {
  return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
}

double Histogram::stddev() const {
  if (count_ == 0) return 0.0;
  const double m = mean();
  double squares = 0;
  for (size_t i = 0; i < kCounters; ++i) {
    if (counts_[i] == 0) continue;
    const double mid = static_cast<double>(lowest_equivalent(i)) +
                       static_cast<double>(highest_equivalent(i) - lowest_equivalent(i)) / 2.0;
    squares += static_cast<double>(counts_[i]) * (mid - m) * (mid - m);
  }
  const double over = static_cast<double>(max_) - m;
  squares += static_cast<double>(overflow_) * over * over;
  return std::sqrt(squares / static_cast<double>(count_));
}

uint64_t Histogram::rank_of(double p) const {
  // The tolerance absorbs the representation error of p itself (99.9 is not
  // exact in binary), which would otherwise push an exact rank up by one.
  const double exact = p / 100.0 * static_cast<double>(count_);
  const double rank = std::ceil(exact - 1e-6);
  if (!(rank >= 1)) return 1;
  if (rank >= static_cast<double>(count_)) return count_;
  return static_cast<uint64_t>(rank);
}

uint64_t Histogram::value_at_percentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p > 0)) return min();
  if (p >= 100) return max_;
  const uint64_t rank = rank_of(p);
  uint64_t seen = 0;
  for (size_t i = 0; i < kCounters; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_equivalent(i), max_);
  }
  return max_;
}

std::string Histogram::percentile_table() const {
  struct Row {
    const char* label;
    double p;
  };
  static constexpr Row kRows[] = {{"p50", 50},     {"p90", 90},       {"p99", 99},
                                  {"p99.9", 99.9}, {"p99.99", 99.99}, {"p99.999", 99.999},
                                  {"max", 100}};
  std::string out;
  for (const Row& r : kRows)
    fmt::format_to(std::back_inserter(out), "{:>8} {}\n", r.label,
                   format_us(value_at_percentile(r.p)));
  return out;
}

void Histogram::write_hdr_percentile_distribution(std::string& out,
                                                  double output_value_unit_scaling) const {
  const double scale = output_value_unit_scaling > 0 ? output_value_unit_scaling : 1.0;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount",
                 "1/(1-Percentile)");

  // Walk the buckets (then the overflowed values, as one bucket at max())
  // in order. Each non-empty bucket prints one line per percentile level
  // that its cumulative count reaches; the bucket that completes the count
  // prints only the first, and a last line at 100% follows.
  if (count_ > 0) {
    const auto total = static_cast<double>(count_);
    double level = 0;
    uint64_t seen = 0;
    uint64_t last_value = 0;
    for (size_t i = 0; i <= kCounters && seen < count_; ++i) {
      const uint64_t n = i < kCounters ? counts_[i] : overflow_;
      if (n == 0) continue;
      seen += n;
      last_value = i < kCounters ? highest_equivalent(i) : max_;
      const double value = static_cast<double>(last_value) / scale;
      while (100.0 * static_cast<double>(seen) / total >= level && level < 100.0) {
        const double fraction = level / 100.0;
        fmt::format_to(it, "{:12.3f} {:2.12f} {:10d} {:14.2f}\n", value, fraction, seen,
                       1.0 / (1.0 - fraction));
        if (seen == count_) break;
        level = next_percentile_level(level, kHdrTicksPerHalfDistance);
      }
    }
    fmt::format_to(it, "{:12.3f} {:2.12f} {:10d}\n", static_cast<double>(last_value) / scale, 1.0,
                   count_);
  }

  fmt::format_to(it, "#[Mean    = {:12.3f}, StdDeviation   = {:12.3f}]\n", mean() / scale,
                 stddev() / scale);
  fmt::format_to(it, "#[Max     = {:12.3f}, Total count    = {:12d}]\n",
                 static_cast<double>(max_) / scale, count_);
  fmt::format_to(it, "#[Buckets = {:12d}, SubBuckets     = {:12d}]\n", kHdrBuckets, kHdrSubBuckets);
}

std::string Histogram::to_json() const {
  return fmt::format(
      "{{\"count\":{},\"min\":{},\"max\":{},\"mean\":{:.3f},\"p50\":{},\"p90\":{},\"p99\":{},"
      "\"p999\":{},\"p9999\":{},\"p99999\":{}}}",
      count_, min(), max_, mean(), value_at_percentile(50), value_at_percentile(90),
      value_at_percentile(99), value_at_percentile(99.9), value_at_percentile(99.99),
      value_at_percentile(99.999));
}

}  // namespace egw

// Histogram: a latency distribution in microseconds with bounded relative
// error, fixed storage and an O(1), allocation-free record().
//
// Layout (log-linear, as in HdrHistogram with 2 significant digits): values
// below 256 have one bucket each (exact); above, each power of two
// [2^(k+7), 2^(k+8)) is cut into 128 equal sub-buckets of width 2^k. A bucket
// is at most 1/128 of its lowest value wide, so any value read back is within
// 0.79% of a value that was recorded in that bucket. 2^26 > 60 s, so 2,560
// counters (20 KiB, inline) cover the range.
//
// Values above kMaxTrackableUs (60 s) are counted in overflow_count() rather
// than a bucket; count(), max() and mean() still include them exactly.
//
// Not thread-safe: one histogram per worker and phase. To combine workers,
// copy each one on its own thread (it is a plain value) and merge() the
// copies elsewhere.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

namespace egw {

class Histogram {
 public:
  static constexpr uint64_t kMaxTrackableUs = 60'000'000;
  // Linear sub-buckets per power of two above the exact range.
  static constexpr unsigned kSubBucketBits = 7;
  // Values below kExactLimit are counted exactly (256).
  static constexpr uint64_t kExactLimit = uint64_t{2} << kSubBucketBits;
  // log2 of the widest bucket (18: buckets of 2^18 us near 60 s).
  static constexpr unsigned kMaxShift =
      static_cast<unsigned>(std::bit_width(kMaxTrackableUs)) - (kSubBucketBits + 1);
  static constexpr size_t kCounters = size_t{kMaxShift + 2} << kSubBucketBits;
  // The same geometry in HdrHistogram's terms (its "Buckets" and
  // "SubBuckets" footer): bucket 0 is [0, 256), bucket k >= 1 the upper half
  // of [0, 2^(k+8)).
  static constexpr unsigned kHdrBuckets = kMaxShift + 1;
  static constexpr unsigned kHdrSubBuckets = unsigned{kExactLimit};

  Histogram() = default;

  // O(1), allocation-free.
  void record(uint64_t value_us) {
    if (value_us <= kMaxTrackableUs) [[likely]]
      ++counts_[index_of(value_us)];
    else
      ++overflow_;
    ++count_;
    sum_ += value_us;
    if (value_us < min_) min_ = value_us;
    if (value_us > max_) max_ = value_us;
  }

  // Adds other's counts to this one (other may be *this).
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t overflow_count() const { return overflow_; }
  // The exact sum of the values (us).
  unsigned __int128 sum() const { return sum_; }
  // For each bound (us, ascending), the values in buckets that start at or
  // below it: within the 0.79% resolution, the count of values <= bound
  // (never fewer). Overflowed values are above every bound. O(buckets).
  void cumulative_counts(const uint64_t* bounds_us, size_t n, uint64_t* out) const;
  // Exact; 0 when empty.
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const;
  // From bucket midpoints (overflowed values count as max()); 0 when empty.
  double stddev() const;

  // The nearest-rank percentile: the smallest recorded value v such that at
  // least p% of the values are <= v (p is clamped to [0, 100]; p = 0 gives
  // min(), p = 100 max()). Returns the highest value of v's bucket, capped at
  // max(), so it is never below the exact answer and at most 0.79% above it.
  // A rank among the overflowed values gives max(). 0 when empty. O(buckets).
  uint64_t value_at_percentile(double p) const;

  // p50, p90, p99, p99.9, p99.99, p99.999 and max, one per line: the label
  // right-aligned in 8 columns, the number in 10, then the unit. Values below
  // 1 ms in us ("812 us"), below 1 s in ms with three decimals
  // ("12.345 ms"), above in s with three decimals ("1.250 s").
  std::string percentile_table() const;

  // Appends the text that HdrHistogram's outputPercentileDistribution writes
  // with 5 percentile ticks per half distance, so that its plotters
  // (plotFiles.html, hdr-plot) read it: a header, one line per percentile
  // tick (value, percentile as a fraction, total count up to it,
  // 1/(1-percentile)), a last line at percentile 1.0, and the
  // Mean/StdDeviation, Max/Total count and Buckets/SubBuckets footer. Values
  // are divided by `output_value_unit_scaling` (1000 prints ms) and printed
  // with 3 decimals, which keeps full resolution when printing ms. Values
  // are bucket tops as HdrHistogram prints them (not capped at max()); the
  // mean is exact.
  void write_hdr_percentile_distribution(std::string& out,
                                         double output_value_unit_scaling = 1.0) const;

  // {"count":..,"min":..,"max":..,"mean":..,"p50":..,"p90":..,"p99":..,
  //  "p999":..,"p9999":..,"p99999":..}: integers in us, mean with three
  // decimals.
  std::string to_json() const;

  // Geometry, for exporters (e.g. Prometheus buckets) and tests.
  static size_t index_of(uint64_t value_us) {
    // k = 0 below kExactLimit, else the shift that leaves 8 significant bits.
    const unsigned k =
        static_cast<unsigned>(std::bit_width(value_us | (kExactLimit - 1))) - (kSubBucketBits + 1);
    return (size_t{k} << kSubBucketBits) + static_cast<size_t>(value_us >> k);
  }
  static uint64_t lowest_equivalent(size_t index) {
    const unsigned k = shift_of(index);
    return static_cast<uint64_t>(index - (size_t{k} << kSubBucketBits)) << k;
  }
  static uint64_t highest_equivalent(size_t index) {
    return lowest_equivalent(index) + (uint64_t{1} << shift_of(index)) - 1;
  }
  uint64_t count_at_index(size_t index) const { return counts_[index]; }

 private:
  static unsigned shift_of(size_t index) {
    return index < kExactLimit ? 0 : static_cast<unsigned>(index >> kSubBucketBits) - 1;
  }
  // 1-based rank of the nearest-rank percentile p among count_ values.
  uint64_t rank_of(double p) const;

  std::array<uint64_t, kCounters> counts_{};
  uint64_t overflow_ = 0;
  uint64_t count_ = 0;
  unsigned __int128 sum_ = 0;  // exact even for 2^64 values near 2^64
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace egw

// The Prometheus exposition writer and the histogram reduction it exports:
// families, escaping, cumulative buckets against a brute-force count.
#include "src/stats/prometheus.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace egw::stats {
namespace {

TEST(Prometheus, FamiliesSamplesAndEscapedLabels) {
  Exposition x;
  x.family("egw_things_total", "counter", "Things.");
  x.sample("egw_things_total", {}, uint64_t{3});
  x.sample("egw_things_total", {{"name", "a\"b\\c\nd"}, {"kind", "x"}}, uint64_t{4});
  x.family("egw_ratio", "gauge", "A ratio.");
  x.sample("egw_ratio", {}, 0.25);
  EXPECT_EQ(x.text(),
            "# HELP egw_things_total Things.\n"
            "# TYPE egw_things_total counter\n"
            "egw_things_total 3\n"
            "egw_things_total{name=\"a\\\"b\\\\c\\nd\",kind=\"x\"} 4\n"
            "# HELP egw_ratio A ratio.\n"
            "# TYPE egw_ratio gauge\n"
            "egw_ratio 0.25\n");
}

TEST(Prometheus, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Histogram h;
  for (uint64_t v : {10u, 60u, 60u, 400u, 2'000'000u})
    h.record(v);
  h.record(90'000'000);  // past 60 s: overflow, above every bound
  const LatencyBuckets b = LatencyBuckets::of(h);
  EXPECT_EQ(b.count, 6u);
  EXPECT_DOUBLE_EQ(b.sum_seconds, (10 + 60 + 60 + 400 + 2'000'000 + 90'000'000) / 1e6);
  EXPECT_EQ(b.cumulative[0], 1u);   // <= 50 us
  EXPECT_EQ(b.cumulative[1], 3u);   // <= 100 us
  EXPECT_EQ(b.cumulative[3], 4u);   // <= 500 us
  EXPECT_EQ(b.cumulative[13], 4u);  // <= 1 s
  EXPECT_EQ(b.cumulative[14], 5u);  // <= 2.5 s
  EXPECT_EQ(b.cumulative[kLatencyBuckets - 1], 5u);
  Exposition x;
  x.family("egw_phase_seconds", "histogram", "Latency.");
  x.histogram("egw_phase_seconds", {{"phase", "total"}}, b);
  const std::string& t = x.text();
  EXPECT_NE(t.find("egw_phase_seconds_bucket{phase=\"total\",le=\"5e-05\"} 1\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("egw_phase_seconds_bucket{phase=\"total\",le=\"30\"} 5\n"), std::string::npos);
  EXPECT_NE(t.find("egw_phase_seconds_bucket{phase=\"total\",le=\"+Inf\"} 6\n"), std::string::npos);
  EXPECT_NE(t.find("egw_phase_seconds_count{phase=\"total\"} 6\n"), std::string::npos);
  EXPECT_NE(t.find("egw_phase_seconds_sum{phase=\"total\"} 92.00053\n"), std::string::npos) << t;
}

TEST(Prometheus, CumulativeCountsMatchABruteForceCountWithinTheResolution) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> values;
  Histogram h;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t v = rng() % 40'000'000 >> (rng() % 20);
    values.push_back(v);
    h.record(v);
  }
  uint64_t out[kLatencyBuckets];
  h.cumulative_counts(kLatencyBoundsUs, kLatencyBuckets, out);
  for (size_t b = 0; b < kLatencyBuckets; ++b) {
    const uint64_t bound = kLatencyBoundsUs[b];
    uint64_t at_most = 0, within = 0;  // <= bound, and <= bound + 0.79%
    for (uint64_t v : values) {
      at_most += v <= bound;
      within += v <= bound + bound / 127;
    }
    EXPECT_GE(out[b], at_most) << bound;
    EXPECT_LE(out[b], within) << bound;
    if (b) {
      EXPECT_GE(out[b], out[b - 1]);
    }
  }
  // An empty histogram: zeros.
  Histogram empty;
  empty.cumulative_counts(kLatencyBoundsUs, kLatencyBuckets, out);
  for (uint64_t c : out)
    EXPECT_EQ(c, 0u);
}

}  // namespace
}  // namespace egw::stats

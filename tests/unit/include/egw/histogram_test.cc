#include "egw/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace egw {
namespace {

// Log-uniform values over [1 us, 60 s].
std::vector<uint64_t> log_uniform(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exponent(0.0,
                                                  std::log(double(Histogram::kMaxTrackableUs)));
  std::vector<uint64_t> v(n);
  for (auto& x : v)
    x = std::max<uint64_t>(1, static_cast<uint64_t>(std::exp(exponent(rng))));
  return v;
}

// The nearest-rank percentile of sorted values, as value_at_percentile
// defines it.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  if (p <= 0) return sorted.front();
  const double r = std::ceil(p / 100.0 * double(sorted.size()) - 1e-6);
  const size_t rank = std::clamp<size_t>(r < 1 ? 1 : size_t(r), 1, sorted.size());
  return sorted[rank - 1];
}

const double kPercentiles[] = {0,  0.1,  1,    10,    25,     50,      75,       90, 95,
                               99, 99.5, 99.9, 99.99, 99.999, 99.9999, 99.99999, 100};

TEST(Histogram, GeometryRoundTrips) {
  EXPECT_EQ(Histogram::kCounters, 2560u);
  EXPECT_EQ(Histogram::kHdrBuckets, 19u);
  EXPECT_EQ(Histogram::kHdrSubBuckets, 256u);
  EXPECT_LT(Histogram::index_of(Histogram::kMaxTrackableUs), Histogram::kCounters);
  EXPECT_EQ(Histogram::index_of((uint64_t{1} << 26) - 1), Histogram::kCounters - 1);
  for (uint64_t v = 0; v < 256; ++v)
    EXPECT_EQ(Histogram::index_of(v), v);
  for (uint64_t v = 0; v < 256; ++v)
    EXPECT_EQ(Histogram::highest_equivalent(Histogram::index_of(v)), v);
  size_t prev = 0;
  for (size_t i = 0; i < Histogram::kCounters; ++i) {
    const uint64_t lo = Histogram::lowest_equivalent(i);
    const uint64_t hi = Histogram::highest_equivalent(i);
    ASSERT_EQ(Histogram::index_of(lo), i);
    ASSERT_EQ(Histogram::index_of(hi), i);
    if (i > 0) {
      ASSERT_EQ(Histogram::highest_equivalent(prev) + 1, lo) << "gap before " << i;
    }
    // Bucket width relative to its lowest value: the error bound.
    if (lo > 0) {
      ASSERT_LE(double(hi - lo) / double(lo), 1.0 / 128) << i;
    }
    prev = i;
  }
}

TEST(Histogram, PercentilesWithinOnePercentOfExactOrderStatistics) {
  auto values = log_uniform(100000, 17);
  Histogram h;
  for (uint64_t v : values)
    h.record(v);
  std::sort(values.begin(), values.end());
  for (double p : kPercentiles) {
    const uint64_t exact = exact_percentile(values, p);
    const uint64_t got = h.value_at_percentile(p);
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(double(got - exact) / double(exact), 0.01) << "p" << p << " exact " << exact;
  }
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  double sum = 0;
  for (uint64_t v : values)
    sum += double(v);
  EXPECT_NEAR(h.mean(), sum / double(values.size()), 1e-6 * h.mean());
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v)
    h.record(v);
  EXPECT_EQ(h.value_at_percentile(50), 50u);
  EXPECT_EQ(h.value_at_percentile(99), 99u);
  EXPECT_EQ(h.value_at_percentile(99.9), 100u);
  EXPECT_EQ(h.value_at_percentile(1), 1u);
  EXPECT_EQ(h.value_at_percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(Histogram, PercentilesAreMonotonic) {
  const auto values = log_uniform(20000, 3);
  Histogram h;
  for (uint64_t v : values)
    h.record(v);
  uint64_t prev = 0;
  for (double p = 0; p <= 100; p += 0.01) {
    const uint64_t v = h.value_at_percentile(p);
    ASSERT_GE(v, prev) << "p" << p;
    prev = v;
  }
  EXPECT_EQ(prev, h.max());
  EXPECT_EQ(h.value_at_percentile(-5), h.min());
  EXPECT_EQ(h.value_at_percentile(250), h.max());
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  const auto values = log_uniform(30000, 5);
  Histogram all, parts[3];
  for (size_t i = 0; i < values.size(); ++i) {
    all.record(values[i]);
    parts[i % 3].record(values[i]);
  }
  all.record(Histogram::kMaxTrackableUs * 2);
  parts[1].record(Histogram::kMaxTrackableUs * 2);
  Histogram merged;
  for (const auto& p : parts)
    merged.merge(p);
  for (size_t i = 0; i < Histogram::kCounters; ++i)
    ASSERT_EQ(merged.count_at_index(i), all.count_at_index(i));
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.overflow_count(), 1u);
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.mean(), all.mean());
  EXPECT_EQ(merged.to_json(), all.to_json());
  std::string a, b;
  merged.write_hdr_percentile_distribution(a);
  all.write_hdr_percentile_distribution(b);
  EXPECT_EQ(a, b);

  Histogram empty;
  merged.merge(empty);
  EXPECT_EQ(merged.min(), all.min());
  empty.merge(merged);
  EXPECT_EQ(empty.to_json(), all.to_json());
}

TEST(Histogram, ValuesAboveSixtySecondsAreClampedButKeepTheirMax) {
  Histogram h;
  for (int i = 0; i < 98; ++i)
    h.record(1000);
  h.record(Histogram::kMaxTrackableUs);  // the last tracked value
  h.record(3'600'000'000);               // an hour
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.overflow_count(), 1u);
  EXPECT_EQ(h.max(), 3'600'000'000u);
  EXPECT_EQ(h.value_at_percentile(100), 3'600'000'000u);
  // Rank 100 is the overflowed value: reported as max().
  EXPECT_EQ(h.value_at_percentile(99.5), 3'600'000'000u);
  const uint64_t p99 = h.value_at_percentile(99);  // rank 99: 60 s
  EXPECT_GE(p99, Histogram::kMaxTrackableUs);
  EXPECT_LE(p99, Histogram::kMaxTrackableUs * 1.01);
  EXPECT_EQ(h.value_at_percentile(50), 1003u);  // bucket [1000, 1003]
  EXPECT_NEAR(h.mean(), (98 * 1000.0 + 60e6 + 3.6e9) / 100, 1e-6);
  h.record(UINT64_MAX);
  EXPECT_EQ(h.max(), UINT64_MAX);
  EXPECT_GT(h.mean(), 1e17);
}

TEST(Histogram, EmptyOutputs) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.stddev(), 0.0);
  EXPECT_EQ(h.value_at_percentile(50), 0u);
  EXPECT_EQ(h.to_json(),
            "{\"count\":0,\"min\":0,\"max\":0,\"mean\":0.000,\"p50\":0,\"p90\":0,\"p99\":0,"
            "\"p999\":0,\"p9999\":0,\"p99999\":0}");
  const std::string table = h.percentile_table();
  EXPECT_NE(table.find("p99.999"), std::string::npos);
  EXPECT_NE(table.find("         0 us"), std::string::npos);
  std::string hdr;
  h.write_hdr_percentile_distribution(hdr);
  EXPECT_EQ(hdr,
            "       Value     Percentile TotalCount 1/(1-Percentile)\n"
            "\n"
            "#[Mean    =        0.000, StdDeviation   =        0.000]\n"
            "#[Max     =        0.000, Total count    =            0]\n"
            "#[Buckets =           19, SubBuckets     =          256]\n");
}

TEST(Histogram, ResetEmpties) {
  Histogram h;
  h.record(5);
  h.record(Histogram::kMaxTrackableUs + 1);
  h.reset();
  Histogram fresh;
  EXPECT_EQ(h.to_json(), fresh.to_json());
  EXPECT_EQ(h.overflow_count(), 0u);
  h.record(7);
  EXPECT_EQ(h.min(), 7u);
  EXPECT_EQ(h.max(), 7u);
}

TEST(Histogram, JsonAndTable) {
  Histogram h;
  for (uint64_t v = 1; v <= 1000; ++v)
    h.record(v * 1000);  // 1 ms .. 1 s
  EXPECT_EQ(h.to_json(),
            "{\"count\":1000,\"min\":1000,\"max\":1000000,\"mean\":500500.000,\"p50\":501759,"
            "\"p90\":901119,\"p99\":991231,\"p999\":999423,\"p9999\":1000000,\"p99999\":1000000}");
  const std::string table = h.percentile_table();
  EXPECT_NE(table.find("     p50    501.759 ms\n"), std::string::npos) << table;
  EXPECT_NE(table.find("     max      1.000 s\n"), std::string::npos) << table;
  Histogram small;
  small.record(812);
  EXPECT_NE(small.percentile_table().find("        812 us\n"), std::string::npos);
}

struct HdrLine {
  double value;
  double percentile;
  uint64_t total;
};

// Parses the HDR percentile text back: the rows, and the footer's count.
std::vector<HdrLine> parse_hdr(const std::string& text, uint64_t* footer_count, double* max) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "       Value     Percentile TotalCount 1/(1-Percentile)");
  std::getline(in, line);
  EXPECT_EQ(line, "");
  std::vector<HdrLine> rows;
  while (std::getline(in, line)) {
    if (line.starts_with("#[")) {
      double a = 0;
      unsigned long long b = 0;
      if (std::sscanf(line.c_str(), "#[Max     = %lf, Total count    = %llu]", &a, &b) == 2) {
        *max = a;
        *footer_count = b;
      }
      continue;
    }
    HdrLine r{};
    double inverse = 0;
    unsigned long long total = 0;
    const int n =
        std::sscanf(line.c_str(), "%lf %lf %llu %lf", &r.value, &r.percentile, &total, &inverse);
    r.total = total;
    EXPECT_TRUE(n == 4 || (n == 3 && r.percentile == 1.0)) << line;
    if (n == 4) {
      EXPECT_NEAR(inverse, 1 / (1 - r.percentile), 0.01) << line;
    }
    rows.push_back(r);
  }
  return rows;
}

TEST(Histogram, HdrPercentileDistributionParsesBack) {
  const auto values = log_uniform(100000, 23);
  Histogram h;
  for (uint64_t v : values)
    h.record(v);
  std::string text;
  h.write_hdr_percentile_distribution(text, 1000.0);  // in ms
  uint64_t footer_count = 0;
  double max_ms = 0;
  const auto rows = parse_hdr(text, &footer_count, &max_ms);
  ASSERT_GT(rows.size(), 50u);
  EXPECT_EQ(rows.back().total, h.count());
  EXPECT_EQ(rows.back().percentile, 1.0);
  EXPECT_EQ(footer_count, h.count());
  EXPECT_NEAR(max_ms, double(h.max()) / 1000, 0.001);
  EXPECT_EQ(rows.front().percentile, 0.0);
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_GE(rows[i].value, rows[i - 1].value) << i;
    ASSERT_GT(rows[i].percentile, rows[i - 1].percentile) << i;
    ASSERT_GE(rows[i].total, rows[i - 1].total) << i;
  }
  // Every row's value is the histogram's answer at its percentile, give or
  // take the bucket top that HdrHistogram prints.
  for (const auto& r : rows) {
    if (r.percentile == 0 || r.percentile == 1) continue;
    const double at = double(h.value_at_percentile(r.percentile * 100)) / 1000;
    ASSERT_NEAR(r.value, at, at * 0.01 + 0.001) << r.percentile;
  }
  // The ticks halve the distance to 100% every 5 rows: 0, 10 .. 50, 55 .. 75,
  // 77.5 .. 87.5, and so on.
  const double expected[] = {0, .1, .2, .3, .4, .5, .55, .6, .65, .7, .75, .775, .8};
  for (size_t i = 0; i < std::size(expected); ++i)
    EXPECT_DOUBLE_EQ(rows[i].percentile, expected[i]) << i;
}

TEST(Histogram, HdrPercentileDistributionOfFourValues) {
  // 100, 200 and 250 us have buckets of their own; 600 us is in [600, 603].
  Histogram h;
  for (uint64_t v : {100, 200, 250, 600})
    h.record(v);
  std::string text;
  h.write_hdr_percentile_distribution(text);
  EXPECT_EQ(text,
            "       Value     Percentile TotalCount 1/(1-Percentile)\n"
            "\n"
            "     100.000 0.000000000000          1           1.00\n"
            "     100.000 0.100000000000          1           1.11\n"
            "     100.000 0.200000000000          1           1.25\n"
            "     200.000 0.300000000000          2           1.43\n"
            "     200.000 0.400000000000          2           1.67\n"
            "     200.000 0.500000000000          2           2.00\n"
            "     250.000 0.550000000000          3           2.22\n"
            "     250.000 0.600000000000          3           2.50\n"
            "     250.000 0.650000000000          3           2.86\n"
            "     250.000 0.700000000000          3           3.33\n"
            "     250.000 0.750000000000          3           4.00\n"
            "     603.000 0.775000000000          4           4.44\n"
            "     603.000 1.000000000000          4\n"
            "#[Mean    =      287.500, StdDeviation   =      188.954]\n"
            "#[Max     =      600.000, Total count    =            4]\n"
            "#[Buckets =           19, SubBuckets     =          256]\n");
}

}  // namespace
}  // namespace egw

// Histogram: record() (on every request, per phase) must cost a few ns and
// allocate nothing; queries and merges happen off the hot path.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "egw/histogram.h"

namespace {

// Log-uniform latencies from 1 us to 60 s; a power of two long for masking.
std::vector<uint64_t> latencies() {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> exponent(0.0, std::log(6e7));
  std::vector<uint64_t> v(4096);
  for (auto& x : v)
    x = static_cast<uint64_t>(std::exp(exponent(rng)));
  return v;
}

void BM_HistogramRecord(benchmark::State& state) {
  const auto values = latencies();
  egw::Histogram h;
  size_t i = 0;
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    h.record(values[i]);
    i = (i + 1) & (values.size() - 1);
  }
  benchmark::DoNotOptimize(h.count());
  allocs.report(state);
}
BENCHMARK(BM_HistogramRecord);

void BM_HistogramValueAtPercentile(benchmark::State& state) {
  egw::Histogram h;
  for (uint64_t v : latencies())
    h.record(v);
  egw::bench::AllocCounter allocs;
  for (auto _ : state)
    benchmark::DoNotOptimize(h.value_at_percentile(99.9));
  allocs.report(state);
}
BENCHMARK(BM_HistogramValueAtPercentile);

void BM_HistogramMerge(benchmark::State& state) {
  egw::Histogram a, b;
  for (uint64_t v : latencies())
    b.record(v);
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    a.merge(b);
    benchmark::DoNotOptimize(a.count());
  }
  allocs.report(state);
}
BENCHMARK(BM_HistogramMerge);

void BM_HistogramHdrText(benchmark::State& state) {
  egw::Histogram h;
  for (uint64_t v : latencies())
    h.record(v);
  std::string out;
  for (auto _ : state) {
    out.clear();
    h.write_hdr_percentile_distribution(out, 1000.0);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HistogramHdrText)->Unit(benchmark::kMicrosecond);

}  // namespace

// What a worker does per phase histogram for a metrics scrape: the 18
// Prometheus buckets from 2,560 counters.
void BM_HistogramCumulativeCounts(benchmark::State& state) {
  egw::Histogram h;
  for (uint64_t v : latencies())
    h.record(v);
  static constexpr uint64_t kBounds[] = {50,     100,     250,     500,     1000,     2500,
                                         5000,   10000,   25000,   50000,   100000,   250000,
                                         500000, 1000000, 2500000, 5000000, 10000000, 30000000};
  uint64_t out[std::size(kBounds)];
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    h.cumulative_counts(kBounds, std::size(kBounds), out);
    benchmark::DoNotOptimize(out[0]);
  }
  allocs.report(state);
}
BENCHMARK(BM_HistogramCumulativeCounts);

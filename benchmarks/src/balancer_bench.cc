// Balancers: the cost of one pick (the per-connection cost of load balancing)
// for each algorithm with 4 and 64 endpoints, and of rebuilding the Maglev
// table. Picks must show 0 allocs.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "src/balancer/balancer.h"
#include "src/balancer/maglev.h"

namespace {

using egw::balancer::Algorithm;
using egw::balancer::Candidate;

// n endpoints with mixed weights and loads; every `down_every`-th is down.
std::vector<Candidate> make_candidates(size_t n, size_t down_every = 0) {
  std::mt19937 rng(1);
  std::vector<Candidate> c(n);
  for (size_t i = 0; i < n; ++i)
    c[i] = {static_cast<uint32_t>(1 + rng() % 4), static_cast<uint32_t>(rng() % 50),
            down_every == 0 || i % down_every != 0};
  return c;
}

std::vector<uint32_t> weights_of(const std::vector<Candidate>& c) {
  std::vector<uint32_t> w;
  for (const auto& e : c)
    w.push_back(e.weight);
  return w;
}

// Each pick opens a connection on the chosen endpoint and closes one on a
// rotating endpoint, so loads keep moving as they do in a proxy.
void run_picks(benchmark::State& state, egw::balancer::Balancer& b, std::vector<Candidate>& c) {
  uint64_t key = 0;
  size_t closer = 0;
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    key += 0x9e3779b97f4a7c15ull;  // a new client each time
    const int p = b.pick(c, key);
    benchmark::DoNotOptimize(p);
    if (p >= 0) ++c[static_cast<size_t>(p)].active;
    if (c[closer].active > 0) --c[closer].active;
    if (++closer == c.size()) closer = 0;
  }
  allocs.report(state);
}

void BM_Pick(benchmark::State& state, Algorithm a) {
  auto c = make_candidates(static_cast<size_t>(state.range(0)));
  auto b = egw::balancer::make_balancer(a, 1);
  b->reset(weights_of(c));
  run_picks(state, *b, c);
}
BENCHMARK_CAPTURE(BM_Pick, round_robin, Algorithm::kRoundRobin)->Arg(4)->Arg(64);
BENCHMARK_CAPTURE(BM_Pick, weighted_round_robin, Algorithm::kWeightedRoundRobin)->Arg(4)->Arg(64);
BENCHMARK_CAPTURE(BM_Pick, least_connections, Algorithm::kLeastConnections)->Arg(4)->Arg(64);
BENCHMARK_CAPTURE(BM_Pick, random, Algorithm::kRandom)->Arg(4)->Arg(64);
BENCHMARK_CAPTURE(BM_Pick, source_hash, Algorithm::kSourceHash)->Arg(4)->Arg(64);

// A quarter of the endpoints down: Maglev walks past their slots.
void BM_MaglevPickQuarterDown(benchmark::State& state) {
  auto c = make_candidates(static_cast<size_t>(state.range(0)), 4);
  egw::balancer::Maglev m;
  m.reset(weights_of(c));
  run_picks(state, m, c);
}
BENCHMARK(BM_MaglevPickQuarterDown)->Arg(64);

// Table rebuild (M = 65537) after a configuration change; not on the hot path.
void BM_MaglevRebuild(benchmark::State& state) {
  const auto c = make_candidates(static_cast<size_t>(state.range(0)));
  const auto w = weights_of(c);
  std::vector<uint32_t> equal(w.size(), 1);
  egw::balancer::Maglev m;
  egw::bench::AllocCounter allocs;
  for (auto _ : state)
    m.reset(state.range(1) ? w : equal);
  allocs.report(state);
}
BENCHMARK(BM_MaglevRebuild)
    ->ArgNames({"endpoints", "weighted"})
    ->Args({64, 0})
    ->Args({64, 1})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

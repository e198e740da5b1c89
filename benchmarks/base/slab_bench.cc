// Slab pool: create/destroy cost and allocations on the hot path.
#include <benchmark/benchmark.h>

#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "egw/slab.h"

namespace {

struct Session {
  char bytes[512];
};

void BM_SlabCreateDestroy(benchmark::State& state) {
  egw::SlabPool<Session> pool(1024);
  pool.reserve(1024);
  std::vector<Session*> live;
  live.reserve(64);
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    for (int i = 0; i < 64; ++i)
      live.push_back(pool.create());
    for (Session* s : live)
      pool.destroy(s);
    live.clear();
  }
  state.SetItemsProcessed(state.iterations() * 64);
  allocs.report(state);
}
BENCHMARK(BM_SlabCreateDestroy);

void BM_NewDelete(benchmark::State& state) {
  std::vector<Session*> live;
  live.reserve(64);
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    for (int i = 0; i < 64; ++i)
      live.push_back(new Session);
    for (Session* s : live)
      delete s;
    live.clear();
  }
  state.SetItemsProcessed(state.iterations() * 64);
  allocs.report(state);
}
BENCHMARK(BM_NewDelete);

}  // namespace

// Counts heap allocations (malloc, calloc, realloc, operator new) made by the
// process, so that a benchmark can report allocations per iteration:
//
//   AllocCounter allocs;
//   for (auto _ : state) { ... }
//   allocs.report(state);   // state.counters["allocs"] = allocations / iteration
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace egw::bench {

uint64_t allocations();

class AllocCounter {
 public:
  AllocCounter() : start_(allocations()) {}
  uint64_t count() const { return allocations() - start_; }
  void report(benchmark::State& state) const {
    state.counters["allocs"] =
        benchmark::Counter(static_cast<double>(count()), benchmark::Counter::kAvgIterations);
  }

 private:
  uint64_t start_;
};

}  // namespace egw::bench

// Timer wheel: schedule/cancel (the per-event cost of idle timeouts) and
// expiry, with 10k and 100k armed timers; allocations per operation.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "uring/timer_wheel.h"

namespace {

using egw::uring::Timer;
using egw::uring::TimerWheel;

void BM_TimerReschedule(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  TimerWheel wheel(0);
  std::vector<Timer> timers(n);
  std::mt19937_64 rng(1);
  for (auto& t : timers)
    wheel.schedule(t, 1 + rng() % 60000);
  size_t i = 0;
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    // An idle timeout pushed back on activity: the commonest timer operation.
    wheel.schedule(timers[i], 30000 + (i & 1023));
    if (++i == n) i = 0;
  }
  allocs.report(state);
}
BENCHMARK(BM_TimerReschedule)->Arg(10000)->Arg(100000);

void BM_TimerScheduleCancel(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  TimerWheel wheel(0);
  std::vector<Timer> background(n);
  std::mt19937_64 rng(2);
  for (auto& t : background)
    wheel.schedule(t, 1 + rng() % 60000);
  Timer t;
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    wheel.schedule(t, 5000);
    wheel.cancel(t);
  }
  allocs.report(state);
}
BENCHMARK(BM_TimerScheduleCancel)->Arg(10000)->Arg(100000);

void BM_TimerExpire(benchmark::State& state) {
  // 10k timers spread over 10 s, fired by advancing 1 ms at a time.
  const size_t n = 10000;
  std::vector<Timer> timers(n);
  uint64_t fired = 0;
  for (auto& t : timers)
    t.set_callback([&fired] { ++fired; });
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    state.PauseTiming();
    TimerWheel wheel(0);
    for (size_t i = 0; i < n; ++i)
      wheel.schedule(timers[i], 1 + (i * 7919) % 10000);
    state.ResumeTiming();
    for (uint64_t now = 1; now <= 10000; ++now)
      wheel.advance(now);
  }
  state.SetItemsProcessed(static_cast<int64_t>(fired));
  allocs.report(state);
}
BENCHMARK(BM_TimerExpire)->Unit(benchmark::kMillisecond);

}  // namespace

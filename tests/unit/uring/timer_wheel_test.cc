#include "uring/timer_wheel.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <utility>
#include <vector>

namespace egw::uring {
namespace {

TEST(TimerWheel, FiresInDeadlineOrderAcrossLevels) {
  TimerWheel w(1000);
  std::vector<uint64_t> fired;
  const uint64_t delays[] = {1, 63, 64, 65, 4095, 4096, 4097, 300000, 5, 262144 + 17};
  std::vector<std::unique_ptr<Timer>> timers;
  for (uint64_t d : delays) {
    auto t = std::make_unique<Timer>();
    Timer* raw = t.get();
    t->set_callback([&, raw] { fired.push_back(raw->deadline_ms()); });
    w.schedule(*t, 1000 + d);
    timers.push_back(std::move(t));
  }
  EXPECT_EQ(w.size(), std::size(delays));
  uint64_t now = 1000;
  while (w.size() > 0) {
    const uint64_t next = w.next_deadline();
    ASSERT_NE(next, TimerWheel::kNever);
    ASSERT_GE(next, now);
    now = next;
    w.advance(now);
  }
  ASSERT_EQ(fired.size(), std::size(delays));
  for (size_t i = 1; i < fired.size(); ++i)
    EXPECT_LE(fired[i - 1], fired[i]);
  EXPECT_EQ(fired.back(), 1000u + 300000u);
}

TEST(TimerWheel, NeverFiresEarlyOrLate) {
  // Random schedules, reschedules and cancels against a reference model; time
  // advances in random steps. Each timer must fire exactly at the first
  // advance() whose now >= its deadline.
  std::mt19937_64 rng(42);
  TimerWheel w(0);
  constexpr int kTimers = 2000;
  std::vector<std::unique_ptr<Timer>> timers(kTimers);
  struct Model {
    std::map<int, uint64_t> expected;  // armed timer -> deadline
    uint64_t now = 0;
    int errors = 0;
  } m;
  auto& expected = m.expected;
  auto& now = m.now;
  auto& errors = m.errors;
  for (int i = 0; i < kTimers; ++i) {
    timers[i] = std::make_unique<Timer>();
    timers[i]->set_callback([mp = &m, i] {
      auto it = mp->expected.find(i);
      if (it == mp->expected.end() || it->second > mp->now) ++mp->errors;  // early, or not armed
      mp->expected.erase(i);
    });
  }
  for (int step = 0; step < 20000; ++step) {
    const int i = static_cast<int>(rng() % kTimers);
    switch (rng() % 4) {
      case 0:
      case 1: {
        const uint64_t span = uint64_t{1} << (rng() % 24);
        const uint64_t d = now + rng() % span;
        w.schedule(*timers[i], d);
        expected[i] = d;
        break;
      }
      case 2:
        w.cancel(*timers[i]);
        expected.erase(i);
        break;
      case 3: {
        now += rng() % 5000;
        w.advance(now);
        for (auto& [id, d] : expected) {
          if (d <= now) ++errors;  // late: should have fired
        }
        break;
      }
    }
    ASSERT_EQ(w.size(), expected.size());
  }
  EXPECT_EQ(errors, 0);
  // next_deadline() is never later than the earliest deadline.
  if (!expected.empty()) {
    uint64_t earliest = UINT64_MAX;
    for (auto& [id, d] : expected)
      earliest = std::min(earliest, d);
    EXPECT_LE(w.next_deadline(), std::max(earliest, now));
  }
}

TEST(TimerWheel, CallbackMayRescheduleItself) {
  TimerWheel w(0);
  Timer t;
  int count = 0;
  // A timer's callback holds at most two pointers.
  std::pair<TimerWheel*, Timer*> wt{&w, &t};
  t.set_callback([&count, &wt] {
    if (++count < 5) wt.first->schedule_after(*wt.second, 10);
  });
  w.schedule_after(t, 10);
  for (uint64_t now = 0; now <= 100; ++now)
    w.advance(now);
  EXPECT_EQ(count, 5);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.next_deadline(), TimerWheel::kNever);
}

// The event loop observes the wake-up time before it dispatches: a timeout
// armed by a handler after a long idle spell counts from then, not from the
// last advance (which made the first connection after 30 s of quiet expire
// its handshake timeout at once).
TEST(TimerWheel, ScheduleAfterCountsFromTheObservedTime) {
  TimerWheel w(1000);
  Timer stale_due, fresh;
  bool stale_fired = false, fresh_fired = false;
  stale_due.set_callback([&] { stale_fired = true; });
  fresh.set_callback([&] { fresh_fired = true; });
  w.schedule_after(stale_due, 5'000);  // due at 6000, while "asleep"
  w.observe(31'000);                   // woke up 30 s later
  EXPECT_EQ(w.now(), 31'000u);
  w.schedule_after(fresh, 10'000);  // due at 41000
  EXPECT_EQ(fresh.deadline_ms(), 41'000u);
  EXPECT_FALSE(stale_fired) << "observe() must not fire anything";
  w.advance(31'000);
  EXPECT_TRUE(stale_fired);
  EXPECT_FALSE(fresh_fired);
  w.advance(40'999);
  EXPECT_FALSE(fresh_fired);
  w.advance(41'000);
  EXPECT_TRUE(fresh_fired);
  w.observe(30'000);  // never backwards
  EXPECT_EQ(w.now(), 41'000u);
}

TEST(TimerWheel, PastDeadlineFiresOnNextAdvance) {
  TimerWheel w(500);
  Timer t;
  bool fired = false;
  t.set_callback([&] { fired = true; });
  w.schedule(t, 100);
  EXPECT_EQ(w.next_deadline(), 500u);
  w.advance(500);
  EXPECT_TRUE(fired);
}

TEST(TimerWheel, DestroyedTimerIsForgotten) {
  TimerWheel w(0);
  {
    Timer t;
    w.schedule(t, 50);
    EXPECT_EQ(w.size(), 1u);
  }
  EXPECT_EQ(w.size(), 0u);
  // Advancing past its slot must not touch the freed timer (ASan checks).
  EXPECT_EQ(w.advance(100), 0u);
}

}  // namespace
}  // namespace egw::uring

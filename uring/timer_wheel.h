// Hierarchical timer wheel (per worker, millisecond resolution). Six levels of
// 64 slots cover 2^36 ms; a timer sits in the level of the highest 6-bit group
// in which its deadline differs from "now", and cascades down as time reaches
// its slot. schedule/cancel are O(1); advance() jumps straight to the next
// occupied slot using per-level bitmaps, so an idle wheel costs nothing.
//
// No kernel timeout per connection (arming and removing 10k kernel timeouts
// is O(n) each: research notes §6); the event loop passes next_deadline() as
// the timeout of its io_uring_enter.
#pragma once

#include <array>
#include <cstdint>

#include "egw/inline_function.h"
#include "egw/intrusive_list.h"

namespace egw::uring {

class TimerWheel;

class Timer {
 public:
  using Callback = InlineFunction<void(), 16>;

  Timer() = default;
  explicit Timer(Callback cb) : cb_(std::move(cb)) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  // An armed timer cancels itself.
  ~Timer();

  void set_callback(Callback cb) { cb_ = std::move(cb); }
  bool armed() const { return node_.linked(); }
  uint64_t deadline_ms() const { return deadline_; }

 private:
  friend class TimerWheel;
  ListNode node_;
  uint64_t deadline_ = 0;
  TimerWheel* wheel_ = nullptr;
  Callback cb_;
};

class TimerWheel {
 public:
  static constexpr unsigned kLevels = 6;
  static constexpr unsigned kBits = 6;
  static constexpr unsigned kSlots = 1u << kBits;
  static constexpr uint64_t kNever = UINT64_MAX;

  explicit TimerWheel(uint64_t now_ms) : now_(now_ms), time_(now_ms) {}
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms `t` to fire at `deadline_ms` (re-arms it if already armed). A
  // deadline at or before now fires on the next advance().
  void schedule(Timer& t, uint64_t deadline_ms);
  // Relative to now(): the latest time observed, not the wheel's position.
  void schedule_after(Timer& t, uint64_t delay_ms) { schedule(t, time_ + delay_ms); }
  void cancel(Timer& t);

  // Runs every timer whose deadline is <= now_ms, in deadline order. Callbacks
  // may schedule and cancel timers (including themselves). Returns how many fired.
  size_t advance(uint64_t now_ms);

  // Moves now() forward without firing anything. The event loop calls it as
  // soon as it wakes, before it dispatches completions: a handler that asks
  // now() or schedules relative to it after a long sleep must see the time
  // of the wake-up, not that of the last advance() (which would make a
  // timeout armed for a new connection expire at once). Timers that fell due
  // while the loop slept still fire at the advance() after the dispatch, so
  // I/O that arrived before a deadline's check is handled first.
  void observe(uint64_t now_ms) {
    if (now_ms > time_) time_ = now_ms;
  }

  // Earliest time advance() has work to do (a cascade or an expiry); kNever
  // when no timer is armed. Never later than the earliest deadline.
  uint64_t next_deadline() const;

  // The latest time given to observe() or advance().
  uint64_t now() const { return time_; }
  size_t size() const { return count_; }

 private:
  using Slot = IntrusiveList<Timer, &Timer::node_>;

  void place(Timer& t);
  uint64_t next_event() const;

  uint64_t now_;   // the wheel's position: every deadline <= now_ has fired
  uint64_t time_;  // >= now_: the latest time observed
  size_t count_ = 0;
  Slot due_;  // deadlines already reached when scheduled
  std::array<std::array<Slot, kSlots>, kLevels> slots_;
  std::array<uint64_t, kLevels> occupied_{};  // bit s set: slots_[k][s] may be non-empty
};

}  // namespace egw::uring

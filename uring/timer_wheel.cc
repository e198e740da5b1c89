#include "uring/timer_wheel.h"

#include <algorithm>
#include <bit>

namespace egw::uring {
namespace {

constexpr uint64_t kMaxSpan = (uint64_t{1} << (TimerWheel::kLevels * TimerWheel::kBits)) - 1;

inline unsigned shift(unsigned level) {
  return level * TimerWheel::kBits;
}
inline unsigned slot_of(uint64_t t, unsigned level) {
  return static_cast<unsigned>(t >> shift(level)) & (TimerWheel::kSlots - 1);
}

}  // namespace

Timer::~Timer() {
  if (armed() && wheel_) wheel_->cancel(*this);
}

void TimerWheel::schedule(Timer& t, uint64_t deadline_ms) {
  if (t.armed()) {
    t.node_.unlink();
    --t.wheel_->count_;
  }
  t.wheel_ = this;
  t.deadline_ = std::min(deadline_ms, now_ + kMaxSpan);
  ++count_;
  place(t);
}

void TimerWheel::cancel(Timer& t) {
  if (!t.armed()) return;
  t.node_.unlink();
  --count_;
}

void TimerWheel::place(Timer& t) {
  if (t.deadline_ <= now_) {
    due_.push_back(t);
    return;
  }
  // The level is that of the highest 6-bit group where deadline and now differ.
  const uint64_t diff = t.deadline_ ^ now_;
  const unsigned top_bit = 63u - static_cast<unsigned>(std::countl_zero(diff));
  const unsigned level = std::min(top_bit / kBits, kLevels - 1);
  const unsigned s = slot_of(t.deadline_, level);
  slots_[level][s].push_back(t);
  occupied_[level] |= uint64_t{1} << s;
}

uint64_t TimerWheel::next_event() const {
  if (!due_.empty()) return now_;
  uint64_t best = kNever;
  for (unsigned level = 0; level < kLevels; ++level) {
    uint64_t bits = occupied_[level];
    if (!bits) continue;
    // Only slots after now's own index at this level can hold timers.
    const unsigned cur = slot_of(now_, level);
    bits &= (cur + 1 < kSlots) ? ~((uint64_t{2} << cur) - 1) : 0;
    if (!bits) continue;
    const unsigned s = static_cast<unsigned>(std::countr_zero(bits));
    const unsigned above = shift(level) + kBits;
    const uint64_t high = above >= 64 ? 0 : (now_ >> above) << above;
    const uint64_t t = high | (uint64_t{s} << shift(level));
    best = std::min(best, t);
  }
  return best;
}

uint64_t TimerWheel::next_deadline() const {
  return count_ == 0 ? kNever : next_event();
}

size_t TimerWheel::advance(uint64_t now_ms) {
  size_t fired = 0;
  for (;;) {
    const uint64_t t = next_event();
    if (t > now_ms || t == kNever) break;
    now_ = std::max(now_, t);
    // Cascade every level whose boundary is exactly now, highest first, so
    // timers fall into the lower levels relative to the new now.
    for (unsigned level = kLevels - 1; level >= 1; --level) {
      if ((now_ & ((uint64_t{1} << shift(level)) - 1)) != 0) continue;
      const unsigned s = slot_of(now_, level);
      if (!(occupied_[level] & (uint64_t{1} << s))) continue;
      occupied_[level] &= ~(uint64_t{1} << s);
      Slot moving;
      moving.splice_back(slots_[level][s]);
      while (Timer* tm = moving.pop_front())
        place(*tm);
    }
    // Collect what expires now: level 0's current slot and the due list.
    Slot firing;
    firing.splice_back(due_);
    const unsigned s0 = slot_of(now_, 0);
    if (occupied_[0] & (uint64_t{1} << s0)) {
      occupied_[0] &= ~(uint64_t{1} << s0);
      firing.splice_back(slots_[0][s0]);
    }
    while (Timer* tm = firing.pop_front()) {
      --count_;
      ++fired;
      if (tm->cb_) tm->cb_();  // may re-arm tm or touch any other timer
    }
  }
  if (now_ms > now_) now_ = now_ms;
  if (now_ > time_) time_ = now_;
  return fired;
}

}  // namespace egw::uring

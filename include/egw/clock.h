// Clocks. `now_ns()` reads CLOCK_MONOTONIC. The cached clock is per thread:
// the event loop refreshes it once per batch of completions, so everything
// handled in that batch sees the same "now" without a clock_gettime each.
#pragma once

#include <time.h>

#include <cstdint>

namespace egw::clock {

inline uint64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t wall_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

namespace detail {
inline thread_local uint64_t cached_ns = 0;
}

// Re-reads the monotonic clock into this thread's cache and returns it.
inline uint64_t refresh() {
  return detail::cached_ns = now_ns();
}
// This thread's cached monotonic time (refreshed by its event loop).
inline uint64_t cached_ns() {
  if (__builtin_expect(detail::cached_ns == 0, 0)) return refresh();
  return detail::cached_ns;
}
inline uint64_t cached_ms() {
  return cached_ns() / 1'000'000u;
}

}  // namespace egw::clock

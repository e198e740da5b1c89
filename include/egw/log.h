// Logging that costs one relaxed load and a branch when the level is off.
//
//   EGW_LOG(info, "listener {} bound to {}", name, address);
//
// Lines go to stderr (one write(2) per line, so lines from several threads do
// not interleave): "2026-11-27T19:37:25.123Z info  [w0] message". Per-request
// events are counters and histograms, never log lines.
#pragma once

#include <fmt/core.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>

namespace egw::log {

enum class Level : uint8_t { trace, debug, info, warn, error, off };

std::string_view to_string(Level level);
std::optional<Level> parse_level(std::string_view name);

namespace detail {
inline std::atomic<Level> g_level{Level::info};
void write(Level level, fmt::string_view format, fmt::format_args args);
}  // namespace detail

inline void set_level(Level level) {
  detail::g_level.store(level, std::memory_order_relaxed);
}
inline Level level() {
  return detail::g_level.load(std::memory_order_relaxed);
}
inline bool enabled(Level l) {
  return l >= level();
}

// Names the current thread in log lines ("main", "w0", ...). At most 15 bytes.
void set_thread_tag(std::string_view tag);

// Formats and writes one line; callers normally use EGW_LOG, which checks the
// level before evaluating any argument.
template <class... Args>
void emit(Level l, fmt::format_string<Args...> format, Args&&... args) {
  detail::write(l, format, fmt::make_format_args(args...));
}

}  // namespace egw::log

#define EGW_LOG(lvl, ...)                                    \
  do {                                                       \
    if (::egw::log::enabled(::egw::log::Level::lvl))         \
      ::egw::log::emit(::egw::log::Level::lvl, __VA_ARGS__); \
  } while (0)

// Like EGW_LOG but at most once per `interval_ms` per call site (for events a
// peer can cause repeatedly, such as "all endpoints down").
#define EGW_LOG_RATELIMITED(lvl, interval_ms, ...)                        \
  do {                                                                    \
    static std::atomic<uint64_t> egw_last_ms_{0};                         \
    if (::egw::log::enabled(::egw::log::Level::lvl) &&                    \
        ::egw::log::detail::allow_ratelimited(egw_last_ms_, interval_ms)) \
      ::egw::log::emit(::egw::log::Level::lvl, __VA_ARGS__);              \
  } while (0)

namespace egw::log::detail {
bool allow_ratelimited(std::atomic<uint64_t>& last_ms, uint64_t interval_ms);
}

// Implementation of the base layer's out-of-line parts: Error, assertions,
// logging.
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "egw/assert.h"
#include "egw/clock.h"
#include "egw/log.h"
#include "egw/result.h"

namespace egw {

std::string Error::message() const {
  if (code == 0) return what;
  return fmt::format("{}: {}", what, std::strerror(code));
}

namespace {
std::atomic<uint64_t> g_bugs{0};
}

void assert_fail(const char* expr, const char* msg, const char* file, int line) {
  log::emit(log::Level::error, "assertion failed: {} {} ({}:{})", expr, msg, file, line);
  std::abort();
}

void report_bug(const char* expr, const char* msg, const char* file, int line,
                std::atomic<bool>& reported) {
  g_bugs.fetch_add(1, std::memory_order_relaxed);
  if (!reported.exchange(true, std::memory_order_relaxed)) {
    log::emit(log::Level::error, "BUG: {} {} ({}:{}); counting further hits", expr, msg, file,
              line);
  }
}

uint64_t bug_count() {
  return g_bugs.load(std::memory_order_relaxed);
}

namespace log {

namespace {
thread_local char t_tag[16] = "main";
}

std::string_view to_string(Level level) {
  switch (level) {
    case Level::trace:
      return "trace";
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
    case Level::off:
      return "off";
  }
  return "?";
}

std::optional<Level> parse_level(std::string_view name) {
  for (auto l : {Level::trace, Level::debug, Level::info, Level::warn, Level::error, Level::off}) {
    if (name == to_string(l)) return l;
  }
  return std::nullopt;
}

void set_thread_tag(std::string_view tag) {
  const size_t n = std::min(tag.size(), sizeof(t_tag) - 1);
  std::memcpy(t_tag, tag.data(), n);
  t_tag[n] = '\0';
}

namespace detail {

void write(Level level, fmt::string_view format, fmt::format_args args) {
  fmt::memory_buffer buf;
  const uint64_t ns = clock::wall_ns();
  const time_t secs = static_cast<time_t>(ns / 1'000'000'000u);
  struct tm tm;
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(buf), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {:<5} [{}] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (ns / 1'000'000u) % 1000, to_string(level), t_tag);
  fmt::vformat_to(std::back_inserter(buf), format, args);
  buf.push_back('\n');
  const char* p = buf.data();
  size_t left = buf.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

bool allow_ratelimited(std::atomic<uint64_t>& last_ms, uint64_t interval_ms) {
  const uint64_t now = clock::now_ns() / 1'000'000u;
  uint64_t last = last_ms.load(std::memory_order_relaxed);
  if (last != 0 && now - last < interval_ms) return false;
  return last_ms.compare_exchange_strong(last, now, std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace log
}  // namespace egw

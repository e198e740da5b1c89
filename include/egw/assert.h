// Three assertion levels (never assert on anything a peer sent):
//   EGW_ASSERT(cond)            debug-only invariant; compiled out with NDEBUG.
//   EGW_RELEASE_ASSERT(cond, m) fatal in every build: the process cannot go on
//                               (broken ring, out of memory at start-up).
//   EGW_BUG(cond, m)            evaluates to `cond`; when true, logs once per
//                               call site and counts, and the caller keeps
//                               serving: `if (EGW_BUG(x < 0, "...")) return;`
#pragma once

#include <atomic>
#include <cstdint>

namespace egw {

[[noreturn]] void assert_fail(const char* expr, const char* msg, const char* file, int line);
void report_bug(const char* expr, const char* msg, const char* file, int line,
                std::atomic<bool>& reported);
// Number of EGW_BUG hits since start (all threads).
uint64_t bug_count();

}  // namespace egw

#define EGW_RELEASE_ASSERT(cond, msg)                                                     \
  do {                                                                                    \
    if (__builtin_expect(!(cond), 0)) ::egw::assert_fail(#cond, msg, __FILE__, __LINE__); \
  } while (0)

#ifdef NDEBUG
#define EGW_ASSERT(cond) \
  do {                   \
    (void)sizeof(cond);  \
  } while (0)
#else
#define EGW_ASSERT(cond)                                                                 \
  do {                                                                                   \
    if (__builtin_expect(!(cond), 0)) ::egw::assert_fail(#cond, "", __FILE__, __LINE__); \
  } while (0)
#endif

#define EGW_BUG(cond, msg)                                            \
  (__builtin_expect(!!(cond), 0) ? ([&]() {                           \
    static std::atomic<bool> egw_reported_{false};                    \
    ::egw::report_bug(#cond, msg, __FILE__, __LINE__, egw_reported_); \
    return true;                                                      \
  }())                                                                \
                                 : false)

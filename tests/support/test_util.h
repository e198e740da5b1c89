// Helpers for tests over real loopback sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "egw/address.h"
#include "egw/unique_fd.h"
#include "uring/event_loop.h"

namespace egw::test {

// A listening TCP socket on 127.0.0.1, port 0 (kernel-chosen).
struct Listener {
  UniqueFd fd;
  SocketAddress addr;
};
Listener listen_loopback(int backlog = 128, bool reuseport = false, uint16_t port = 0);

// Blocking client connect to `addr`.
UniqueFd connect_blocking(const SocketAddress& addr);

// Deterministic bytes: pattern(seed, offset) for any offset, so a receiver can
// verify a stream without keeping the sent copy.
uint8_t pattern_byte(uint64_t seed, uint64_t offset);
void fill_pattern(uint64_t seed, uint64_t offset, uint8_t* out, size_t n);
// Index of the first byte that differs from the pattern, or -1.
int64_t check_pattern(uint64_t seed, uint64_t offset, const uint8_t* data, size_t n);

// Writes `total` pattern bytes to a blocking fd in chunks; returns bytes written.
uint64_t write_pattern(int fd, uint64_t seed, uint64_t total, size_t chunk = 65536);
// Reads until EOF (or `limit`), checking the pattern; returns bytes read or
// -1 (with *bad_offset set) on the first mismatch.
int64_t read_check_pattern(int fd, uint64_t seed, uint64_t limit, int64_t* bad_offset);

// Runs `loop` until `done()` or `timeout_ms` passes; true if done() held.
bool run_until(uring::EventLoop& loop, const std::function<bool()>& done,
               uint64_t timeout_ms = 10000);

// A loop with small, test-friendly defaults.
uring::LoopOptions small_loop_options(unsigned buffers = 256, unsigned buffer_size = 16384);

}  // namespace egw::test

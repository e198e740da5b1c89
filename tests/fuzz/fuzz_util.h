// Shared by the libFuzzer harnesses: an invariant check that traps (so the
// fuzzer keeps the input) and a small deterministic generator for cutting
// inputs into pieces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

namespace egw::fuzz {

// xorshift32; seed it with a non-zero value derived from the input.
struct Rng {
  uint32_t s;
  uint32_t next() {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
  }
  // A piece length: mostly small, sometimes large.
  size_t step() {
    const uint32_t r = next();
    return (r & 3) == 0 ? 1 + (r >> 8) % 512 : 1 + (r >> 8) % 8;
  }
};

// HTTP/2 output: drops the whole frames at the front of `out`, trapping on
// one longer than the default maximum frame size (16384); a partial frame
// stays for the next call.
inline void check_h2_frames(std::string& out) {
  std::string_view b = out;
  while (b.size() >= 9) {
    const uint32_t n =
        (uint32_t(uint8_t(b[0])) << 16) | (uint32_t(uint8_t(b[1])) << 8) | uint8_t(b[2]);
    FUZZ_CHECK(n <= 16384);
    if (b.size() < 9 + n) break;
    b.remove_prefix(9 + n);
  }
  out.erase(0, out.size() - b.size());
}

}  // namespace egw::fuzz

// Shared by the libFuzzer harnesses: an invariant check that traps (so the
// fuzzer keeps the input) and a small deterministic generator for cutting
// inputs into pieces.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace egw::fuzz

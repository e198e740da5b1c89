// least_connections: weighted least connections. Chooses the selectable
// endpoint with the smallest (active + 1) / weight, compared by
// cross-multiplication in 64 bits (exact; no floating point). The "+1" counts
// the connection about to be made, so at equal load the heavier endpoint wins
// (with plain active / weight, every idle endpoint would tie at 0). Equal
// endpoints share load: the scan starts one past the previous choice and keeps
// the first minimum it meets.
#pragma once

#include <cstddef>
#include <cstdint>

#include "src/balancer/balancer.h"

namespace egw::balancer {

class LeastConnections final : public Balancer {
 public:
  // The first pick starts its scan at index `seed % n`.
  explicit LeastConnections(uint64_t seed = 0) : seed_(seed) {}

  // O(n) in the candidate count; any candidate count is accepted.
  int pick(std::span<const Candidate> candidates, uint64_t hash) override;
  void reset(std::span<const uint32_t> weights) override;

 private:
  uint64_t seed_;
  size_t next_ = 0;  // where the next scan starts
};

// True when candidate `a` is strictly less loaded than `b` relative to their
// weights: (a.active + 1) / a.weight < (b.active + 1) / b.weight. Both weights
// must be non-zero. Products stay below 2^64 for any 32-bit inputs.
inline bool less_loaded(const Candidate& a, const Candidate& b) {
  return (uint64_t{a.active} + 1) * b.weight < (uint64_t{b.active} + 1) * a.weight;
}

}  // namespace egw::balancer

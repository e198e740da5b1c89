// round_robin: plain rotation over the selectable candidates, ignoring their
// weights (except that weight 0 is never chosen).
#pragma once

#include <cstddef>
#include <cstdint>

#include "src/balancer/balancer.h"

namespace egw::balancer {

class RoundRobin final : public Balancer {
 public:
  // The first pick starts its search at index `seed % n`.
  explicit RoundRobin(uint64_t seed = 0) : seed_(seed) {}

  // Returns the first selectable candidate at or after the one following the
  // previous pick, wrapping around; any candidate count is accepted.
  int pick(std::span<const Candidate> candidates, uint64_t hash) override;
  void reset(std::span<const uint32_t> weights) override;

 private:
  uint64_t seed_;
  size_t next_ = 0;  // where the next search starts
};

}  // namespace egw::balancer

// weighted_round_robin: smooth weighted round robin, the scheme nginx uses for
// its upstreams. Every pick, each selectable endpoint's `current` grows by its
// weight; the largest `current` wins and gives back the sum of the weights
// that took part. Over any window of sum(weights) picks with a fixed
// selectable set, each endpoint is chosen exactly `weight` times, and the
// choices are interleaved (weights 5,1,1 give a a b a c a a, never a burst of
// five a's).
#pragma once

#include <cstdint>
#include <vector>

#include "src/balancer/balancer.h"

namespace egw::balancer {

class WeightedRoundRobin final : public Balancer {
 public:
  // Uses the weights passed to each pick (so admin weight changes apply at
  // once). Candidates past the count of the last reset() have no state and
  // are never chosen; ties go to the lowest index.
  int pick(std::span<const Candidate> candidates, uint64_t hash) override;
  // Sizes the per-endpoint state and restarts the sequence.
  void reset(std::span<const uint32_t> weights) override;

 private:
  // Signed: the winner goes negative. The sum over the endpoints that took
  // part in every pick stays 0, so values stay within +-sum(weights) of 0.
  std::vector<int64_t> current_;
};

}  // namespace egw::balancer

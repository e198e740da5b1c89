// random: power of two choices (Mitzenmacher 2001). Draws two distinct
// selectable endpoints at random, each with probability proportional to its
// weight, and keeps the less loaded by (active + 1) / weight (the measure of
// least_connections; ties keep the first drawn). Nearly as even as
// least_connections without its scan, and without the herd effect of every
// worker piling onto the one least-loaded endpoint from stale counts.
//
// Weighted draw without allocation, by rejection: take a uniform index,
// accept it if selectable with probability weight / max_weight. Accepted
// indexes are distributed exactly in proportion to weight, and a draw takes
// n * max_weight / (selectable weight) tries on average (1 when all are up
// with equal weights), independent of n. After kDrawAttempts failed tries
// (most endpoints down or drained), and always for tiny clusters, the draw
// is an exact O(n) scan by cumulative weight instead. The second draw
// excludes the first endpoint, so the pair (a, b) comes out with probability
// w_a / W * w_b / (W - w_a): weighted sampling without replacement.
#pragma once

#include <cstddef>
#include <cstdint>

#include "src/balancer/balancer.h"

namespace egw::balancer {

// splitmix64 as a generator: a Weyl sequence through mix64. Period 2^64,
// passes BigCrush, one add and the mix per number; plenty for load balancing.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ull); }
  // Uniform in [0, n); n > 0.
  uint64_t below(uint64_t n) { return reduce(next(), n); }

 private:
  uint64_t state_;
};

class PowerOfTwo final : public Balancer {
 public:
  static constexpr int kDrawAttempts = 16;
  // Up to this many candidates the exact scan is used directly: it is cheaper
  // than rejection, whose tries are unpredictable branches (measured: 24 ns
  // against 38 ns per pick at 4 endpoints, even at 8).
  static constexpr size_t kScanUpTo = 6;

  explicit PowerOfTwo(uint64_t seed = 0) : rng_(seed) {}

  // With a single selectable candidate, returns it. Any candidate count is
  // accepted.
  int pick(std::span<const Candidate> candidates, uint64_t hash) override;
  // Records the largest configured weight for the rejection draw.
  void reset(std::span<const uint32_t> weights) override;

 private:
  static constexpr size_t kNone = SIZE_MAX;

  // A selectable index other than `skip` by rejection, or kNone after
  // kDrawAttempts tries.
  size_t draw_fast(std::span<const Candidate> candidates, size_t skip);
  // A selectable index other than `skip` by a scan of cumulative weights, or
  // kNone when there is none.
  size_t draw_exact(std::span<const Candidate> candidates, size_t skip);

  SplitMix64 rng_;
  // At least every weight seen, so that weight / max_weight_ <= 1. Raised
  // when a pick meets a heavier candidate (an admin weight change).
  uint32_t max_weight_ = 1;
};

}  // namespace egw::balancer

// Schedule: the intended send times of one worker's open-loop requests.
//
// Request k of a constant schedule is due at start + (k + phase) / rate; a
// Poisson schedule draws exponential gaps of mean 1/rate. Times are computed
// from the start (never by adding rounded gaps), so a long run does not
// drift. The schedule is the only record of the backlog: requests that are
// due but not yet sent are exactly those between next() and now, so a
// stalled server costs no memory, and each request keeps its own intended
// time however late it is sent (coordinated omission).
#pragma once

#include <cmath>
#include <cstdint>

namespace egw::load {

// splitmix64: small, fast, and good enough to draw arrival gaps.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

class Schedule {
 public:
  // `rate` requests/s (> 0) from `start_ns`. Constant schedules start at
  // `phase` (0..1) of a period, so that T workers at rate R/T each, phased
  // i/T, interleave into one even stream of rate R.
  static Schedule constant(double rate, uint64_t start_ns, double phase);
  static Schedule poisson(double rate, uint64_t start_ns, uint64_t seed);

  // Intended send time of the next request (CLOCK_MONOTONIC ns).
  uint64_t next() const { return next_ns_; }
  // The next request was sent (or given up); moves to the one after.
  void advance();
  uint64_t issued() const { return index_; }

 private:
  Schedule(bool poisson, double rate, uint64_t start_ns, double offset_ns, uint64_t seed);

  bool poisson_;
  double period_ns_;
  uint64_t start_ns_;
  double offset_ns_;  // of the next request from start_ns_
  uint64_t next_ns_;
  uint64_t index_ = 0;
  double phase_;
  Rng rng_;
};

}  // namespace egw::load

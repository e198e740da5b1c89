#include "src/load/schedule.h"

namespace egw::load {

Schedule Schedule::constant(double rate, uint64_t start_ns, double phase) {
  return Schedule(false, rate, start_ns, phase * 1e9 / rate, 0);
}

Schedule Schedule::poisson(double rate, uint64_t start_ns, uint64_t seed) {
  Schedule s(true, rate, start_ns, 0, seed);
  s.offset_ns_ = -std::log1p(-s.rng_.uniform()) * s.period_ns_;
  s.next_ns_ = start_ns + static_cast<uint64_t>(s.offset_ns_);
  return s;
}

Schedule::Schedule(bool poisson, double rate, uint64_t start_ns, double offset_ns, uint64_t seed)
    : poisson_(poisson),
      period_ns_(1e9 / rate),
      start_ns_(start_ns),
      offset_ns_(offset_ns),
      next_ns_(start_ns + static_cast<uint64_t>(offset_ns)),
      phase_(offset_ns / (1e9 / rate)),
      rng_(seed) {}

void Schedule::advance() {
  ++index_;
  if (poisson_) {
    // Inverse transform: -ln(1-U) is exponential with mean 1.
    offset_ns_ += -std::log1p(-rng_.uniform()) * period_ns_;
  } else {
    offset_ns_ = (static_cast<double>(index_) + phase_) * period_ns_;
  }
  next_ns_ = start_ns_ + static_cast<uint64_t>(offset_ns_);
}

}  // namespace egw::load

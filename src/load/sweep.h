// Sweep: the highest open-loop rate that meets a latency objective.
//
// Each step is a complete run (set-up, warm-up, --duration, drain) at one
// rate. From --rate the rate doubles while steps meet the objective; after
// the first violation it bisects between the best rate met and the lowest
// rate violated until they are within 5% of each other (or halves from the
// start while even the first rate fails). A step meets the objective when
// its percentile is within the limit, it achieved at least 90% of its
// target rate, and no request failed.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/load/options.h"
#include "src/load/runner.h"

namespace egw::load {

struct SweepStep {
  double target_rate = 0;
  double achieved_rate = 0;
  uint64_t value_us = 0;  // the objective's percentile of the total latency
  uint64_t errors = 0;
  bool met = false;
};

struct SweepResult {
  Objective objective;
  std::vector<SweepStep> steps;
  std::optional<size_t> best;  // index into steps of the highest rate met
  RunResult best_run;          // that step's full result (or the last step's)
};

inline constexpr unsigned kMaxSweepSteps = 20;

// Runs the sweep; `on_step` (may be empty) hears each step as it ends.
std::expected<SweepResult, std::string> run_sweep(
    const Options& o, std::string_view request,
    const std::function<void(const SweepStep&, size_t index)>& on_step);

}  // namespace egw::load

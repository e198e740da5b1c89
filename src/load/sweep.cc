#include "src/load/sweep.h"

#include <cmath>
#include <limits>

namespace egw::load {
namespace {

constexpr double kPrecision = 0.05;    // stop bisecting when hi - lo <= 5% of lo
constexpr double kMinAchieved = 0.90;  // of the target, for a step to count as met

}  // namespace

std::expected<SweepResult, std::string> run_sweep(
    const Options& o, std::string_view request,
    const std::function<void(const SweepStep&, size_t index)>& on_step) {
  SweepResult res;
  res.objective = *o.sweep;
  double lo = 0;                                        // highest rate met
  double hi = std::numeric_limits<double>::infinity();  // lowest rate violated
  double rate = o.rate;
  for (unsigned n = 0; n < kMaxSweepSteps && !stop_requested(); ++n) {
    auto run = run_load(o, rate, request);
    if (!run) return std::unexpected(run.error());
    SweepStep step;
    step.target_rate = rate;
    step.achieved_rate = run->achieved_rate;
    step.value_us = run->stats.total.value_at_percentile(res.objective.percentile);
    step.errors = run->stats.error_total();
    step.met = run->stats.requests > 0 && res.objective.met_by(step.value_us) && step.errors == 0 &&
               run->achieved_rate >= kMinAchieved * rate && !run->interrupted;
    res.steps.push_back(step);
    if (on_step) on_step(step, res.steps.size() - 1);
    if (step.met) {
      lo = rate;
      res.best = res.steps.size() - 1;
      res.best_run = std::move(*run);
    } else {
      hi = rate;
      if (!res.best) res.best_run = std::move(*run);
    }
    // The next rate to try.
    double next;
    if (std::isinf(hi)) {
      if (rate >= o.sweep_max_rate) break;  // met at the ceiling
      next = std::min(rate * 2, o.sweep_max_rate);
    } else if (lo == 0) {
      next = std::floor(rate / 2);
      if (next < 1) break;
    } else {
      if (hi - lo <= kPrecision * lo) break;
      next = std::round((lo + hi) / 2);
      if (next <= lo || next >= hi) break;
    }
    rate = next;
  }
  return res;
}

}  // namespace egw::load

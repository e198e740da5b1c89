// Report: the run's results as text for people (stdout), JSON for scripts
// (--json) and HdrHistogram percentile-distribution text for plotters
// (--hdr). docs/load-generator.md describes each format.
#pragma once

#include <string>

#include "src/load/options.h"
#include "src/load/runner.h"
#include "src/load/sweep.h"

namespace egw::load {

// Header, percentile table of the total latency, per-phase table,
// throughput, status classes, errors by kind and warnings.
std::string format_report(const Options& o, const RunResult& r);

// One sweep step as a line, and the sweep's conclusion.
std::string format_sweep_step(const Objective& obj, const SweepStep& s, size_t index);
std::string format_sweep_summary(const SweepResult& s);

// {"requests":..,"errors":..,"achieved_rate":..,"latency_us":{..},
//  "phases_us":{..},"error_kinds":{..},...}; with `sweep`, a "sweep" section
// too (the top level then describes the best step).
std::string format_json(const Options& o, const RunResult& r, const SweepResult* sweep);

// The total latency in milliseconds, as HdrHistogram's
// outputPercentileDistribution writes it.
std::string format_hdr(const RunResult& r);

}  // namespace egw::load

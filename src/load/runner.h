// Runner: one measurement at one rate: starts the worker threads (each with
// its own event loop and Client), lines them up on a shared start time,
// joins them and merges what they measured.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "src/load/options.h"
#include "src/load/stats.h"

namespace egw::load {

struct RunResult {
  Stats stats;               // merged over workers
  double target_rate = 0;    // requests/s asked for (0: closed loop)
  double elapsed_s = 0;      // window start to the later of its end and the last response
  double achieved_rate = 0;  // responses / elapsed_s
  bool interrupted = false;  // SIGINT/SIGTERM cut the run short
  std::vector<std::string> warnings;
};

// Runs `o` at `rate` requests/s (ignored in a closed loop) sending `request`.
// Fails only when the generator itself cannot run (no io_uring, a thread
// that cannot start); everything the target does is in the result.
std::expected<RunResult, std::string> run_load(const Options& o, double rate,
                                               std::string_view request);

// SIGINT/SIGTERM: ends the measurement early (workers check at least every
// 100 ms); the results so far are still reported. Async-signal-safe.
void request_stop();
bool stop_requested();
// Installs request_stop() as the SIGINT and SIGTERM handler.
void install_stop_handler();

}  // namespace egw::load

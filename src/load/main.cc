// expressgateway-load: an open-loop HTTP/1.1 load generator on the engine.
//
//   expressgateway-load --url http://127.0.0.1:8080/path --rate 5000 --duration 10s
//                       --connections 64 [--closed-loop] [--json FILE] [--hdr FILE]
//
// docs/load-generator.md describes what it measures and every option. Exit
// status: 0 all measured requests got a 2xx; 1 some failed (or a sweep met
// its objective at no rate); 2 invalid command line; 3 could not run.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <optional>
#include <string>

#include "src/load/options.h"
#include "src/load/report.h"
#include "src/load/request.h"
#include "src/load/runner.h"
#include "src/load/sweep.h"
#include "uring/probe.h"

namespace {

using namespace egw::load;

// Opens an output file at start-up, so that a bad path fails before the run.
bool open_output(const std::string& path, std::FILE*& f) {
  if (path.empty()) return true;
  f = path == "-" ? stdout : std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "expressgateway-load: cannot write %s: %m\n", path.c_str());
    return false;
  }
  return true;
}

bool write_output(std::FILE* f, const std::string& path, const std::string& text) {
  if (!f) return true;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = f == stdout ? std::fflush(f) == 0 : std::fclose(f) == 0;
  if (!ok || !closed) {
    std::fprintf(stderr, "expressgateway-load: writing %s failed\n", path.c_str());
    return false;
  }
  return true;
}

// Each connection is a descriptor; take what the hard limit allows.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse_command_line(argc, argv);
  if (const int* code = std::get_if<int>(&parsed)) return *code;
  const Options& o = std::get<Options>(parsed);
  const auto request = build_request(o);
  if (!request) {
    std::fprintf(stderr, "expressgateway-load: %s\n", request.error().c_str());
    return kExitUsage;
  }
  const auto& features = egw::uring::features();
  if (!features.available) {
    std::fprintf(stderr, "expressgateway-load: io_uring is not available: %s\n",
                 features.unavailable_reason.c_str());
    return kExitFailure;
  }
  std::FILE* json = nullptr;
  std::FILE* hdr = nullptr;
  if (!open_output(o.json_path, json) || !open_output(o.hdr_path, hdr)) return kExitFailure;
  raise_fd_limit();
  std::signal(SIGPIPE, SIG_IGN);
  install_stop_handler();

  RunResult result;
  std::optional<SweepResult> sweep;
  if (o.sweep) {
    auto s = run_sweep(o, *request, [&](const SweepStep& step, size_t i) {
      if (o.quiet) return;
      std::fputs(format_sweep_step(*o.sweep, step, i).c_str(), stdout);
      std::fflush(stdout);
    });
    if (!s) {
      std::fprintf(stderr, "expressgateway-load: %s\n", s.error().c_str());
      return kExitFailure;
    }
    sweep = std::move(*s);
    result = sweep->best_run;
  } else {
    auto r = run_load(o, o.rate, *request);
    if (!r) {
      std::fprintf(stderr, "expressgateway-load: %s\n", r.error().c_str());
      return kExitFailure;
    }
    result = std::move(*r);
  }

  std::string text = format_report(o, result);
  if (sweep) text += "\n" + format_sweep_summary(*sweep);
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  if (!write_output(json, o.json_path, format_json(o, result, sweep ? &*sweep : nullptr)) ||
      !write_output(hdr, o.hdr_path, format_hdr(result))) {
    return kExitFailure;
  }
  if (sweep) return sweep->best ? kExitOk : kExitErrors;
  const bool failed = result.stats.error_total() > 0 || result.stats.requests == 0;
  return failed ? kExitErrors : kExitOk;
}

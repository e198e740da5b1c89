// Server: the control thread. Loads the configuration, builds the runtime
// snapshot, starts the workers, then waits for signals:
//   SIGHUP          reload: a valid file becomes the new snapshot for new
//                   sessions; an invalid one is logged and changes nothing.
//   SIGUSR2         reopen the access logs (after logrotate moved them).
//   SIGTERM, SIGINT drain: stop accepting, let sessions finish for
//                   grace_period_ms, then close them; a second signal closes
//                   them at once.
// and for what the admin API hands it (a reload), through a task queue and
// an eventfd beside the signalfd. The control thread never touches a
// worker's objects: it posts to mailboxes.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "egw/log.h"
#include "egw/unique_fd.h"
#include "src/server/admin.h"
#include "src/server/admin_command.h"
#include "src/server/metrics.h"
#include "src/server/notify.h"
#include "src/server/runtime.h"
#include "src/tls/ticket_keys.h"

namespace egw::server {

class Worker;

struct Options {
  std::string config_path = "config/expressgateway.toml";
  std::optional<unsigned> workers;      // --workers overrides [global] workers
  std::optional<log::Level> log_level;  // --log-level overrides [global] log_level
};

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitInvalidConfig = 2;

class Server {
 public:
  explicit Server(Options options);
  ~Server();

  // Runs until shut down; returns the process exit code.
  int run();
  Worker* worker(unsigned i) { return i < workers_.size() ? workers_[i].get() : nullptr; }

 private:
  // Reloads the file (`why`: "SIGHUP", "admin"); false when it is invalid
  // and the running configuration stays, with the errors in `errors`.
  bool reload(std::string_view why, std::vector<std::string>* errors = nullptr);
  bool apply_reload(std::vector<std::string>* errors);
  // Reopens every access log file (SIGUSR2, `reopen logs`; control thread):
  // the paths reopened, and one message per file that could not be.
  std::vector<std::string> reopen_logs(std::vector<std::string>& errors);
  // The admin API (its thread): one reply line for one command line.
  std::string admin_reply(std::string_view line);
  std::string admin_execute(const AdminCommand& cmd);
  std::string admin_reopen_logs();
  // Runs `task(true)` on the control thread; once the control thread stops
  // taking tasks, `task(false)` runs instead (at once, or at shutdown for
  // tasks already queued). Any thread.
  using ControlTask = std::function<void(bool run)>;
  void post_control(ControlTask task);
  void run_control_tasks();
  void close_control_tasks();
  void drain(uint32_t grace_ms);
  void log_ready() const;
  // The Prometheus text for GET /metrics (the metrics thread).
  std::string render_metrics();
  // The runtime the metrics thread reads (the control thread publishes it).
  void publish_runtime();
  // "generation N, W workers, L listeners" for the service manager.
  std::string status_line() const;
  // Asks every worker for a sign of life; the watchdog is fed only once all
  // answered since the last time.
  void watchdog_tick(uint64_t now_ms);
  // Each worker logs its counters; then the latency histograms of all
  // workers, merged per listener and per cluster, are logged here.
  void log_stats();

  Options options_;
  unsigned worker_count_ = 1;
  RuntimePtr runtime_;
  uint64_t generation_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::shared_ptr<tls::TicketKeys> tickets_;
  Notifier notifier_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<AdminServer> admin_;
  UniqueFd control_wake_;  // eventfd: a control task is queued
  std::mutex control_mu_;
  std::vector<ControlTask> control_tasks_;
  bool control_closed_ = false;
  std::atomic<bool> draining_{false};
  std::mutex published_mu_;
  RuntimePtr published_;
  uint64_t published_generation_ = 0;
  double start_time_s_ = 0;                         // unix time
  std::unique_ptr<std::atomic<uint64_t>[]> beats_;  // per worker: heartbeats answered
  std::vector<uint64_t> beats_seen_;                // ... when the watchdog was last fed
  uint64_t last_beat_ms_ = 0;
};

// Prints every error, one per line, to stderr.
void print_errors(const std::vector<config::ConfigError>& errors);

}  // namespace egw::server

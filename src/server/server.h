// Server: the control thread. Loads the configuration, builds the runtime
// snapshot, starts the workers, then waits for signals:
//   SIGHUP          reload: a valid file becomes the new snapshot for new
//                   sessions; an invalid one is logged and changes nothing.
//   SIGUSR2         reopen the access logs (after logrotate moved them).
//   SIGTERM, SIGINT drain: stop accepting, let sessions finish for
//                   grace_period_ms, then close them; a second signal closes
//                   them at once.
// and for what the admin API hands it (a reload, a binary upgrade), through
// a task queue and an eventfd beside the signalfd. The control thread never
// touches a worker's objects: it posts to mailboxes.
//
// A binary upgrade (src/server/upgrade.h): the control thread starts the
// binary again with the same arguments and hands it every listening socket;
// once the new process says it is ready, this one hands over the admin and
// metrics sockets too, tells the service manager the new main PID, and
// drains. It exits at the grace deadline at the latest. A new process that
// fails, or is not ready within kUpgradeReadyTimeoutMs, is killed and this
// one serves on as if nothing had happened.
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
#include "src/server/upgrade.h"
#include "src/tls/ticket_keys.h"

namespace egw::server {

class Worker;

struct Options {
  std::string config_path = "config/expressgateway.toml";
  std::optional<unsigned> workers;      // --workers overrides [global] workers
  std::optional<log::Level> log_level;  // --log-level overrides [global] log_level
  // The command line as started (argv[0] included): a binary upgrade runs
  // it again.
  std::vector<std::string> argv;
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
  int serve();
  // -- binary upgrade (control thread)
  // Starts the new process; `done` gets the reply (JSON) once it is ready,
  // failed or timed out, or at once when an upgrade cannot start now.
  using UpgradeDone = std::function<void(std::string reply)>;
  void start_upgrade(UpgradeDone done);
  void on_upgrade_link();  // the new process said something, or is gone
  void fail_upgrade(std::string why);
  void hand_over(pid_t pid);
  // The new process's side: reads what the old one hands over ($kUpgradeFdEnv).
  bool inherit(std::string& why);
  void on_predecessor_link();  // the old process is gone
  void begin_drain(uint32_t grace_ms);
  uint64_t now_ms() const;

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
  void watchdog_tick(uint64_t now);
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
  uint64_t drain_deadline_ms_ = 0;  // past it the process exits, finished or not
  // Binary upgrade: the executable as started, the upgrade under way, the
  // new process once it took over (the link is held until this one exits),
  // and in the new process, what was inherited and the link to the old one
  // (open until it exits).
  std::string exe_path_;
  struct PendingUpgrade {
    pid_t pid = 0;
    UniqueFd link;
    uint64_t deadline_ms = 0;
    UpgradeDone done;
  };
  std::optional<PendingUpgrade> upgrade_;
  UniqueFd successor_link_;
  pid_t successor_pid_ = 0;
  std::atomic<bool> handed_over_{false};
  std::optional<Inheritance> inherited_;
  UniqueFd predecessor_link_;
  std::atomic<pid_t> predecessor_pid_{0};
  std::string startup_error_;  // why the start failed (told to the old process)
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

#include "src/server/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "src/server/privileges.h"
#include "src/server/worker.h"

#include <mutex>
#include <thread>
#include "uring/probe.h"

namespace egw::server {

void print_errors(const std::vector<config::ConfigError>& errors) {
  for (const auto& e : errors)
    std::fprintf(stderr, "%s\n", e.to_string().c_str());
  std::fflush(stderr);
}

namespace {

// A drain that outlives its grace period by this much ends the process.
constexpr uint64_t kDrainBackstopMs = 5000;

void raise_nofile() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  EGW_LOG(debug, "RLIMIT_NOFILE {}", rl.rlim_cur);
}

}  // namespace

Server::Server(Options options) : options_(std::move(options)) {}

Server::~Server() {
  for (auto& w : workers_)
    w->join();
}

int Server::run() {
  exe_path_ = self_executable();
  if (std::getenv(kUpgradeFdEnv)) {
    std::string why;
    if (!inherit(why)) {
      EGW_LOG(error, "upgrade: {}", why);
      startup_error_ = why;
    }
  }
  const int rc = startup_error_.empty() ? serve() : kExitFailure;
  if (predecessor_link_ && !startup_error_.empty()) {
    // Still starting: the old process serves on and says why in its reply.
    std::string why;
    send_link(predecessor_link_.get(),
              nlohmann::json{{"k", "failed"}, {"error", startup_error_}}.dump(), {}, why);
  }
  return rc;
}

bool Server::inherit(std::string& why) {
  const char* text = std::getenv(kUpgradeFdEnv);
  char* end = nullptr;
  const long fd = std::strtol(text, &end, 10);
  ::unsetenv(kUpgradeFdEnv);  // not for whatever this process starts
  if (!end || *end != '\0' || fd < 3 || fd > INT32_MAX ||
      ::fcntl(static_cast<int>(fd), F_GETFD) < 0) {
    why = fmt::format("{}='{}' is not an open descriptor", kUpgradeFdEnv, text);
    return false;
  }
  predecessor_link_ = UniqueFd(static_cast<int>(fd));
  ::fcntl(predecessor_link_.get(), F_SETFD, FD_CLOEXEC);
  inherited_ = Inheritance::receive(predecessor_link_.get(), why);
  if (!inherited_) return false;
  predecessor_pid_ = inherited_->predecessor();
  generation_ = inherited_->generation();
  notifier_.take_over_from(inherited_->predecessor());
  EGW_LOG(info, "upgrade: taking over from process {} (generation {})", predecessor_pid_.load(),
          generation_);
  return true;
}

int Server::serve() {
  // Every failure before the workers serve is also told to the old process
  // of a binary upgrade (startup_error_).
  auto fail = [this](int code, std::string why) {
    startup_error_ = why.empty() ? std::string("failed to start (see its log)") : std::move(why);
    return code;
  };
  auto joined = [](const std::vector<config::ConfigError>& errors) {
    std::string out;
    for (const auto& e : errors)
      out += (out.empty() ? "" : "\n") + e.to_string();
    return out;
  };
  auto loaded = config::load_file(options_.config_path);
  if (!loaded.errors.empty()) {
    print_errors(loaded.errors);
    std::fprintf(stderr, "%s: invalid configuration, not starting\n", options_.config_path.c_str());
    return fail(kExitInvalidConfig, joined(loaded.errors));
  }
  auto cfg = std::make_shared<config::Config>(*loaded.config);
  if (options_.workers) cfg->global.workers = *options_.workers;
  log::set_level(options_.log_level.value_or(cfg->global.log_level));
  worker_count_ = cfg->global.workers;

  const uring::Features& f = uring::features();
  if (!f.available) {
    EGW_LOG(error, "cannot run: {}", f.unavailable_reason);
    return fail(kExitFailure, f.unavailable_reason);
  }
  EGW_LOG(info, "expressgateway {} starting with {} workers", EGW_VERSION, worker_count_);
  EGW_LOG(info, "{}", f.report());
  tickets_ = std::make_shared<tls::TicketKeys>(cfg->global.tls_ticket_rotation_s);
  if (inherited_ && !inherited_->tickets().empty()) {
    // The old process's ticket keys: its clients resume here.
    if (!tickets_->import_keys(inherited_->tickets()))
      EGW_LOG(warn, "upgrade: the old process's ticket keys did not import; new ones are used");
  }
  raise_nofile();

  // Signals are taken by the control thread through a signalfd; workers
  // inherit the blocked mask and never see them.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2})
    sigaddset(&mask, sig);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) {
    EGW_LOG(error, "signalfd: {}", std::strerror(errno));
    return fail(kExitFailure, fmt::format("signalfd: {}", std::strerror(errno)));
  }

  auto built = build_runtime(cfg, nullptr, worker_count_, ++generation_, tickets_,
                             inherited_ ? &*inherited_ : nullptr);
  if (!built.errors.empty()) {
    print_errors(built.errors);
    std::fprintf(stderr, "%s: cannot start\n", options_.config_path.c_str());
    return fail(kExitInvalidConfig, joined(built.errors));
  }
  runtime_ = std::move(built.runtime);
  publish_runtime();
  start_time_s_ =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  control_wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!control_wake_) {
    EGW_LOG(error, "eventfd: {}", std::strerror(errno));
    return fail(kExitFailure, fmt::format("eventfd: {}", std::strerror(errno)));
  }
  if (!cfg->admin.socket.empty()) {
    std::string why;
    UniqueFd handed = inherited_ ? inherited_->take_admin(cfg->admin.socket) : UniqueFd();
    admin_ = handed ? AdminServer::adopt(cfg->admin, std::move(handed), why)
                    : AdminServer::bind(cfg->admin, why);
    if (!admin_) {
      const std::string text =
          fmt::format("{}:{}:{}: [admin] socket: {}", options_.config_path,
                      cfg->admin.socket_loc.line, cfg->admin.socket_loc.column, why);
      EGW_LOG(error, "{}", text);
      return fail(kExitInvalidConfig, text);
    }
  }
  if (const auto& m = cfg->admin.metrics) {
    std::string why;
    UniqueFd handed = inherited_ ? inherited_->take_metrics(m->to_string()) : UniqueFd();
    metrics_ = handed ? MetricsServer::adopt(std::move(handed), why) : MetricsServer::bind(*m, why);
    if (!metrics_) {
      const std::string text =
          fmt::format("{}:{}:{}: [admin] metrics: {}", options_.config_path,
                      cfg->admin.metrics_loc.line, cfg->admin.metrics_loc.column, why);
      EGW_LOG(error, "{}", text);
      return fail(kExitInvalidConfig, text);
    }
  }
  if (inherited_) {
    if (const size_t left = inherited_->left())
      EGW_LOG(info, "upgrade: {} handed-over sockets are not in this configuration: closed", left);
    inherited_.reset();
  }
  // The listeners are bound: root is needed no more.
  if (const auto& g = cfg->global; !g.user.empty()) {
    std::string why;
    auto id = resolve_identity(g.user, g.group, why);
    if (!id || !drop_privileges(*id, why)) {
      EGW_LOG(error, "cannot drop privileges: {}", why);
      return fail(kExitFailure, "cannot drop privileges: " + why);
    }
    EGW_LOG(info, "running as user {} (uid {}), group {} (gid {}), with CAP_NET_BIND_SERVICE only",
            id->user, id->uid, id->group, id->gid);
  } else if (::geteuid() == 0) {
    EGW_LOG(warn,
            "running as root: set [global] user to drop privileges once the listeners are bound");
  }
  for (unsigned i = 0; i < worker_count_; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i));
    if (!workers_.back()->start(runtime_)) {
      EGW_LOG(error, "worker {} failed to start; shutting down", i);
      drain(0);
      for (auto& w : workers_)
        w->join();
      return fail(kExitFailure, fmt::format("worker {} failed to start (see its log)", i));
    }
  }
  if (metrics_) {
    metrics_->start([this] { return render_metrics(); });
    EGW_LOG(info, "metrics: http://{}/metrics", metrics_->address().to_string());
  }
  if (admin_) {
    admin_->start([this](std::string_view line) { return admin_reply(line); });
    EGW_LOG(info, "admin socket: {} (expressgateway ctl --socket {} help)", admin_->path(),
            admin_->path());
  }
  log_ready();
  if (predecessor_link_) {
    // The old process tells the service manager (our new main PID), then
    // drains; until it exits this one refuses to upgrade again.
    std::string why;
    if (!send_link(predecessor_link_.get(),
                   nlohmann::json{{"k", "ready"}, {"pid", ::getpid()}}.dump(), {}, why)) {
      EGW_LOG(warn, "upgrade: {}; serving anyway", why);
      notifier_.ready(status_line());
    }
  } else {
    notifier_.ready(status_line());
  }
  beats_ = std::make_unique<std::atomic<uint64_t>[]>(worker_count_);
  beats_seen_.assign(worker_count_, 0);
  // Fed at a quarter of systemd's interval, when every worker answered.
  const uint64_t beat_ms = notifier_.watchdog_usec() / 4000;
  if (beat_ms)
    EGW_LOG(info, "watchdog: every worker is asked for a sign of life every {} ms", beat_ms);

  for (;;) {
    pollfd p[4] = {{sfd.get(), POLLIN, 0},
                   {control_wake_.get(), POLLIN, 0},
                   {upgrade_ ? upgrade_->link.get() : -1, POLLIN, 0},
                   {predecessor_link_ ? predecessor_link_.get() : -1, POLLIN, 0}};
    int wait_ms = draining_ ? 50 : 1000;
    if (beat_ms) wait_ms = static_cast<int>(std::min<uint64_t>(wait_ms, beat_ms));
    ::poll(p, 4, wait_ms);
    if (p[1].revents & POLLIN) run_control_tasks();
    if (upgrade_ && p[2].revents) on_upgrade_link();
    if (predecessor_link_ && p[3].revents) on_predecessor_link();
    const uint64_t now = now_ms();
    if (upgrade_ && now >= upgrade_->deadline_ms) {
      fail_upgrade(
          fmt::format("the new process was not ready within {} s", kUpgradeReadyTimeoutMs / 1000));
    }
    if (beat_ms && !handed_over_ && now - last_beat_ms_ >= beat_ms) watchdog_tick(now);
    signalfd_siginfo si;
    while (::read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
      switch (si.ssi_signo) {
        case SIGHUP:
          if (draining_) break;
          if (upgrade_) {
            EGW_LOG(warn, "SIGHUP: an upgrade is under way; no reload");
            break;
          }
          reload("SIGHUP");
          break;
        case SIGUSR1:
          log_stats();
          break;
        case SIGUSR2: {
          std::vector<std::string> errors;
          reopen_logs(errors);
          break;
        }
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
          if (!draining_) {
            EGW_LOG(info, "signal {}: draining (grace period {} ms)",
                    strsignal(static_cast<int>(si.ssi_signo)),
                    runtime_->config->global.grace_period_ms);
            if (upgrade_) fail_upgrade("shutting down");
            notifier_.stopping(fmt::format("draining (grace period {} ms)",
                                           runtime_->config->global.grace_period_ms));
            begin_drain(runtime_->config->global.grace_period_ms);
          } else {
            EGW_LOG(info, "second signal: closing every session now");
            drain(0);
          }
          break;
      }
    }
    if (draining_) {
      bool all = true;
      for (auto& w : workers_)
        all = all && w->finished();
      if (all) break;
      if (now >= drain_deadline_ms_) {
        // No stranded process: whatever holds a worker, this one goes.
        EGW_LOG(error, "the workers did not finish {} ms after the grace period; exiting now",
                kDrainBackstopMs);
        std::fflush(nullptr);
        ::_exit(kExitFailure);
      }
    }
  }
  // Both ask the workers: gone before the workers are.
  close_control_tasks();
  admin_.reset();
  metrics_.reset();
  for (auto& w : workers_)
    w->join();
  EGW_LOG(info, "stopped");
  return kExitOk;
}

uint64_t Server::now_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void Server::begin_drain(uint32_t grace_ms) {
  draining_ = true;
  drain_deadline_ms_ = now_ms() + grace_ms + kDrainBackstopMs;
  drain(grace_ms);
}

// --- binary upgrade ----------------------------------------------------------------------------

void Server::start_upgrade(UpgradeDone done) {
  auto refuse = [&done](std::string why) {
    done(nlohmann::json{{"ok", false}, {"error", std::move(why)}}.dump());
  };
  if (draining_) return refuse("draining: this process no longer upgrades");
  if (upgrade_) return refuse(fmt::format("an upgrade is under way (process {})", upgrade_->pid));
  if (const pid_t old = predecessor_pid_.load()) {
    return refuse(fmt::format(
        "the previous process (pid {}) is still draining (at most {} ms after the upgrade); "
        "upgrade again once it has exited",
        old, runtime_->config->global.grace_period_ms));
  }
  if (exe_path_.empty() || options_.argv.empty())
    return refuse("the path of the running binary is unknown");
  Handover h;
  h.generation = generation_;
  h.tickets = tickets_->export_keys();
  const auto& cfg = *runtime_->config;
  for (size_t l = 0; l < cfg.listeners.size(); ++l) {
    for (const auto& b : runtime_->binds[l]) {
      Handover::Listener hl{cfg.listeners[l].name, b->text, {}};
      for (const auto& fd : b->fds)
        if (fd) hl.fds.push_back(fd.get());
      if (!hl.fds.empty()) h.listeners.push_back(std::move(hl));
    }
  }
  if (admin_) {
    h.admin_path = admin_->path();
    h.admin_fd = admin_->listen_fd();
  }
  if (metrics_ && cfg.admin.metrics) {
    h.metrics_bind = cfg.admin.metrics->to_string();
    h.metrics_fd = metrics_->listen_fd();
  }
  std::string why;
  auto child = spawn_upgrade(exe_path_, options_.argv, why);
  if (!child) return refuse(why);
  EGW_LOG(info, "upgrade: started {} as process {}", exe_path_, child->pid);
  upgrade_ = PendingUpgrade{child->pid, std::move(child->link), now_ms() + kUpgradeReadyTimeoutMs,
                            std::move(done)};
  if (!send_handover(upgrade_->link.get(), h, why)) fail_upgrade(why);
}

void Server::on_upgrade_link() {
  LinkMessage m;
  std::string why;
  switch (recv_link(upgrade_->link.get(), 0, m, why)) {
    case LinkRead::kTimeout:
      return;
    case LinkRead::kEof:
      return fail_upgrade("the new process exited before it was ready");
    case LinkRead::kError:
      return fail_upgrade(why);
    case LinkRead::kMessage:
      break;
  }
  const auto j = nlohmann::json::parse(m.text, nullptr, false);
  const std::string k = j.is_object() ? j.value("k", std::string()) : std::string();
  if (k == "failed") return fail_upgrade(j.value("error", std::string("failed to start")));
  if (k == "ready" && j.value("pid", 0) == upgrade_->pid) return hand_over(upgrade_->pid);
  fail_upgrade("the new process said something unexpected on the upgrade link");
}

void Server::fail_upgrade(std::string why) {
  PendingUpgrade u = std::move(*upgrade_);
  upgrade_.reset();
  u.link.reset();
  // It may still be running (not ready in time, or it said something
  // wrong): it must not serve beside this process.
  // One that said why it failed is on its way out: a moment to exit.
  int status = 0;
  pid_t r = 0;
  for (int i = 0; i < 200 && (r = ::waitpid(u.pid, &status, WNOHANG)) == 0; ++i)
    ::usleep(10'000);
  if (r == 0) {
    ::kill(u.pid, SIGKILL);
    r = ::waitpid(u.pid, &status, 0);
  }
  std::string how;
  if (r == u.pid && WIFEXITED(status)) {
    how = fmt::format(" (exit status {})", WEXITSTATUS(status));
  } else if (r == u.pid && WIFSIGNALED(status)) {
    how = fmt::format(" ({})", strsignal(WTERMSIG(status)));
  }
  EGW_LOG(error, "upgrade failed: {}{}; this process (generation {}) serves on", why, how,
          generation_);
  nlohmann::json reply{{"ok", false},
                       {"error", fmt::format("upgrade failed: {}{}; the running process (pid {}) "
                                             "serves on",
                                             why, how, ::getpid())}};
  u.done(reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void Server::hand_over(pid_t pid) {
  PendingUpgrade u = std::move(*upgrade_);
  upgrade_.reset();
  successor_link_ = std::move(u.link);  // held until this process exits: its end tells the new one
  successor_pid_ = pid;
  handed_over_ = true;
  if (admin_) admin_->hand_over();
  if (metrics_) metrics_->hand_over();
  notifier_.main_pid(pid, fmt::format("upgraded: process {} serves", pid));
  const uint32_t grace = runtime_->config->global.grace_period_ms;
  EGW_LOG(info,
          "upgrade: process {} serves; this one (pid {}) stops accepting and drains (grace "
          "period {} ms)",
          pid, ::getpid(), grace);
  u.done(nlohmann::json{{"ok", true},
                        {"command", "upgrade"},
                        {"pid", pid},
                        {"previous_pid", ::getpid()},
                        {"previous_generation", generation_},
                        {"grace_period_ms", grace}}
             .dump());
  begin_drain(grace);
}

void Server::on_predecessor_link() {
  LinkMessage m;
  std::string why;
  const LinkRead r = recv_link(predecessor_link_.get(), 0, m, why);
  if (r == LinkRead::kTimeout || r == LinkRead::kMessage) return;  // nothing is expected
  EGW_LOG(info, "upgrade: the previous process (pid {}) has exited", predecessor_pid_.load());
  predecessor_link_.reset();
  predecessor_pid_ = 0;
}

void Server::log_stats() {
  std::map<std::string, stats::PhaseLatency> listeners, clusters;
  std::mutex mu;
  std::atomic<unsigned> done{0};
  unsigned posted = 0;
  for (auto& w : workers_) {
    Worker* raw = w.get();
    const bool ok = raw->post([raw, &listeners, &clusters, &mu, &done] {
      raw->log_stats();
      {
        std::lock_guard<std::mutex> lock(mu);
        raw->merge_latency(listeners, clusters);
      }
      done.fetch_add(1);
    });
    if (ok) ++posted;
  }
  // The closures reference this frame: wait for every one of them.
  while (done.load() < posted)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::string out;
  for (const auto& [name, lat] : listeners)
    out += lat.summary("latency listener " + name);
  for (const auto& [name, lat] : clusters)
    out += lat.summary("latency cluster " + name);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  if (!out.empty()) EGW_LOG(info, "latency by phase (all workers):\n{}", out);
}

void Server::drain(uint32_t grace_ms) {
  for (auto& w : workers_) {
    Worker* raw = w.get();
    raw->post([raw, grace_ms] { raw->drain(grace_ms); });
  }
}

void Server::watchdog_tick(uint64_t now) {
  last_beat_ms_ = now;
  bool all = true;
  for (unsigned i = 0; i < worker_count_; ++i)
    all = all && beats_[i].load() > beats_seen_[i];
  if (all) {
    notifier_.watchdog();
    for (unsigned i = 0; i < worker_count_; ++i)
      beats_seen_[i] = beats_[i].load();
  }
  for (unsigned i = 0; i < worker_count_; ++i) {
    std::atomic<uint64_t>* b = &beats_[i];
    workers_[i]->post([b] { b->fetch_add(1); });
  }
}

std::string Server::status_line() const {
  return fmt::format("generation {}, {} workers, {} listeners", generation_, worker_count_,
                     runtime_->config->listeners.size());
}

bool Server::reload(std::string_view why, std::vector<std::string>* errors) {
  EGW_LOG(info, "{}: reloading {}", why, options_.config_path);
  notifier_.reloading();
  const bool ok = apply_reload(errors);
  notifier_.ready(
      ok ? status_line()
         : fmt::format("reload failed: keeping generation {} (see the log)", generation_));
  return ok;
}

std::vector<std::string> Server::reopen_logs(std::vector<std::string>& errors) {
  std::vector<std::string> done;
  for (const auto& f : runtime_->access_logs) {
    if (!f || std::find(done.begin(), done.end(), f->path()) != done.end()) continue;
    std::string why;
    if (f->reopen(why)) {
      done.push_back(f->path());
    } else {
      EGW_LOG(error, "reopen: {} (the old file stays in use)", why);
      errors.push_back(why);
    }
  }
  EGW_LOG(info, "access logs reopened: {}",
          done.empty() ? "none" : fmt::format("{}", fmt::join(done, ", ")));
  return done;
}

void Server::post_control(ControlTask task) {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    if (!control_closed_) {
      control_tasks_.push_back(std::move(task));
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(control_wake_.get(), &one, sizeof(one));
      return;
    }
  }
  task(false);
}

void Server::run_control_tasks() {
  uint64_t n = 0;
  [[maybe_unused]] const ssize_t r = ::read(control_wake_.get(), &n, sizeof(n));
  std::vector<ControlTask> tasks;
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    tasks.swap(control_tasks_);
  }
  for (auto& t : tasks)
    t(true);
}

void Server::close_control_tasks() {
  std::vector<ControlTask> tasks;
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    control_closed_ = true;
    tasks.swap(control_tasks_);
  }
  for (auto& t : tasks)
    t(false);
}

bool Server::apply_reload(std::vector<std::string>* errors) {
  auto loaded = config::load_file(options_.config_path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) {
      EGW_LOG(error, "reload: {}", e.to_string());
      if (errors) errors->push_back(e.to_string());
    }
    EGW_LOG(error, "reload failed: keeping the running configuration (generation {})", generation_);
    return false;
  }
  auto cfg = std::make_shared<config::Config>(*loaded.config);
  cfg->global.workers = worker_count_;
  const auto& old = runtime_->config->global;
  if (cfg->global.buffer_count != old.buffer_count || cfg->global.buffer_size != old.buffer_size ||
      cfg->global.max_pipes != old.max_pipes || cfg->global.pipe_size != old.pipe_size ||
      cfg->global.max_sessions != old.max_sessions || cfg->global.user != old.user ||
      cfg->global.group != old.group || !(cfg->admin == runtime_->config->admin) ||
      (loaded.config->global.workers != worker_count_ && !options_.workers)) {
    EGW_LOG(warn,
            "reload: [global] workers, buffer/pipe/session sizes, user, group and [admin] "
            "take effect at restart");
    cfg->global.buffer_count = old.buffer_count;
    cfg->global.buffer_size = old.buffer_size;
    cfg->global.max_pipes = old.max_pipes;
    cfg->global.pipe_size = old.pipe_size;
    cfg->global.max_sessions = old.max_sessions;
    cfg->global.user = old.user;
    cfg->global.group = old.group;
    cfg->admin = runtime_->config->admin;
  }
  if (!options_.log_level) log::set_level(cfg->global.log_level);
  auto built = build_runtime(cfg, runtime_.get(), worker_count_, generation_ + 1, tickets_);
  if (!built.errors.empty()) {
    for (const auto& e : built.errors) {
      EGW_LOG(error, "reload: {}", e.to_string());
      if (errors) errors->push_back(e.to_string());
    }
    EGW_LOG(error, "reload failed: keeping the running configuration (generation {})", generation_);
    return false;
  }
  ++generation_;
  runtime_ = std::move(built.runtime);
  publish_runtime();
  for (auto& w : workers_) {
    Worker* raw = w.get();
    RuntimePtr rt = runtime_;
    raw->post([raw, rt] { raw->apply(rt); });
  }
  EGW_LOG(info, "reloaded: generation {}", generation_);
  log_ready();
  return true;
}

void Server::log_ready() const {
  std::string binds;
  const auto& cfg = *runtime_->config;
  for (size_t l = 0; l < cfg.listeners.size(); ++l) {
    for (const auto& b : runtime_->binds[l]) {
      if (!binds.empty()) binds += ", ";
      binds += fmt::format("{}={} ({})", cfg.listeners[l].name, b->address.to_string(),
                           config::to_string(cfg.listeners[l].protocol));
    }
  }
  EGW_LOG(info, "ready: generation {}, {} workers, listening on {}", generation_, worker_count_,
          binds);
}

}  // namespace egw::server

#include "src/server/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

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
  auto loaded = config::load_file(options_.config_path);
  if (!loaded.errors.empty()) {
    print_errors(loaded.errors);
    std::fprintf(stderr, "%s: invalid configuration, not starting\n", options_.config_path.c_str());
    return kExitInvalidConfig;
  }
  auto cfg = std::make_shared<config::Config>(*loaded.config);
  if (options_.workers) cfg->global.workers = *options_.workers;
  log::set_level(options_.log_level.value_or(cfg->global.log_level));
  worker_count_ = cfg->global.workers;

  const uring::Features& f = uring::features();
  if (!f.available) {
    EGW_LOG(error, "cannot run: {}", f.unavailable_reason);
    return kExitFailure;
  }
  EGW_LOG(info, "expressgateway {} starting with {} workers", EGW_VERSION, worker_count_);
  EGW_LOG(info, "{}", f.report());
  tickets_ = std::make_shared<tls::TicketKeys>(cfg->global.tls_ticket_rotation_s);
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
    return kExitFailure;
  }

  auto built = build_runtime(cfg, nullptr, worker_count_, ++generation_, tickets_);
  if (!built.errors.empty()) {
    print_errors(built.errors);
    std::fprintf(stderr, "%s: cannot start\n", options_.config_path.c_str());
    return kExitInvalidConfig;
  }
  runtime_ = std::move(built.runtime);
  publish_runtime();
  start_time_s_ =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  control_wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!control_wake_) {
    EGW_LOG(error, "eventfd: {}", std::strerror(errno));
    return kExitFailure;
  }
  if (!cfg->admin.socket.empty()) {
    std::string why;
    admin_ = AdminServer::bind(cfg->admin, why);
    if (!admin_) {
      EGW_LOG(error, "{}:{}:{}: [admin] socket: {}", options_.config_path,
              cfg->admin.socket_loc.line, cfg->admin.socket_loc.column, why);
      return kExitInvalidConfig;
    }
  }
  if (const auto& m = cfg->admin.metrics) {
    std::string why;
    metrics_ = MetricsServer::bind(*m, why);
    if (!metrics_) {
      EGW_LOG(error, "{}:{}:{}: [admin] metrics: {}", options_.config_path,
              cfg->admin.metrics_loc.line, cfg->admin.metrics_loc.column, why);
      return kExitInvalidConfig;
    }
  }
  // The listeners are bound: root is needed no more.
  if (const auto& g = cfg->global; !g.user.empty()) {
    std::string why;
    auto id = resolve_identity(g.user, g.group, why);
    if (!id || !drop_privileges(*id, why)) {
      EGW_LOG(error, "cannot drop privileges: {}", why);
      return kExitFailure;
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
      return kExitFailure;
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
  notifier_.ready(status_line());
  beats_ = std::make_unique<std::atomic<uint64_t>[]>(worker_count_);
  beats_seen_.assign(worker_count_, 0);
  // Fed at a quarter of systemd's interval, when every worker answered.
  const uint64_t beat_ms = notifier_.watchdog_usec() / 4000;
  if (beat_ms)
    EGW_LOG(info, "watchdog: every worker is asked for a sign of life every {} ms", beat_ms);

  bool draining = false;
  for (;;) {
    pollfd p[2] = {{sfd.get(), POLLIN, 0}, {control_wake_.get(), POLLIN, 0}};
    int wait_ms = draining ? 50 : 1000;
    if (beat_ms) wait_ms = static_cast<int>(std::min<uint64_t>(wait_ms, beat_ms));
    ::poll(p, 2, wait_ms);
    if (p[1].revents & POLLIN) run_control_tasks();
    if (beat_ms) {
      const uint64_t now =
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now().time_since_epoch())
                                    .count());
      if (now - last_beat_ms_ >= beat_ms) watchdog_tick(now);
    }
    signalfd_siginfo si;
    while (::read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
      switch (si.ssi_signo) {
        case SIGHUP:
          if (!draining) reload("SIGHUP");
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
          if (!draining) {
            EGW_LOG(info, "signal {}: draining (grace period {} ms)",
                    strsignal(static_cast<int>(si.ssi_signo)),
                    runtime_->config->global.grace_period_ms);
            draining = true;
            draining_ = true;
            notifier_.stopping(fmt::format("draining (grace period {} ms)",
                                           runtime_->config->global.grace_period_ms));
            drain(runtime_->config->global.grace_period_ms);
          } else {
            EGW_LOG(info, "second signal: closing every session now");
            drain(0);
          }
          break;
      }
    }
    if (draining) {
      bool all = true;
      for (auto& w : workers_)
        all = all && w->finished();
      if (all) break;
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

void Server::watchdog_tick(uint64_t now_ms) {
  last_beat_ms_ = now_ms;
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

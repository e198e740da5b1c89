#include "src/server/worker.h"

#include <algorithm>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/server/server.h"
#include "uring/probe.h"

namespace egw::server {

Worker::Worker(Server& server, unsigned index) : server_(server), index_(index) {
  metrics_timer_.set_callback([this] { publish_metrics(); });
  grace_timer_.set_callback([this] {
    EGW_LOG(info, "grace period over: closing {} remaining sessions", live_.size());
    live_.for_each([](downstream::Session& s) { s.abort(); });
  });
}

Worker::~Worker() {
  join();
}

bool Worker::start(RuntimePtr rt) {
  thread_ = std::thread([this, rt = std::move(rt)]() mutable { run(std::move(rt)); });
  while (!ready_.load())
    std::this_thread::yield();
  return !failed_.load();
}

bool Worker::post(uring::Mailbox::Message m) {
  if (!mailbox_ || finished_.load()) return false;
  return mailbox_->post(std::move(m));
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run(RuntimePtr rt) {
  log::set_thread_tag(fmt::format("w{}", index_));
  const config::GlobalConfig& g = rt->config->global;
  uring::LoopOptions lo;
  lo.buffers.count = g.buffer_count;
  lo.buffers.size = g.buffer_size;
  // A client socket per session, and about as many toward endpoints.
  lo.owners = 2 * size_t{g.max_sessions} + 1024;
  auto loop = uring::EventLoop::create(lo);
  if (!loop) {
    EGW_LOG(error, "worker {}: cannot create its io_uring event loop: {}", index_,
            loop.error().message());
    failed_ = true;
    ready_ = true;
    return;
  }
  loop_ = std::move(*loop);
  pipes_ = std::make_unique<uring::PipePool>(g.max_pipes, g.pipe_size);
  sessions_ = std::make_unique<SlabPool<downstream::TcpSession>>(256, g.max_sessions);
  connections_ = std::make_unique<SlabPool<downstream::Connection>>(256, g.max_sessions);
  proxy_readers_ = std::make_unique<SlabPool<downstream::ProxyReader>>(64, g.max_sessions);
  http_sessions_ = std::make_unique<SlabPool<downstream::H1Session>>(256, g.max_sessions);
  h2_sessions_ = std::make_unique<SlabPool<downstream::H2Session>>(16, g.max_sessions);
  h2_streams_ = std::make_unique<SlabPool<downstream::H2Stream>>(256);
  h2_spare_streams_.reserve(256);
  exchanges_ = std::make_unique<SlabPool<proxy::Exchange>>(256, g.max_sessions);
  h1_requests_ = std::make_unique<SlabPool<downstream::H1Request>>(16, g.max_sessions);
  header_blocks_ = std::make_unique<SlabPool<upstream::HeaderBlock>>(16);
  http_connections_ = std::make_unique<SlabPool<upstream::HttpConnection>>(256);
  uring::Mailbox mailbox(*loop_);
  mailbox_ = &mailbox;
  apply(std::move(rt));
  publish_metrics();
  ready_ = true;

  if (auto st = loop_->run(); !st) {
    EGW_LOG(error, "worker {}: event loop failed: {}", index_, st.error().message());
  }
  // Every session is gone: what the access logs hold goes out now.
  close_unused_access_logs(true);
  // Finish what is in flight (cancels, closes) before the loop goes away.
  for (int i = 0; i < 1000 && loop_->live_owners() > 0; ++i)
    (void)loop_->run_once(false);
  finished_ = true;
  mailbox_ = nullptr;
  log_stats();
  listeners_.clear();
  http_pools_.clear();
  h2_pools_.clear();
  for (int i = 0; i < 1000 && loop_->live_owners() > 0; ++i)
    (void)loop_->run_once(false);
  checkers_.clear();
  stopping_checkers_.clear();
  closing_writers_.clear();
  retired_.clear();
  current_.reset();
  sessions_.reset();
  connections_.reset();
  h2_sessions_.reset();
  http_sessions_.reset();
  h2_streams_.reset();
  exchanges_.reset();
  h1_requests_.reset();
  http_connections_.reset();
  header_blocks_.reset();
  pipes_.reset();
  loop_.reset();
  tls::release_thread_state();
}

void Worker::apply(RuntimePtr rt) {
  auto snap = std::make_unique<WorkerSnapshot>();
  snap->runtime = std::move(rt);
  for (size_t i = 0; i < snap->runtime->clusters.size(); ++i) {
    const auto& c = snap->runtime->clusters[i];
    auto& lat = cluster_latency_[c->name()];
    if (!lat) lat = std::make_unique<stats::PhaseLatency>();
    snap->clusters.push_back(
        std::make_unique<WorkerCluster>(*c, index_ * 0x9E3779B97F4A7C15ull + 1, lat.get()));
    snap->clusters.back()->tls = snap->runtime->cluster_tls[i].get();
  }
  for (const auto& l : snap->runtime->config->listeners) {
    auto& lat = listener_latency_[l.name];
    if (!lat) lat = std::make_unique<stats::PhaseLatency>();
    snap->listener_latency.push_back(lat.get());
    std::unique_ptr<route::Router> router;
    if (!l.routes.empty()) {
      // The loader already built these routes once to validate them.
      if (auto r = route::Router::build(l.routes)) {
        router = std::make_unique<route::Router>(std::move(*r));
      } else {
        EGW_LOG(error, "listener {}: {}", l.name, r.error().to_string());
      }
    }
    std::unique_ptr<proxy::ListenerView> view;
    if (l.protocol == config::Protocol::kHttp) {
      const size_t li = snap->routers.size();
      const ListenerRuntime& lr = snap->runtime->listeners[li];
      view = std::make_unique<proxy::ListenerView>();
      view->config = &l;
      view->router = router.get();
      view->latency = lat.get();
      for (int ci : lr.route_clusters)
        view->route_clusters.push_back(ci >= 0 ? snap->clusters[static_cast<size_t>(ci)].get()
                                               : nullptr);
      if (lr.default_cluster >= 0)
        view->default_cluster = snap->clusters[static_cast<size_t>(lr.default_cluster)].get();
    }
    snap->http_listeners.push_back(std::move(view));
    snap->routers.push_back(std::move(router));
  }
  attach_access_logs(*snap);
  if (current_) retired_.push_back(std::move(current_));
  current_ = std::move(snap);
  if (!draining_) reconcile_listeners();
  if (index_ == 0 && !draining_) reconcile_health_checks();
  release_snapshots();
}

void Worker::attach_access_logs(WorkerSnapshot& snap) {
  const Runtime& rt = *snap.runtime;
  for (size_t l = 0; l < rt.access_logs.size(); ++l) {
    accesslog::Writer* w = nullptr;
    if (const auto& f = rt.access_logs[l]; f && rt.access_formats[l]) {
      auto& slot = log_writers_[f.get()];
      if (!slot) {
        slot = std::make_unique<accesslog::Writer>(
            *loop_, f, rt.config->listeners[l].access_log->buffer_bytes,
            accesslog::Counters{&stats_.access_log_lines, &stats_.access_log_dropped,
                                &stats_.access_log_write_errors});
      }
      w = slot.get();
    }
    snap.access_logs.push_back(w);
    if (snap.http_listeners[l]) {
      snap.http_listeners[l]->access_log = w;
      snap.http_listeners[l]->access_format = rt.access_formats[l].get();
    }
  }
}

void Worker::close_unused_access_logs(bool all) {
  std::vector<const accesslog::File*> used;
  auto note = [&used](const WorkerSnapshot& s) {
    for (const auto& f : s.runtime->access_logs)
      if (f) used.push_back(f.get());
  };
  if (current_) note(*current_);
  for (const auto& s : retired_)
    note(*s);
  for (auto it = log_writers_.begin(); it != log_writers_.end();) {
    if (!all && std::find(used.begin(), used.end(), it->first) != used.end()) {
      ++it;
      continue;
    }
    accesslog::Writer* raw = it->second.get();
    closing_writers_.push_back(std::move(it->second));
    it = log_writers_.erase(it);
    raw->close([this, raw] {
      loop_->defer([this, raw] {
        std::erase_if(closing_writers_, [raw](const auto& p) { return p.get() == raw; });
      });
    });
  }
}

void Worker::reconcile_listeners() {
  const Runtime& rt = *current_->runtime;
  std::vector<bool> kept(listeners_.size(), false);
  for (size_t l = 0; l < rt.binds.size(); ++l) {
    for (const auto& bs : rt.binds[l]) {
      bool found = false;
      for (size_t i = 0; i < listeners_.size(); ++i) {
        if (listeners_[i]->sockets == bs && !listeners_[i]->stopping) {
          listeners_[i]->listener = l;
          kept[i] = true;
          found = true;
        }
      }
      if (found) continue;
      auto e = std::make_unique<ListenerEntry>();
      e->sockets = bs;
      e->listener = l;
      ListenerEntry* raw = e.get();
      e->acceptor = std::make_unique<uring::Acceptor>(
          *loop_, bs->fds[index_].get(),
          [this, raw](UniqueFd fd) { on_accept(*raw, std::move(fd)); });
      if (!accept_paused_) e->acceptor->start();
      listeners_.push_back(std::move(e));
      kept.push_back(true);
    }
  }
  // Listeners the new snapshot no longer has: stop, and close this worker's
  // socket so that new connections are refused rather than left in a backlog
  // nobody accepts from (the old snapshot may live on while sessions finish).
  for (size_t i = 0; i < kept.size(); ++i) {
    if (!kept[i]) stop_listener(*listeners_[i], true);
  }
}

void Worker::stop_listener(ListenerEntry& e, bool close_socket) {
  if (e.stopping) return;
  e.stopping = true;
  ListenerEntry* raw = &e;
  e.acceptor->stop([this, raw, close_socket] {
    if (close_socket) raw->sockets->fds[index_].reset();
    // Erase later: we are inside the acceptor's own callback.
    loop_->defer([this, raw] {
      std::erase_if(listeners_, [raw](const auto& p) { return p.get() == raw; });
      maybe_finish();
    });
  });
}

void Worker::on_accept(ListenerEntry& e, UniqueFd fd) {
  stats_.accepted.fetch_add(1, std::memory_order_relaxed);
  ++current_->listener_latency[e.listener]->accepted;
  const auto& cfg = current_->runtime->config;
  const size_t in_use = sessions_->in_use() + connections_->in_use() + proxy_readers_->in_use();
  if (in_use >= cfg->global.max_sessions) {
    // At max_sessions: this one is closed; stop accepting until one ends.
    pause_accepting(true);
    return;
  }
  downstream::Session* session = nullptr;
  if (cfg->listeners[e.listener].proxy_protocol) {
    // The header first; the session starts once it is read (proxy_read).
    if (auto* r = proxy_readers_->create(*this, *current_, e.listener, std::move(fd))) {
      session = r;
      live_.push_back(*r);
      r->start();
    }
  } else {
    session = start_session(*current_, e.listener, std::move(fd), nullptr);
  }
  if (!session) {
    pause_accepting(true);
    return;
  }
  ++current_->sessions;
  stats_.active.fetch_add(1, std::memory_order_relaxed);
  // Accepted while the acceptor was stopping (a completion already under
  // way): served, as the last request of its connection.
  if (draining_) session->drain();
  if (in_use + 1 >= cfg->global.max_sessions) pause_accepting(true);
}

downstream::Session* Worker::start_session(WorkerSnapshot& snap, size_t l, UniqueFd fd,
                                           const downstream::Proxied* proxied) {
  if (snap.runtime->config->listeners[l].protocol == config::Protocol::kHttp) {
    auto* s = connections_->create(*this, snap, l, std::move(fd), proxied);
    if (!s) return nullptr;
    live_.push_back(*s);
    s->start();
    return s;
  }
  auto* s = sessions_->create(*this, snap, l, std::move(fd), proxied);
  if (!s) return nullptr;
  live_.push_back(*s);
  s->start();
  return s;
}

void Worker::proxy_read(downstream::ProxyReader& r) {
  WorkerSnapshot& snap = r.snapshot();
  if (r.ok()) {
    const size_t l = r.listener();
    UniqueFd fd = r.take_fd();
    std::optional<downstream::Proxied> addrs;
    if (const downstream::Proxied* p = r.proxied()) addrs = *p;
    proxy_readers_->destroy(&r);
    // The session takes over the reader's place (and its count).
    if (downstream::Session* s = start_session(snap, l, std::move(fd), addrs ? &*addrs : nullptr)) {
      if (draining_) s->drain();
      return;
    }
    session_destroyed(snap);
    return;
  }
  proxy_readers_->destroy(&r);
  session_destroyed(snap);
}

void Worker::pause_accepting(bool pause) {
  if (accept_paused_ == pause) return;
  accept_paused_ = pause;
  if (pause) {
    EGW_LOG_RATELIMITED(warn, 1000, "worker {}: max_sessions reached; pausing accepts", index_);
  }
  for (auto& e : listeners_) {
    if (e->stopping) continue;
    if (pause) {
      e->acceptor->pause();
    } else {
      e->acceptor->resume();
    }
  }
}

void Worker::session_ended(downstream::TcpSession& s, WorkerSnapshot& snap) {
  sessions_->destroy(&s);  // unlinks it from live_
  session_destroyed(snap);
}

void Worker::session_ended(downstream::Connection& c, WorkerSnapshot& snap) {
  connections_->destroy(&c);
  session_destroyed(snap);
}

void Worker::session_destroyed(WorkerSnapshot& snap) {
  --snap.sessions;
  stats_.active.fetch_sub(1, std::memory_order_relaxed);
  if (accept_paused_ && !draining_) pause_accepting(false);
  if (&snap != current_.get()) release_snapshots();
  maybe_finish();
}

upstream::Pool& Worker::http_pool(const std::shared_ptr<upstream::EndpointState>& ep,
                                  const tls::ClientContext* tls) {
  auto& p = http_pools_[{ep.get(), tls}];
  if (!p) p = std::make_unique<upstream::Pool>(*loop_);
  return *p;
}

upstream::H2Pool& Worker::h2_pool(const std::shared_ptr<upstream::EndpointState>& ep,
                                  tls::ClientContext* tls) {
  auto& p = h2_pools_[{ep.get(), tls}];
  if (!p) p = std::make_unique<upstream::H2Pool>(*loop_, stats_, ep);
  return *p;
}

upstream::HttpConnection* Worker::new_http_connection(std::shared_ptr<upstream::EndpointState> ep,
                                                      upstream::Pool* pool) {
  stats_.upstream_connects.fetch_add(1, std::memory_order_relaxed);
  return http_connections_->create(*loop_, *header_blocks_, *http_connections_, std::move(ep),
                                   pool);
}

void Worker::release_snapshots() {
  const size_t before = retired_.size();
  std::erase_if(retired_, [](const std::unique_ptr<WorkerSnapshot>& s) {
    if (s->sessions != 0) return false;
    for (const auto& c : s->clusters) {
      if (c->queued != 0) return false;
    }
    return true;
  });
  if (retired_.size() != before) close_unused_access_logs();
}

void Worker::slot_freed(WorkerCluster& wc) {
  if (upstream::Waiter* w = wc.pop(index_)) {
    w->dequeued();
    return;
  }
  // Nobody waits here; wake a worker that has waiters for this cluster.
  const upstream::Cluster* c = &wc.cluster;
  if (wc.cluster.total_waiting() == 0) return;
  for (unsigned w = 0; w < wc.cluster.workers(); ++w) {
    if (w == index_ || wc.cluster.waiting(w).load(std::memory_order_relaxed) == 0) continue;
    Worker* target = server_.worker(w);
    if (target) target->post([target, c] { target->kick(c); });
    return;
  }
}

void Worker::kick(const upstream::Cluster* c) {
  auto serve = [this, c](WorkerSnapshot& snap) {
    for (auto& wc : snap.clusters) {
      if (&wc->cluster != c) continue;
      if (upstream::Waiter* w = wc->pop(index_)) {
        w->dequeued();
        return true;
      }
    }
    return false;
  };
  if (current_ && serve(*current_)) return;
  for (auto& snap : retired_) {
    if (serve(*snap)) return;
  }
}

void Worker::reconcile_health_checks() {
  std::map<const upstream::EndpointState*, std::unique_ptr<upstream::HealthChecker>> next;
  const Runtime& rt = *current_->runtime;
  for (size_t ci = 0; ci < rt.clusters.size(); ++ci) {
    const auto& cfg = rt.config->clusters[ci].health_check;
    if (cfg.type == config::HealthCheckConfig::Type::kNone) continue;
    const auto& cluster = *rt.clusters[ci];
    for (size_t i = 0; i < cluster.size(); ++i) {
      const upstream::EndpointState* key = cluster.endpoint_ptr(i).get();
      if (next.count(key)) continue;
      auto it = checkers_.find(key);
      if (it != checkers_.end()) {
        it->second->update(cfg, rt.cluster_tls[ci]);
        next.emplace(key, std::move(it->second));
        checkers_.erase(it);
      } else {
        auto hc = std::make_unique<upstream::HealthChecker>(*loop_, cluster.endpoint_ptr(i), cfg,
                                                            rt.cluster_tls[ci]);
        hc->start();
        next.emplace(key, std::move(hc));
      }
    }
  }
  // What is left is no longer configured: stop it.
  for (auto& [key, hc] : checkers_) {
    upstream::HealthChecker* raw = hc.get();
    stopping_checkers_.push_back(std::move(hc));
    raw->stop([this, raw] {
      loop_->defer([this, raw] {
        std::erase_if(stopping_checkers_, [raw](const auto& p) { return p.get() == raw; });
      });
    });
  }
  checkers_ = std::move(next);
}

void Worker::drain(uint32_t grace_ms) {
  if (draining_) {
    if (grace_ms == 0) {
      EGW_LOG(info, "closing {} sessions now", live_.size());
      loop_->timers().cancel(grace_timer_);
      live_.for_each([](downstream::Session& s) { s.abort(); });
    }
    return;
  }
  draining_ = true;
  drain_idle_ms_ =
      std::min<uint64_t>(current_->runtime->config->global.drain_idle_ms, grace_ms / 2);
  for (auto& e : listeners_)
    stop_listener(*e, true);
  for (auto& [key, hc] : checkers_) {
    upstream::HealthChecker* raw = hc.get();
    stopping_checkers_.push_back(std::move(hc));
    raw->stop([this, raw] {
      loop_->defer([this, raw] {
        std::erase_if(stopping_checkers_, [raw](const auto& p) { return p.get() == raw; });
        maybe_finish();
      });
    });
  }
  checkers_.clear();
  live_.for_each([](downstream::Session& s) { s.drain(); });
  if (!live_.empty())
    EGW_LOG(info, "draining {} sessions (grace period {} ms)", live_.size(), grace_ms);
  // Armed even with no session left: one may still be accepted while the
  // acceptors stop.
  loop_->timers().schedule_after(grace_timer_, grace_ms);
  maybe_finish();
}

void Worker::maybe_finish() {
  if (!draining_) return;
  EGW_LOG(debug, "drain: {} sessions, {} listeners, {} health checks left", live_.size(),
          listeners_.size(), stopping_checkers_.size());
  if (!live_.empty() || !listeners_.empty() || !stopping_checkers_.empty()) return;
  loop_->timers().cancel(grace_timer_);
  loop_->timers().cancel(metrics_timer_);
  loop_->stop();
}

void Worker::publish_metrics() {
  // Only when the loop did anything since: an idle worker costs nothing.
  // (Each histogram is reduced to its 18 buckets: about a microsecond.)
  if (loop_->counters().cqes != metrics_cqes_) {
    metrics_cqes_ = loop_->counters().cqes;
    WorkerMetrics m;
    collect_metrics(m);
    std::lock_guard<std::mutex> lock(metrics_mu_);
    metrics_ = std::move(m);
  }
  metrics_ms_.store(clock::now_ns() / 1'000'000u, std::memory_order_release);
  loop_->timers().schedule_after(metrics_timer_, kMetricsPublishMs);
}

uint64_t Worker::published_metrics(WorkerMetrics& out) const {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  out = metrics_;
  return metrics_ms_.load(std::memory_order_acquire);
}

void Worker::collect_metrics(WorkerMetrics& out) {
  auto reduce = [](const stats::PhaseLatency& lat) {
    WorkerMetrics::Phases p;
    for (size_t i = 0; i < p.size(); ++i)
      p[i] = stats::LatencyBuckets::of(lat.phases[i]);
    return p;
  };
  for (const auto& [name, lat] : listener_latency_) {
    out.listeners[name] = reduce(*lat);
    out.listener_responses[name] = lat->responses;
  }
  for (const auto& [name, lat] : cluster_latency_) {
    out.clusters[name] = reduce(*lat);
    out.cluster_responses[name] = lat->responses;
  }
  if (loop_) {
    out.loop = loop_->counters();
    out.buffers_in_use = loop_->buffers().in_use();
    out.buffers = loop_->buffers().count();
    out.chunks_in_use = loop_->chunks_in_use();
  }
}

void Worker::collect_counts(WorkerCounts& out) {
  auto fill = [](WorkerCounts::Named& n, const stats::PhaseLatency& lat) {
    n.responses = lat.responses;
    n.accepted = lat.accepted;
    n.connect_failures = lat.connect_failures;
    n.retries = lat.retries;
    n.refused = lat.refused;
    n.queue_timeouts = lat.queue_timeouts;
  };
  for (const auto& [name, lat] : listener_latency_)
    fill(out.listeners[name], *lat);
  for (const auto& [name, lat] : cluster_latency_)
    fill(out.clusters[name], *lat);
  live_.for_each([&out](downstream::Session& s) {
    downstream::SessionInfo info;
    s.describe(info);
    if (info.listener) ++out.listeners[*info.listener].active;
  });
}

void Worker::collect_sessions(WorkerSessions& out, uint32_t limit) {
  const uint64_t now = clock::now_ns();
  live_.for_each([&](downstream::Session& s) {
    downstream::SessionInfo info;
    s.describe(info);
    ++out.total;
    ++out.by_state[{info.protocol, info.state}];
    const std::string& listener = info.listener ? *info.listener : std::string();
    ++out.by_listener[listener];
    if (out.rows.size() < limit) {
      out.rows.push_back({listener, info.protocol, info.state, info.peer,
                          now > info.accept_ns ? (now - info.accept_ns) / 1'000'000u : 0,
                          info.streams});
    }
  });
}

void Worker::wake_waiters(const std::string& name) {
  auto wake = [this, &name](WorkerSnapshot& snap) {
    for (auto& wc : snap.clusters) {
      if (wc->cluster.name() != name) continue;
      // Each waiter tries once; one that finds no slot goes back to the
      // head of the line, and then the rest would find none either.
      for (uint32_t n = wc->queued; n > 0; --n) {
        upstream::Waiter* w = wc->pop(index_);
        if (!w) break;
        const uint32_t left = wc->queued;
        w->dequeued();
        if (wc->queued > left) break;
      }
    }
  };
  // The current snapshot's waiters only: a waiter may end its session at
  // once, which may free a retired snapshot under a loop over them. Those
  // of older snapshots move as slots free.
  if (current_) wake(*current_);
}

void Worker::merge_latency(std::map<std::string, stats::PhaseLatency>& listeners,
                           std::map<std::string, stats::PhaseLatency>& clusters) {
  for (const auto& [name, lat] : listener_latency_)
    listeners[name].merge(*lat);
  for (const auto& [name, lat] : cluster_latency_)
    clusters[name].merge(*lat);
}

void Worker::log_stats() {
  const auto& c = loop_->counters();
  std::string by_op;
  for (size_t i = 0; i < c.sqes.size(); ++i) {
    if (c.sqes[i] == 0) continue;
    by_op += fmt::format(" {}={}", uring::to_string(static_cast<uring::Op>(i)), c.sqes[i]);
  }
  EGW_LOG(info,
          "worker {} sqes by op:{}; http: {} requests, {} proxy errors, {} upstream connects, {} "
          "reused, {} refused and sent again",
          index_, by_op, stats_.http_requests.load(), stats_.http_errors.load(),
          stats_.upstream_connects.load(), stats_.upstream_reused.load(),
          stats_.upstream_refused.load());
  if (stats_.tls_handshakes.load() + stats_.tls_failures.load() + stats_.tls_timeouts.load() +
          stats_.tls_upstream_handshakes.load() + stats_.tls_upstream_failures.load() +
          stats_.sni_routed.load() >
      0) {
    EGW_LOG(info,
            "worker {} tls: {} handshakes ({} resumed), {} failed, {} timed out; "
            "upstream: {} handshakes ({} resumed), {} failed; passthrough: {} routed by SNI, {} "
            "without SNI",
            index_, stats_.tls_handshakes.load(), stats_.tls_resumed.load(),
            stats_.tls_failures.load(), stats_.tls_timeouts.load(),
            stats_.tls_upstream_handshakes.load(), stats_.tls_upstream_resumed.load(),
            stats_.tls_upstream_failures.load(), stats_.sni_routed.load(),
            stats_.sni_missing.load());
  }
  if (stats_.proxy_headers.load() + stats_.proxy_untrusted.load() + stats_.proxy_invalid.load() +
          stats_.proxy_timeouts.load() >
      0) {
    EGW_LOG(info,
            "worker {} proxy protocol: {} headers ({} without addresses), {} from untrusted "
            "sources, {} invalid, {} timed out",
            index_, stats_.proxy_headers.load(), stats_.proxy_local.load(),
            stats_.proxy_untrusted.load(), stats_.proxy_invalid.load(),
            stats_.proxy_timeouts.load());
  }
  EGW_LOG(
      info,
      "worker {} stats: {} sessions accepted, {} connect failures, {} retries, {} queued, {} "
      "queue timeouts, {} refused (no endpoint), {} splice / {} copy relays; engine: {} enters, "
      "{} sqes, {} cqes, {} stale cqes, {} cq overflows; receive buffers {}/{} in use, {} "
      "receivers parked for lack of them ({} re-armed), {} chunks in use",
      index_, stats_.accepted.load(), stats_.connect_failures.load(), stats_.retries.load(),
      stats_.queued.load(), stats_.queue_timeouts.load(), stats_.refused_no_endpoint.load(),
      stats_.relays_splice.load(), stats_.relays_copy.load(), c.enters, c.total_sqes(), c.cqes,
      c.stale_cqes, c.cq_overflows, loop_ ? loop_->buffers().in_use() : 0,
      loop_ ? loop_->buffers().count() : 0, c.enobufs, c.rearms,
      loop_ ? loop_->chunks_in_use() : 0);
}

}  // namespace egw::server

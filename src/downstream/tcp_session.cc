#include "src/downstream/tcp_session.h"

#include <cstring>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/server/worker.h"
#include "uring/copy_relay.h"
#include "uring/splice_relay.h"

namespace egw::downstream {

TcpSession::TcpSession(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
                       UniqueFd client)
    : worker_(worker),
      snap_(snap),
      cluster_(*snap.clusters[static_cast<size_t>(
          snap.runtime->cluster_index(snap.runtime->config->listeners[listener].cluster))]),
      listener_(snap.runtime->config->listeners[listener]),
      client_(std::move(client)),
      connector_(worker.loop(), *this) {
  if (auto p = SocketAddress::peer_of(client_.get())) peer_ = *p;
  hash_ = upstream::hash_client(peer_);
  idle_timeout_ms_ = std::min<uint64_t>(listener_.client_idle_timeout_ms,
                                        cluster_.cluster.config().server_idle_timeout_ms);
  timer_.set_callback([this] { on_timer(); });
}

TcpSession::~TcpSession() {
  EGW_ASSERT(endpoint_ < 0);
}

void TcpSession::start() {
  pick();
}

void TcpSession::pick() {
  state_ = State::kPicking;
  const auto& cc = cluster_.cluster.config();
  const auto p = cluster_.picker.pick(hash_, cc.redispatch ? avoid_ : -1, worker_.loop().now_ms());
  switch (p.outcome) {
    case upstream::Picker::Outcome::kPicked:
      endpoint_ = p.index;
      connect();
      return;
    case upstream::Picker::Outcome::kFull:
      if (cluster_.queued >= cc.max_queue) {
        worker_.stats().refused_queue_full.fetch_add(1, std::memory_order_relaxed);
        fail("queue full");
        return;
      }
      state_ = State::kQueued;
      queued_ns_ = clock::cached_ns();
      cluster_.queue.push_back(*this);
      ++cluster_.queued;
      cluster_.cluster.waiting(worker_.index()).fetch_add(1, std::memory_order_relaxed);
      worker_.stats().queued.fetch_add(1, std::memory_order_relaxed);
      if (!timer_.armed()) worker_.loop().timers().schedule_after(timer_, cc.queue_timeout_ms);
      return;
    case upstream::Picker::Outcome::kNoneUp:
      worker_.stats().refused_no_endpoint.fetch_add(1, std::memory_order_relaxed);
      EGW_LOG_RATELIMITED(warn, 1000,
                          "cluster {}: no endpoint is up; closing client {} (listener {})",
                          cluster_.cluster.name(), peer_.to_string(), listener_.name);
      fail("no endpoint up");
      return;
  }
}

void TcpSession::dequeued() {
  EGW_ASSERT(state_ == State::kQueued);
  --cluster_.queued;
  cluster_.cluster.waiting(worker_.index()).fetch_sub(1, std::memory_order_relaxed);
  const auto& cc = cluster_.cluster.config();
  const auto p = cluster_.picker.pick(hash_, -1, worker_.loop().now_ms());
  if (p.outcome == upstream::Picker::Outcome::kFull) {
    // Someone else took the slot: back to the head of the line.
    cluster_.queue.push_front(*this);
    ++cluster_.queued;
    cluster_.cluster.waiting(worker_.index()).fetch_add(1, std::memory_order_relaxed);
    return;
  }
  worker_.loop().timers().cancel(timer_);
  cluster_.latency->record(stats::Phase::kQueueWait, queued_ns_, clock::cached_ns());
  if (p.outcome == upstream::Picker::Outcome::kNoneUp) {
    worker_.stats().refused_no_endpoint.fetch_add(1, std::memory_order_relaxed);
    fail("no endpoint up");
    return;
  }
  (void)cc;
  endpoint_ = p.index;
  connect();
}

void TcpSession::connect() {
  state_ = State::kConnecting;
  auto& ep = cluster_.cluster.endpoint(static_cast<size_t>(endpoint_));
  ep.sessions.fetch_add(1, std::memory_order_relaxed);
  connector_live_ = true;
  connect_ns_ = clock::cached_ns();
  if (auto st = connector_.connect(ep.address(), cluster_.cluster.config().connect_timeout_ms);
      !st) {
    // No socket at all (descriptor limit): not the endpoint's fault.
    EGW_LOG_RATELIMITED(error, 1000, "cannot connect to {}: {}", ep.label(), st.error().message());
    fail("socket");
  }
}

void TcpSession::on_connect_done(uring::Connector& c, int err) {
  auto& cc = cluster_.cluster.config();
  auto& ep = cluster_.cluster.endpoint(static_cast<size_t>(endpoint_));
  if (state_ != State::kConnecting) return;
  if (err == 0) {
    ep.connect_succeeded();
    cluster_.latency->record(stats::Phase::kConnect, connect_ns_, clock::cached_ns());
    UniqueFd upstream = c.take_fd();
    std::unique_ptr<uring::Relay> relay;
    uring::RelayHandler& handler = *this;
    if (worker_.pipes().max() > 0) {
      relay = std::make_unique<uring::SpliceRelay>(worker_.loop(), worker_.pipes(), handler);
      worker_.stats().relays_splice.fetch_add(1, std::memory_order_relaxed);
    } else {
      relay = std::make_unique<uring::CopyRelay>(worker_.loop(), handler);
      worker_.stats().relays_copy.fetch_add(1, std::memory_order_relaxed);
    }
    relay_ = std::move(relay);
    relay_live_ = true;
    state_ = State::kRelaying;
    relay_->start(std::move(client_), std::move(upstream));
    arm_idle_timer();
    c.close();  // its job is done; on_connector_released() follows
    return;
  }
  worker_.stats().connect_failures.fetch_add(1, std::memory_order_relaxed);
  const uint32_t backoff = cc.health_check.type == config::HealthCheckConfig::Type::kNone
                               ? std::max<uint32_t>(cc.health_check.interval_ms, 1000)
                               : cc.health_check.interval_ms;
  if (ep.connect_failed(cc.health_check.fall, worker_.loop().now_ms(), backoff)) {
    EGW_LOG(warn, "endpoint {} marked down for {} ms after {} consecutive connect failures ({})",
            ep.label(), backoff, cc.health_check.fall,
            err == ETIMEDOUT ? "timeout" : std::strerror(err));
  }
  release_slot();
  if (attempts_ < cc.retries) {
    ++attempts_;
    worker_.stats().retries.fetch_add(1, std::memory_order_relaxed);
    pick();
    return;
  }
  EGW_LOG_RATELIMITED(warn, 1000,
                      "cluster {}: connect to {} failed ({}); giving up after {} attempts",
                      cluster_.cluster.name(), ep.label(),
                      err == ETIMEDOUT ? "timeout" : std::strerror(err), attempts_ + 1);
  fail("connect failed");
}

void TcpSession::release_slot() {
  if (endpoint_ < 0) return;
  avoid_ = endpoint_;
  cluster_.cluster.endpoint(static_cast<size_t>(endpoint_)).release();
  endpoint_ = -1;
  worker_.slot_freed(cluster_);
}

void TcpSession::arm_idle_timer() {
  worker_.loop().timers().schedule_after(timer_, idle_timeout_ms_);
}

void TcpSession::on_timer() {
  const uint64_t now = worker_.loop().now_ms();
  switch (state_) {
    case State::kQueued:
      cluster_.queue.erase(*this);
      --cluster_.queued;
      cluster_.cluster.waiting(worker_.index()).fetch_sub(1, std::memory_order_relaxed);
      worker_.stats().queue_timeouts.fetch_add(1, std::memory_order_relaxed);
      fail("queue timeout");
      return;
    case State::kRelaying: {
      const uint64_t last = relay_->last_activity_ms();
      if (now - last >= idle_timeout_ms_) {
        worker_.stats().idle_timeouts.fetch_add(1, std::memory_order_relaxed);
        close();
        return;
      }
      // Activity since: sleep until the idle deadline counted from it.
      worker_.loop().timers().schedule(timer_, last + idle_timeout_ms_);
      return;
    }
    default:
      return;
  }
}

void TcpSession::on_relay_done(uring::Relay&, int) {
  close();
}

void TcpSession::fail(const char*) {
  close();
}

void TcpSession::abort() {
  if (state_ == State::kQueued) {
    cluster_.queue.erase(*this);
    --cluster_.queued;
    cluster_.cluster.waiting(worker_.index()).fetch_sub(1, std::memory_order_relaxed);
  }
  close();
}

void TcpSession::close() {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  worker_.loop().timers().cancel(timer_);
  if (relay_) {
    auto& st = worker_.stats();
    st.bytes_in.fetch_add(relay_->bytes_a_to_b(), std::memory_order_relaxed);
    st.bytes_out.fetch_add(relay_->bytes_b_to_a(), std::memory_order_relaxed);
    if (endpoint_ >= 0) {
      auto& ep = cluster_.cluster.endpoint(static_cast<size_t>(endpoint_));
      ep.bytes_to.fetch_add(relay_->bytes_a_to_b(), std::memory_order_relaxed);
      ep.bytes_from.fetch_add(relay_->bytes_b_to_a(), std::memory_order_relaxed);
    }
    relay_->close();
  }
  release_slot();
  client_.reset();
  if (connector_live_) connector_.close();
  maybe_destroy();
}

void TcpSession::on_connector_released(uring::Connector&) {
  connector_live_ = false;
  maybe_destroy();
}

void TcpSession::on_relay_released(uring::Relay&) {
  relay_live_ = false;
  maybe_destroy();
}

void TcpSession::maybe_destroy() {
  if (state_ != State::kClosing || connector_live_ || relay_live_) return;
  worker_.session_ended(*this, snap_);  // destroys *this
}

}  // namespace egw::downstream

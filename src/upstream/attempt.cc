#include "src/upstream/attempt.h"

#include <algorithm>
#include <cstring>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/upstream/endpoint.h"

namespace egw::upstream {

const char* Attempt::to_string(Refusal r) {
  switch (r) {
    case Refusal::kQueueFull:
      return "queue full";
    case Refusal::kNoneUp:
      return "no endpoint up";
  }
  return "?";
}

void Attempt::begin(WorkerCluster& wc, uint64_t hash, stats::PhaseLatency* listener) {
  leave_queue();
  release();
  wc_ = &wc;
  hash_ = hash;
  listener_ = listener;
  avoid_ = -1;
  attempts_ = 0;
  queue_us_ = connect_us_ = -1;
}

void Attempt::record(stats::Phase p, uint64_t from_ns) {
  const uint64_t now = clock::cached_ns();
  const auto us = static_cast<int32_t>(
      std::min<uint64_t>(now > from_ns ? (now - from_ns) / 1000 : 0, INT32_MAX));
  if (p == stats::Phase::kQueueWait) queue_us_ = us;
  if (p == stats::Phase::kConnect) connect_us_ = us;
  if (listener_) listener_->record(p, from_ns, now);
  if (wc_->latency) wc_->latency->record(p, from_ns, now);
}

void Attempt::pick() {
  const auto& cc = wc_->cluster.config();
  const auto p = wc_->picker.pick(hash_, cc.redispatch ? avoid_ : -1, ctx_.loop().now_ms());
  switch (p.outcome) {
    case Picker::Outcome::kPicked:
      endpoint_ = p.index;
      handler_.on_picked(p.index);
      return;
    case Picker::Outcome::kFull:
      if (wc_->queued >= cc.max_queue) {
        ctx_.stats().refused_queue_full.fetch_add(1, std::memory_order_relaxed);
        if (wc_->latency) ++wc_->latency->refused;
        handler_.on_refused(Refusal::kQueueFull);
        return;
      }
      queued_ns_ = clock::cached_ns();
      wc_->enqueue(*this, ctx_.worker_index());
      ctx_.stats().queued.fetch_add(1, std::memory_order_relaxed);
      handler_.on_queued();
      return;
    case Picker::Outcome::kNoneUp:
      ctx_.stats().refused_no_endpoint.fetch_add(1, std::memory_order_relaxed);
      if (wc_->latency) ++wc_->latency->refused;
      EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: no endpoint is up", wc_->cluster.name());
      handler_.on_refused(Refusal::kNoneUp);
      return;
  }
}

void Attempt::dequeued() {
  const auto p = wc_->picker.pick(hash_, -1, ctx_.loop().now_ms());
  if (p.outcome == Picker::Outcome::kFull) {
    // Someone else took the slot: back to the head of the line.
    wc_->enqueue(*this, ctx_.worker_index(), /*front=*/true);
    return;
  }
  record(stats::Phase::kQueueWait, queued_ns_);
  if (p.outcome == Picker::Outcome::kNoneUp) {
    ctx_.stats().refused_no_endpoint.fetch_add(1, std::memory_order_relaxed);
    if (wc_->latency) ++wc_->latency->refused;
    handler_.on_refused(Refusal::kNoneUp);
    return;
  }
  endpoint_ = p.index;
  handler_.on_picked(p.index);
}

void Attempt::queue_timed_out() {
  leave_queue();
  ctx_.stats().queue_timeouts.fetch_add(1, std::memory_order_relaxed);
  if (wc_ && wc_->latency) ++wc_->latency->queue_timeouts;
}

void Attempt::leave_queue() {
  if (wc_ && queued()) wc_->leave(*this, ctx_.worker_index());
}

void Attempt::connect_succeeded() {
  wc_->cluster.endpoint(static_cast<size_t>(endpoint_)).connect_succeeded();
  record(stats::Phase::kConnect, connect_ns_);
}

bool Attempt::connect_failed(int err) {
  const auto& cc = wc_->cluster.config();
  auto& ep = wc_->cluster.endpoint(static_cast<size_t>(endpoint_));
  ctx_.stats().connect_failures.fetch_add(1, std::memory_order_relaxed);
  if (wc_->latency) ++wc_->latency->connect_failures;
  // With an active check the checker brings the endpoint back; without one
  // the back-off is all there is, so it is never shorter than a second.
  const uint32_t backoff = cc.health_check.type == config::HealthCheckConfig::Type::kNone
                               ? std::max<uint32_t>(cc.health_check.interval_ms, 1000)
                               : cc.health_check.interval_ms;
  if (ep.connect_failed(cc.health_check.fall, ctx_.loop().now_ms(), backoff)) {
    EGW_LOG(warn, "endpoint {} marked down for {} ms after {} consecutive connect failures ({})",
            ep.label(), backoff, cc.health_check.fall,
            err == ETIMEDOUT ? "timeout" : std::strerror(err));
  }
  return retry(true);
}

bool Attempt::retry(bool counts) {
  release();
  if (counts) {
    if (attempts_ >= wc_->cluster.config().retries) return false;
    ++attempts_;
  }
  ctx_.stats().retries.fetch_add(1, std::memory_order_relaxed);
  if (wc_->latency) ++wc_->latency->retries;
  return true;
}

void Attempt::release() {
  if (endpoint_ < 0) return;
  avoid_ = endpoint_;
  wc_->cluster.endpoint(static_cast<size_t>(endpoint_)).release();
  endpoint_ = -1;
  ctx_.slot_freed(*wc_);
}

}  // namespace egw::upstream

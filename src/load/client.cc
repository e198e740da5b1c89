#include "src/load/client.h"

#include <algorithm>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/load/runner.h"

namespace egw::load {
namespace {

// Closed loop: how long a connection waits after a failed connect before it
// tries again (wrk retries at once, which turns a refused port into a busy
// loop that measures nothing).
constexpr uint64_t kConnectBackoffMs = 10;
// The loop wakes at least this often to notice an interrupt.
constexpr uint64_t kMaxSleepNs = 100'000'000;
// After an interrupt, how long requests in flight may still finish.
constexpr uint64_t kInterruptDrainNs = 1'000'000'000;
// After the run, how long to wait for closed sockets to be released.
constexpr uint64_t kCloseGraceNs = 5'000'000'000;

}  // namespace

Client::Client(uring::EventLoop& loop, const WorkerPlan& plan, Stats& stats)
    : loop_(loop),
      plan_(plan),
      stats_(stats),
      sockets_(plan.connections < 256 ? plan.connections + 8 : 256),
      schedule_(Schedule::constant(1, 0, 0)) {
  // A connection may hold a closing socket and a new one at once.
  sockets_.reserve(2 * size_t{plan.connections});
  if (plan.options->h2) {
    links_.reserve(plan.connections);
    for (unsigned i = 0; i < plan.connections; ++i) {
      links_.push_back(std::make_unique<H2Link>(*this, plan.streams));
      for (auto& l : links_.back()->lanes())
        lanes_.push_back(l.get());
    }
  } else {
    connections_.reserve(plan.connections);
    for (unsigned i = 0; i < plan.connections; ++i) {
      connections_.push_back(std::make_unique<Connection>(*this));
      lanes_.push_back(connections_.back().get());
    }
  }
  available_.resize(lanes_.size());
}

Client::~Client() {
  // Connections must let go of their sockets before the pool goes.
  lanes_.clear();
  connections_.clear();
  links_.clear();
}

void Client::keep_tls_session(net::ByteStream* s, bool& saved) {
  tls::Session* t = s ? s->tls_session() : nullptr;
  if (!t || saved || !options().tls.resume) return;
  saved = true;
  if (auto session = t->save()) tls_resume_ = std::move(session);
}

void Client::push_available(Lane& c) {
  EGW_ASSERT(available_count_ < available_.size());
  available_[(available_head_ + available_count_) % available_.size()] = &c;
  ++available_count_;
}

Lane* Client::pop_available() {
  if (available_count_ == 0) return nullptr;
  Lane* c = available_[available_head_];
  available_head_ = (available_head_ + 1) % available_.size();
  --available_count_;
  return c;
}

void Client::setup() {
  phase_ = Phase::kSetup;
  if (options().new_connection_per_request) {
    for (Lane* c : lanes_)
      push_available(*c);
    return;
  }
  setup_pending_ = static_cast<unsigned>(lanes_.size());
  for (Lane* c : lanes_)
    c->preconnect();
  // Every connect carries a linked timeout, so this ends.
  while (setup_pending_ > 0) {
    if (!loop_.run_once(true)) break;
  }
}

void Client::on_available(Lane& c, bool connect_failed) {
  switch (phase_) {
    case Phase::kSetup:
      push_available(c);
      if (setup_pending_ > 0) --setup_pending_;
      return;
    case Phase::kDone:
      push_available(c);
      return;
    case Phase::kRunning:
    case Phase::kDraining:
      break;
  }
  if (options().open_loop()) {
    push_available(c);
    pump();
    return;
  }
  if (connect_failed) {
    c.backoff(kConnectBackoffMs);
    return;
  }
  const uint64_t now = clock::now_ns();
  if (phase_ != Phase::kRunning || now >= end_ns_ || stop_requested()) {
    push_available(c);
    return;
  }
  start_on(c, now);
}

void Client::start_on(Lane& c, uint64_t intended_ns) {
  ++in_flight_;
  c.start(intended_ns, intended_ns >= measure_start_ns_ && intended_ns < end_ns_);
}

void Client::pump() {
  if (pumping_ || !options().open_loop()) return;
  if (phase_ != Phase::kRunning && phase_ != Phase::kDraining) return;
  // A request that fails at once makes its connection available again from
  // inside start_on(); the nested call only queues it, and this loop (which
  // consumes one scheduled request per turn) picks it up.
  pumping_ = true;
  uint64_t now = clock::now_ns();
  while (available_count_ > 0) {
    const uint64_t t = schedule_.next();
    if (t >= end_ns_) break;
    if (t > now) {
      now = clock::now_ns();
      if (t > now) break;
    }
    Lane* c = pop_available();
    schedule_.advance();
    now = clock::now_ns();
    if (t >= measure_start_ns_) {
      // How late the generator itself was: the request was due and this
      // connection free since max(t, idle_since), yet it goes out only now.
      stats_.lag.record((now - std::min(now, std::max(t, c->idle_since_ns())) + 500) / 1000);
    }
    start_on(*c, t);
  }
  pumping_ = false;
}

uint64_t Client::next_wake(uint64_t now) const {
  uint64_t wake = now + kMaxSleepNs;
  if (phase_ == Phase::kRunning) wake = std::min(wake, end_ns_);
  if (phase_ == Phase::kDraining) wake = std::min(wake, drain_deadline_ns_);
  if (options().open_loop() && available_count_ > 0 && schedule_.next() < end_ns_) {
    wake = std::min(wake, schedule_.next());
  }
  return wake;
}

bool Client::run(uint64_t t0_ns) {
  const Options& o = options();
  measure_start_ns_ = t0_ns + o.warmup_ns;
  end_ns_ = measure_start_ns_ + o.duration_ns;
  stats_.window_start_ns = measure_start_ns_;
  if (o.arrival == Arrival::kPoisson) {
    schedule_ = Schedule::poisson(plan_.rate, t0_ns, plan_.seed);
  } else if (o.arrival == Arrival::kConstant) {
    schedule_ = Schedule::constant(plan_.rate, t0_ns, plan_.phase);
  }
  bool ok = true;
  phase_ = Phase::kRunning;
  if (!o.open_loop()) {
    // Every worker's connections start at the same t0 (an open loop's
    // schedule starts there by itself).
    for (uint64_t now; ok && (now = clock::refresh()) < t0_ns;) {
      const bool poll = t0_ns <= now + o.early_wake_ns;
      if (!poll) loop_.wake_at_ns(t0_ns - o.early_wake_ns);
      ok = loop_.run_once(!poll).has_value();
    }
  }
  if (ok && !o.open_loop()) {
    const uint64_t now = clock::now_ns();
    for (size_t n = available_count_; n > 0; --n)
      start_on(*pop_available(), now);
  }
  while (ok) {
    const uint64_t now = clock::refresh();
    if (stop_requested()) {
      // Interrupted: the window ends now and what is in flight gets at
      // most a second to finish.
      if (phase_ == Phase::kRunning && end_ns_ > now) end_ns_ = now;
      if (phase_ == Phase::kDraining) {
        drain_deadline_ns_ =
            std::min(drain_deadline_ns_, std::max(end_ns_, now) + kInterruptDrainNs);
      }
    }
    if (phase_ == Phase::kRunning && now >= end_ns_) {
      phase_ = Phase::kDraining;
      drain_deadline_ns_ =
          end_ns_ + (stop_requested() ? kInterruptDrainNs : o.timeout_ms * 1'000'000);
    }
    pump();
    if (phase_ == Phase::kDraining) {
      const bool backlog = o.open_loop() && schedule_.next() < end_ns_;
      if (in_flight_ == 0 && !backlog) break;
      if (now >= drain_deadline_ns_) {
        abandon_rest();
        break;
      }
    }
    // Sleep until a little before the next wake-up, then poll the ring
    // until it comes: the kernel wakes a sleeping thread tens of
    // microseconds late, and that lateness would be added to the latency of
    // every request sent at a wake-up.
    const uint64_t wake = next_wake(now);
    const uint64_t early = o.early_wake_ns;
    const bool poll = wake <= now + early;
    if (!poll) loop_.wake_at_ns(wake - early);
    auto rc = loop_.run_once(!poll);
    if (!rc) {
      EGW_LOG(error, "worker {}: {}", plan_.index, rc.error().message());
      ok = false;
    }
  }
  stats_.window_end_ns = end_ns_;
  if (phase_ != Phase::kDone) abandon_rest();
  close();
  return ok;
}

void Client::abandon_rest() {
  phase_ = Phase::kDone;
  for (Lane* c : lanes_)
    c->abandon(ErrorKind::kUnfinished);
  if (options().open_loop()) {
    // Requests still waiting for a connection: never sent, never answered.
    while (schedule_.next() < end_ns_) {
      if (schedule_.next() >= measure_start_ns_) stats_.count_error(ErrorKind::kUnfinished);
      schedule_.advance();
    }
  }
}

void Client::close() {
  for (Lane* c : lanes_)
    c->close();
  const uint64_t deadline = clock::now_ns() + kCloseGraceNs;
  while (loop_.live_owners() > 0 && clock::now_ns() < deadline) {
    loop_.wake_at_ns(deadline);
    if (!loop_.run_once(true)) break;
  }
  // Closed sockets are released one dispatch step after their last
  // completion; one more turn without waiting hands them back.
  (void)loop_.run_once(false);
}

}  // namespace egw::load

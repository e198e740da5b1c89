#include "src/upstream/health_check.h"

#include <cstring>

#include "egw/log.h"

namespace egw::upstream {

HealthChecker::HealthChecker(uring::EventLoop& loop, std::shared_ptr<EndpointState> endpoint,
                             const config::HealthCheckConfig& cfg)
    : loop_(loop), endpoint_(std::move(endpoint)), cfg_(cfg), conn_(loop, *this) {
  timer_.set_callback([this] { run_check(); });
}

HealthChecker::~HealthChecker() = default;

void HealthChecker::start() {
  run_check();
}

void HealthChecker::run_check() {
  if (stopping_) return;
  ++checks_;
  if (auto st = conn_.connect(endpoint_->address(), cfg_.timeout_ms); !st) {
    record(false, st.error().code);
    loop_.timers().schedule_after(timer_, cfg_.interval_ms);
  }
}

void HealthChecker::on_connect_done(uring::Connector& c, int err) {
  c.take_fd().reset();  // a tcp check only needs the handshake
  record(err == 0, err);
  if (!stopping_) loop_.timers().schedule_after(timer_, cfg_.interval_ms);
}

void HealthChecker::record(bool ok, int err) {
  if (ok) {
    failures_ = 0;
    endpoint_->connect_succeeded();
    if (!endpoint_->up() && ++successes_ >= cfg_.rise) {
      endpoint_->set_up(true);
      EGW_LOG(warn, "endpoint {} is UP (health check: {} consecutive successes)",
              endpoint_->label(), successes_);
    }
    return;
  }
  successes_ = 0;
  if (endpoint_->up() && ++failures_ >= cfg_.fall) {
    endpoint_->set_up(false);
    EGW_LOG(warn, "endpoint {} is DOWN (health check: {} after {} consecutive failures)",
            endpoint_->label(), err == ETIMEDOUT ? "timeout" : std::strerror(err), failures_);
  }
}

void HealthChecker::stop(InlineFunction<void(), 24> on_stopped) {
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  loop_.timers().cancel(timer_);
  conn_.close();
}

void HealthChecker::on_connector_released(uring::Connector&) {
  if (on_stopped_) {
    auto fn = std::move(on_stopped_);
    fn();  // may destroy *this
  }
}

}  // namespace egw::upstream

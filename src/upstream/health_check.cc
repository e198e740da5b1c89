#include "src/upstream/health_check.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>

#include "egw/log.h"

namespace egw::upstream {

HealthChecker::HealthChecker(uring::EventLoop& loop, std::shared_ptr<EndpointState> endpoint,
                             const config::HealthCheckConfig& cfg)
    : loop_(loop), endpoint_(std::move(endpoint)), cfg_(cfg), conn_(loop, *this) {
  timer_.set_callback([this] { run_check(); });
  check_timeout_.set_callback([this] { http_done(false, ETIMEDOUT, "timeout"); });
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
  if (err == 0 && cfg_.type == config::HealthCheckConfig::Type::kHttp && !stopping_) {
    // An http check: request the path, read the status line.
    uring::StreamSocketHandler& handler = *this;
    http_ = std::make_unique<uring::StreamSocket>(loop_, handler);
    http_->open(c.take_fd());
    http_->start_recv();
    http_request_ = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: expressgateway-health-check\r\n"
        "Connection: close\r\n\r\n",
        cfg_.path, endpoint_->address().to_string());
    http_response_.clear();
    http_finished_ = false;
    uring::IoBuf b;
    b.data = reinterpret_cast<const uint8_t*>(http_request_.data());
    b.len = static_cast<uint32_t>(http_request_.size());
    http_->send(b);
    loop_.timers().schedule_after(check_timeout_, cfg_.timeout_ms);
    return;
  }
  c.take_fd().reset();  // a tcp check only needs the handshake
  record(err == 0, err);
  if (!stopping_) loop_.timers().schedule_after(timer_, cfg_.interval_ms);
}

void HealthChecker::on_data(uring::StreamSocket&, const uring::IoBuf& buf) {
  if (http_response_.size() < 512) {
    http_response_.append(reinterpret_cast<const char*>(buf.data),
                          std::min<size_t>(buf.len, 512 - http_response_.size()));
  }
  uring::StreamSocket::release(buf);
  const size_t eol = http_response_.find("\r\n");
  if (eol == std::string::npos) {
    if (http_response_.size() >= 512) http_done(false, 0, "no status line");
    return;
  }
  // "HTTP/1.x NNN reason"
  unsigned status = 0;
  if (http_response_.size() >= 12 && http_response_.compare(0, 7, "HTTP/1.") == 0) {
    std::from_chars(http_response_.data() + 9, http_response_.data() + 12, status);
  }
  if (status == cfg_.expect_status) {
    http_done(true, 0, nullptr);
  } else {
    http_done(false, 0, status ? "unexpected status" : "invalid response");
  }
}

void HealthChecker::on_eof(uring::StreamSocket&) {
  http_done(false, 0, "closed before a status");
}
void HealthChecker::on_error(uring::StreamSocket&, int err) {
  http_done(false, err, nullptr);
}

void HealthChecker::http_done(bool ok, int err, const char* why) {
  if (http_finished_ || !http_) return;
  http_finished_ = true;
  loop_.timers().cancel(check_timeout_);
  std::string detail;
  if (!ok && why && std::string_view(why) == "unexpected status") {
    detail = fmt::format("status {}", http_response_.substr(9, 3));
  }
  record(ok, err, detail.empty() ? why : detail.c_str());
  http_->close();
  if (!stopping_) loop_.timers().schedule_after(timer_, cfg_.interval_ms);
}

void HealthChecker::on_released(uring::StreamSocket&) {
  // Free the socket outside its own callback.
  loop_.defer([this] {
    http_.reset();
    if (stopping_ && connector_released_ && on_stopped_) {
      auto fn = std::move(on_stopped_);
      fn();
    }
  });
}

void HealthChecker::record(bool ok, int err, const char* why) {
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
            endpoint_->label(), why ? why : (err == ETIMEDOUT ? "timeout" : std::strerror(err)),
            failures_);
  }
}

void HealthChecker::stop(InlineFunction<void(), 24> on_stopped) {
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  loop_.timers().cancel(timer_);
  loop_.timers().cancel(check_timeout_);
  if (http_) http_->close();
  conn_.close();
}

void HealthChecker::on_connector_released(uring::Connector&) {
  connector_released_ = true;
  // Done once the http socket (if any) is gone too.
  if (on_stopped_ && !http_) {
    auto fn = std::move(on_stopped_);
    fn();  // may destroy *this
  }
}

}  // namespace egw::upstream

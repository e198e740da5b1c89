// HealthChecker: active checks of one endpoint, run by one worker (worker 0)
// for all of them: every interval_ms a connect (tcp) with timeout_ms; `rise`
// consecutive successes mark a down endpoint up, `fall` consecutive failures
// mark an up endpoint down. State changes are logged with the reason.
// Endpoints start up (as in HAProxy); the first check runs at once.
#pragma once

#include <memory>
#include <string>

#include "egw/inline_function.h"
#include "src/config/config.h"
#include "src/upstream/endpoint.h"
#include "uring/connector.h"
#include "uring/event_loop.h"
#include "uring/stream_socket.h"

namespace egw::upstream {

class HealthChecker final : private uring::ConnectorHandler, private uring::StreamSocketHandler {
 public:
  HealthChecker(uring::EventLoop& loop, std::shared_ptr<EndpointState> endpoint,
                const config::HealthCheckConfig& cfg);
  ~HealthChecker();

  void start();
  // Stops; `on_stopped` runs once nothing is in flight (then it may be freed).
  void stop(InlineFunction<void(), 24> on_stopped);
  // Takes new settings for the next check (a reload that kept the endpoint).
  void update(const config::HealthCheckConfig& cfg) { cfg_ = cfg; }

  const EndpointState& endpoint() const { return *endpoint_; }
  uint64_t checks() const { return checks_; }

 private:
  void run_check();
  void on_connect_done(uring::Connector& c, int err) override;
  void on_connector_released(uring::Connector& c) override;
  void record(bool ok, int err, const char* why = nullptr);
  // http checks
  void on_connected(uring::StreamSocket&, int) override {}
  void on_data(uring::StreamSocket& s, const uring::IoBuf& buf) override;
  void on_eof(uring::StreamSocket& s) override;
  void on_error(uring::StreamSocket& s, int err) override;
  void on_sent(uring::StreamSocket&) override {}
  void on_released(uring::StreamSocket& s) override;
  void http_done(bool ok, int err, const char* why);

  uring::EventLoop& loop_;
  std::shared_ptr<EndpointState> endpoint_;
  config::HealthCheckConfig cfg_;
  uring::Connector conn_;
  uring::Timer timer_;
  uring::Timer check_timeout_;
  std::unique_ptr<uring::StreamSocket> http_;  // the http check in flight
  std::string http_request_;
  std::string http_response_;
  bool http_finished_ = false;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  uint64_t checks_ = 0;
  bool stopping_ = false;
  bool connector_released_ = false;
  InlineFunction<void(), 24> on_stopped_;
};

}  // namespace egw::upstream

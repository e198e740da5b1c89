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

namespace egw::upstream {

class HealthChecker final : private uring::ConnectorHandler {
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
  void record(bool ok, int err);

  uring::EventLoop& loop_;
  std::shared_ptr<EndpointState> endpoint_;
  config::HealthCheckConfig cfg_;
  uring::Connector conn_;
  uring::Timer timer_;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  uint64_t checks_ = 0;
  bool stopping_ = false;
  InlineFunction<void(), 24> on_stopped_;
};

}  // namespace egw::upstream

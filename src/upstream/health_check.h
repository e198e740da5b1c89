// HealthChecker: active checks of one endpoint, run by one worker (worker 0)
// for all of them. Every interval_ms a check: `tcp` connects (timeout_ms);
// `http` connects, then GETs `path` and reads the response head, which must
// come within timeout_ms more and carry expect_status. On a TLS cluster the
// http check runs over TLS with the cluster's client context (handshake,
// verification and SNI as for requests; the Host is the SNI when one is set),
// on the checker's own net::ByteStream; a tcp check stays a TCP connect. `rise` consecutive
// successes mark a down endpoint up, `fall` consecutive failures mark an up endpoint down. State
// changes are logged with the reason. Endpoints start up (as in HAProxy); the first check runs at
// once. On a cluster with protocol = "h2" the http check speaks HTTP/2 (ALPN h2 over TLS,
// prior knowledge in cleartext): the same GET as one stream, the same verdicts.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "egw/inline_function.h"
#include "egw/unique_fd.h"
#include "proto/h1/parser.h"
#include "src/config/config.h"
#include "src/net/byte_stream.h"
#include "src/tls/context.h"
#include "src/upstream/endpoint.h"
#include "uring/connector.h"
#include "uring/event_loop.h"
#include "uring/stream_socket.h"

namespace egw::upstream {

// How one check ended.
enum class CheckOutcome : uint8_t {
  kPassed,
  kConnectFailed,       // the TCP connect failed (errno)
  kTimeout,             // connect, handshake or response head too slow
  kTlsHandshakeFailed,  // detail: wolfSSL's reason (verification, alert...)
  kTlsError,            // after the handshake (a bad record...); detail as above
  kClosed,              // the endpoint closed before a whole response head
  kInvalidResponse,     // detail: what the response parser refused
  kUnexpectedStatus,    // detail: the status
  kSocketError,         // recv or send failed (errno)
};
const char* to_string(CheckOutcome o);

// The response of an http check, read as its plaintext arrives: the head is
// parsed by proto::h1::ResponseParser (1xx heads are skipped, unless 1xx is
// what is expected), so anything that parser refuses, an oversized head
// included, is an invalid response.
class CheckResponse {
 public:
  enum class Verdict : uint8_t { kNeedMore, kExpected, kUnexpectedStatus, kInvalid };
  static constexpr proto::h1::Limits kLimits{8192, 16384, 100};

  explicit CheckResponse(uint16_t expect_status);
  CheckResponse(const CheckResponse&) = delete;
  CheckResponse& operator=(const CheckResponse&) = delete;

  // Takes the next bytes of the response. Once a verdict other than
  // kNeedMore is returned, further calls return it again.
  Verdict feed(std::string_view bytes);
  // The status of the final head (kExpected, kUnexpectedStatus).
  uint16_t status() const { return status_; }
  // Why the response is invalid (kInvalid).
  proto::h1::ParseError error() const { return parser_.error(); }

 private:
  const uint16_t expect_;
  std::string buf_;  // the head being parsed (bytes of earlier 1xx heads dropped)
  std::array<proto::h1::Header, kLimits.max_headers> headers_;
  proto::h1::ResponseParser parser_;
  Verdict verdict_ = Verdict::kNeedMore;
  uint16_t status_ = 0;
};

class HealthChecker final : private uring::ConnectorHandler, private net::ByteStreamHandler {
 public:
  // `tls` is the cluster's TLS client context (null: plain endpoints).
  HealthChecker(uring::EventLoop& loop, std::shared_ptr<EndpointState> endpoint,
                const config::HealthCheckConfig& cfg,
                std::shared_ptr<tls::ClientContext> tls = nullptr);
  ~HealthChecker();

  void start();
  // Stops; `on_stopped` runs once nothing is in flight (then it may be freed).
  void stop(InlineFunction<void(), 24> on_stopped);
  // Takes new settings for the next check (a reload that kept the endpoint).
  void update(const config::HealthCheckConfig& cfg, std::shared_ptr<tls::ClientContext> tls) {
    cfg_ = cfg;
    tls_ = std::move(tls);
  }

  const EndpointState& endpoint() const { return *endpoint_; }
  uint64_t checks() const { return checks_; }

 private:
  struct HttpCheck;  // the http check in flight: socket, TLS session, response

  void run_check();
  void on_connect_done(uring::Connector& c, int err) override;
  void on_connector_released(uring::Connector& c) override;
  void record(CheckOutcome outcome, int err, std::string_view detail);
  void schedule_next();
  // http checks
  void start_http(UniqueFd fd);
  void on_plaintext(const uint8_t* p, size_t n);
  void finish(CheckOutcome outcome, int err = 0, std::string_view detail = {});
  void on_ready(net::ByteStream& s) override;
  void on_data(net::ByteStream& s, const uring::IoBuf& buf) override;
  void on_eof(net::ByteStream& s) override;
  void on_error(net::ByteStream& s, int err) override;
  void on_sent(net::ByteStream&) override {}
  void on_released(net::ByteStream& s) override;
  void send_request();
  void send_h2(bool first);
  void on_h2_input(const uint8_t* data, size_t n);

  uring::EventLoop& loop_;
  std::shared_ptr<EndpointState> endpoint_;
  config::HealthCheckConfig cfg_;
  std::shared_ptr<tls::ClientContext> tls_;
  uring::Connector conn_;
  uring::Timer timer_;
  uring::Timer check_timeout_;
  std::unique_ptr<HttpCheck> http_;  // freed once its socket is released
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  uint64_t checks_ = 0;
  bool stopping_ = false;
  bool connector_released_ = false;
  InlineFunction<void(), 24> on_stopped_;
};

}  // namespace egw::upstream

#include "src/upstream/health_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include <deque>

#include "egw/log.h"
#include "proto/h2/client.h"
#include "src/net/proxy_header.h"
#include "src/tls/context.h"
#include "src/tls/session.h"

namespace egw::upstream {

const char* to_string(CheckOutcome o) {
  switch (o) {
    case CheckOutcome::kPassed:
      return "passed";
    case CheckOutcome::kConnectFailed:
      return "connect failed";
    case CheckOutcome::kTimeout:
      return "timeout";
    case CheckOutcome::kTlsHandshakeFailed:
      return "TLS handshake failed";
    case CheckOutcome::kTlsError:
      return "TLS error";
    case CheckOutcome::kClosed:
      return "closed before a status";
    case CheckOutcome::kInvalidResponse:
      return "invalid response";
    case CheckOutcome::kUnexpectedStatus:
      return "unexpected status";
    case CheckOutcome::kSocketError:
      return "socket error";
  }
  return "?";
}

// --- CheckResponse ------------------------------------------------------------

CheckResponse::CheckResponse(uint16_t expect_status)
    : expect_(expect_status), parser_(kLimits, headers_) {}

CheckResponse::Verdict CheckResponse::feed(std::string_view bytes) {
  if (verdict_ != Verdict::kNeedMore) return verdict_;
  // One byte past the limit is enough for the parser to refuse the head.
  const size_t room =
      kLimits.max_head_bytes + 1 - std::min<size_t>(buf_.size(), kLimits.max_head_bytes + 1);
  buf_.append(bytes.substr(0, room));
  for (;;) {
    switch (parser_.parse(buf_, proto::h1::Method::kGet)) {
      case proto::h1::ParseStatus::kIncomplete:
        return verdict_;
      case proto::h1::ParseStatus::kError:
        return verdict_ = Verdict::kInvalid;
      case proto::h1::ParseStatus::kComplete:
        break;
    }
    const proto::h1::ResponseHead& head = parser_.head();
    if (head.status == expect_) {
      status_ = head.status;
      return verdict_ = Verdict::kExpected;
    }
    if (!head.informational()) {
      status_ = head.status;
      return verdict_ = Verdict::kUnexpectedStatus;
    }
    // 100 Continue, 103 Early Hints...: the final head follows.
    buf_.erase(0, parser_.head_size());
    parser_.reset();
  }
}

// --- HealthChecker --------------------------------------------------------------

namespace {

// The check as one HTTP/2 stream (a cluster with protocol = "h2"): the same
// GET, the verdict on the first final status (1xx heads are skipped unless
// expected).
struct H2Probe final : proto::h2::ClientHandler, proto::h2::Sink {
  explicit H2Probe(uint16_t expect_status) : expect(expect_status) {}

  void on_response_head(proto::h2::ClientStream&, const proto::http::ResponseHead& head,
                        bool) override {
    if (done) return;
    if (head.status == expect || !head.informational()) {
      done = true;
      status = head.status;
    }
  }
  void on_response_data(proto::h2::ClientStream& s, const uint8_t*, size_t len) override {
    cs.consume(s.id, len);
  }
  void on_response_end(proto::h2::ClientStream&, std::span<const proto::http::Field>) override {}
  void on_stream_closed(proto::h2::ClientStream&, uint32_t error_code) override {
    if (!done) {
      done = true;
      reset_code = error_code == 0 ? proto::h2::kInternalError : error_code;
    }
  }
  size_t body_ready(proto::h2::ClientStream&, size_t, bool* eof, bool* trailers) override {
    *eof = true;
    *trailers = false;
    return 0;
  }
  void write_data(proto::h2::ClientStream&, const uint8_t* hdr, size_t) override { write(hdr, 9); }
  std::span<const proto::http::Field> request_trailers(proto::h2::ClientStream&) override {
    return {};
  }
  void on_goaway(int32_t, uint32_t) override {}
  void write(const uint8_t* data, size_t len) override {
    pending.append(reinterpret_cast<const char*>(data), len);
  }

  const uint16_t expect;
  proto::h2::ClientSession cs{*this, proto::h2::ClientSettings{}};
  proto::h2::ClientStream st;
  std::string pending;  // frames produced, not yet handed to the stream
  uint16_t status = 0;
  uint32_t reset_code = 0;  // the stream ended without a final status
  bool done = false;
};

}  // namespace

struct HealthChecker::HttpCheck {
  HttpCheck(uring::EventLoop& loop, net::ByteStreamHandler& handler, uint16_t expect, bool h2)
      : stream(loop, handler), response(expect) {
    if (h2) probe = std::make_unique<H2Probe>(expect);
  }

  net::ByteStream stream;  // plain, or TLS with the cluster's client context
  std::string request;     // must live until sent: freed with the stream
  CheckResponse response;
  std::unique_ptr<H2Probe> probe;  // HTTP/2 checks
  std::deque<std::string> sent;    // HTTP/2 frames handed to the stream (kept until it is freed)
  bool finished = false;
};

HealthChecker::HealthChecker(uring::EventLoop& loop, std::shared_ptr<EndpointState> endpoint,
                             const config::HealthCheckConfig& cfg,
                             std::shared_ptr<tls::ClientContext> tls)
    : loop_(loop),
      endpoint_(std::move(endpoint)),
      cfg_(cfg),
      tls_(std::move(tls)),
      conn_(loop, *this) {
  timer_.set_callback([this] { run_check(); });
  check_timeout_.set_callback([this] { finish(CheckOutcome::kTimeout, ETIMEDOUT); });
}

HealthChecker::~HealthChecker() = default;

void HealthChecker::start() {
  run_check();
}

void HealthChecker::schedule_next() {
  if (!stopping_) loop_.timers().schedule_after(timer_, cfg_.interval_ms);
}

void HealthChecker::run_check() {
  if (stopping_) return;
  if (endpoint_->admin_state() == AdminState::kMaint) {
    // In maintenance: no checks until it is set ready or drain again.
    endpoint_->set_health_reason("in maintenance: health checks paused");
    successes_ = failures_ = 0;
    schedule_next();
    return;
  }
  ++checks_;
  if (auto st = conn_.connect(endpoint_->address(), cfg_.timeout_ms); !st) {
    record(CheckOutcome::kConnectFailed, st.error().code, {});
    schedule_next();
  }
}

void HealthChecker::on_connect_done(uring::Connector& c, int err) {
  if (err == 0 && cfg_.proxy_version != 0) {
    // The endpoint expects a PROXY header on every connection: a LOCAL one
    // (the check is ours, not a client's).
    uint8_t header[proto::proxy_protocol::kMaxWrite];
    const size_t n =
        net::build_proxy_header(static_cast<config::ClusterConfig::SendProxy>(cfg_.proxy_version),
                                nullptr, nullptr, nullptr, header);
    if (!net::write_proxy_header(c.fd(), std::span<const uint8_t>(header, n))) err = errno;
  }
  if (err == 0 && cfg_.type == config::HealthCheckConfig::Type::kHttp && !stopping_) {
    start_http(c.take_fd());
    return;
  }
  c.take_fd().reset();  // a tcp check only needs the handshake
  if (err == 0) {
    record(CheckOutcome::kPassed, 0, {});
  } else {
    record(err == ETIMEDOUT ? CheckOutcome::kTimeout : CheckOutcome::kConnectFailed, err, {});
  }
  schedule_next();
}

void HealthChecker::start_http(UniqueFd fd) {
  net::ByteStreamHandler& handler = *this;
  http_ = std::make_unique<HttpCheck>(loop_, handler, static_cast<uint16_t>(cfg_.expect_status),
                                      cfg_.h2);
  HttpCheck& h = *http_;
  const std::string& sni = tls_ ? tls_->options().sni : std::string();
  h.request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: expressgateway-health-check\r\n"
      "Connection: close\r\n\r\n",
      cfg_.path, sni.empty() ? endpoint_->address().to_string() : sni);
  loop_.timers().schedule_after(check_timeout_, cfg_.timeout_ms);
  std::unique_ptr<tls::Session> session;
  if (tls_) {
    // The cluster's context: its SNI, verification, ALPN and client certificate.
    session = tls::Session::client(*tls_, {});
    if (!session) {
      h.stream.open(std::move(fd));
      finish(CheckOutcome::kTlsHandshakeFailed, 0, "cannot create a TLS session");
      return;
    }
  }
  const bool plain = session == nullptr;
  h.stream.open(std::move(fd), std::move(session));
  h.stream.start_recv();  // a TLS stream sends its ClientHello now
  if (plain) send_request();
}

void HealthChecker::send_h2(bool first) {
  HttpCheck& h = *http_;
  H2Probe& p = *h.probe;
  if (first) {
    if (h.stream.is_tls() && h.stream.alpn() != "h2") {
      finish(CheckOutcome::kInvalidResponse, 0, "the endpoint did not agree to h2 in ALPN");
      return;
    }
    const std::string& sni = tls_ ? tls_->options().sni : std::string();
    h.request = sni.empty() ? endpoint_->address().to_string() : sni;
    const proto::h2::ClientSession::Nv pseudo[] = {
        {":method", "GET"},
        {":scheme", h.stream.is_tls() ? "https" : "http"},
        {":authority", h.request},
        {":path", cfg_.path},
    };
    const proto::h2::ClientSession::Nv fields[] = {{"user-agent", "expressgateway-health-check"}};
    if (!p.cs.start() || p.cs.submit_request(p.st, pseudo, fields, true) == 0) {
      finish(CheckOutcome::kSocketError, ENOMEM);
      return;
    }
  }
  p.cs.send(p, 1 << 16);
  if (p.pending.empty()) return;
  h.sent.push_back(std::move(p.pending));
  p.pending.clear();
  uring::IoBuf b;
  b.data = reinterpret_cast<const uint8_t*>(h.sent.back().data());
  b.len = static_cast<uint32_t>(h.sent.back().size());
  if (!h.stream.send(b)) finish(CheckOutcome::kSocketError, EPIPE);
}

void HealthChecker::on_h2_input(const uint8_t* data, size_t n) {
  HttpCheck& h = *http_;
  H2Probe& p = *h.probe;
  if (p.cs.recv(data, n) == proto::h2::ClientSession::Status::kClosed && !p.done) {
    finish(CheckOutcome::kInvalidResponse, 0,
           fmt::format("HTTP/2 connection error: {}", p.cs.error()));
    return;
  }
  if (p.done) {
    if (p.reset_code) {
      finish(CheckOutcome::kInvalidResponse, 0,
             fmt::format("stream reset: {}", proto::h2::to_string(p.reset_code)));
    } else if (p.status == cfg_.expect_status) {
      finish(CheckOutcome::kPassed);
    } else {
      finish(CheckOutcome::kUnexpectedStatus, 0, fmt::format("{}", p.status));
    }
    return;
  }
  send_h2(false);  // SETTINGS ACK, WINDOW_UPDATE
}

void HealthChecker::send_request() {
  HttpCheck& h = *http_;
  if (h.probe) {
    send_h2(true);
    return;
  }
  uring::IoBuf b;
  b.data = reinterpret_cast<const uint8_t*>(h.request.data());
  b.len = static_cast<uint32_t>(h.request.size());
  if (!h.stream.send(b)) finish(CheckOutcome::kSocketError, EPIPE);
}

void HealthChecker::on_ready(net::ByteStream&) {
  if (!http_->finished) send_request();  // the TLS handshake is done
}

void HealthChecker::on_plaintext(const uint8_t* p, size_t n) {
  HttpCheck& h = *http_;
  if (h.finished) return;
  if (h.probe) {
    on_h2_input(p, n);
    return;
  }
  switch (h.response.feed(std::string_view(reinterpret_cast<const char*>(p), n))) {
    case CheckResponse::Verdict::kNeedMore:
      return;
    case CheckResponse::Verdict::kExpected:
      finish(CheckOutcome::kPassed);
      return;
    case CheckResponse::Verdict::kUnexpectedStatus:
      finish(CheckOutcome::kUnexpectedStatus, 0, fmt::format("{}", h.response.status()));
      return;
    case CheckResponse::Verdict::kInvalid:
      finish(CheckOutcome::kInvalidResponse, 0, proto::h1::to_string(h.response.error()));
      return;
  }
}

void HealthChecker::on_data(net::ByteStream&, const uring::IoBuf& buf) {
  if (!http_->finished) on_plaintext(buf.data, buf.len);
  uring::StreamSocket::release(buf);
}

void HealthChecker::on_eof(net::ByteStream&) {
  finish(CheckOutcome::kClosed);
}

void HealthChecker::on_error(net::ByteStream& s, int err) {
  if (s.is_tls() && !s.handshake_done()) {
    finish(
        CheckOutcome::kTlsHandshakeFailed, 0,
        s.error().empty() ? std::string_view("connection closed during the handshake") : s.error());
    return;
  }
  if (err == EPROTO) {
    finish(CheckOutcome::kTlsError, 0, s.error());
    return;
  }
  finish(CheckOutcome::kSocketError, err);
}

void HealthChecker::finish(CheckOutcome outcome, int err, std::string_view detail) {
  if (!http_ || http_->finished) return;
  http_->finished = true;
  loop_.timers().cancel(check_timeout_);
  record(outcome, err, detail);
  http_->stream.close();  // the next check is scheduled once it is released
}

void HealthChecker::on_released(net::ByteStream&) {
  // Free the socket outside its own callback.
  loop_.defer([this] {
    http_.reset();
    if (stopping_) {
      if (connector_released_ && on_stopped_) {
        auto fn = std::move(on_stopped_);
        fn();
      }
      return;
    }
    schedule_next();
  });
}

void HealthChecker::record(CheckOutcome outcome, int err, std::string_view detail) {
  if (outcome == CheckOutcome::kPassed) {
    failures_ = 0;
    endpoint_->connect_succeeded();
    if (!endpoint_->up()) {
      ++successes_;
      endpoint_->set_health_reason(
          fmt::format("health check passed ({} of rise {})", successes_, cfg_.rise));
      if (successes_ >= cfg_.rise) {
        endpoint_->set_up(true);
        endpoint_->set_health_reason("health check passed");
        EGW_LOG(warn, "endpoint {} is UP (health check: {} consecutive successes)",
                endpoint_->label(), successes_);
      }
    } else if (successes_ == 0) {
      // The reason changes only when the verdict does (no lock per check).
      successes_ = 1;
      endpoint_->set_health_reason("health check passed");
    }
    return;
  }
  successes_ = 0;
  std::string why;
  switch (outcome) {
    case CheckOutcome::kConnectFailed:
    case CheckOutcome::kSocketError:
      why = detail.empty() ? std::string(std::strerror(err)) : std::string(detail);
      break;
    case CheckOutcome::kUnexpectedStatus:
      why = fmt::format("status {}", detail);
      break;
    default:
      why = detail.empty() ? to_string(outcome) : fmt::format("{}: {}", to_string(outcome), detail);
      break;
  }
  ++failures_;
  endpoint_->set_health_reason(
      fmt::format("health check failed: {} ({} consecutive, fall {})", why, failures_, cfg_.fall));
  if (endpoint_->up() && failures_ >= cfg_.fall) {
    endpoint_->set_up(false);
    EGW_LOG(warn, "endpoint {} is DOWN (health check: {} after {} consecutive failures)",
            endpoint_->label(), why, failures_);
  }
}

void HealthChecker::stop(InlineFunction<void(), 24> on_stopped) {
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  loop_.timers().cancel(timer_);
  loop_.timers().cancel(check_timeout_);
  if (http_) {
    http_->finished = true;  // what the closing stream reports is not a result
    http_->stream.close();
  }
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

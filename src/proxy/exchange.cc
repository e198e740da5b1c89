#include "src/proxy/exchange.h"

#include <cstring>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/accesslog/writer.h"
#include "src/route/path.h"
#include "src/route/router.h"
#include "src/upstream/endpoint.h"
#include "src/upstream/h2_connection.h"
#include "src/upstream/http_connection.h"
#include "src/upstream/pool.h"

namespace egw::proxy {

using uring::IoBuf;

const char* Exchange::to_string(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kQueued:
      return "queued";
    case State::kConnecting:
      return "connecting";
    case State::kExchange:
      return "exchange";
    case State::kTunnel:
      return "tunnel";
    case State::kDone:
      return "done";
  }
  return "?";
}

Exchange::Exchange(upstream::Context& ctx, const ListenerView& listener, Downstream& down,
                   const Client& client)
    : ctx_(ctx), listener_(listener), down_(down), client_(client), attempt_(ctx, *this) {
  timer_.set_callback([this] { on_timer(); });
  phase_us_.fill(-1);
}

void Exchange::set_state(State s) {
  if (s == state_) return;
  EGW_LOG(trace, "exchange {}: {} -> {}", client_.peer->to_string(), to_string(state_),
          to_string(s));
  state_ = s;
}

Exchange::~Exchange() {
  if (listener_.access_log && !req_.method_text.empty()) log_access();  // start() ran
  ctx_.loop().timers().cancel(timer_);
  release_upstream();
  // ~Attempt leaves the queue and gives the slot back.
}

const config::ClusterConfig& Exchange::cluster_config() const {
  return cluster_->cluster.config();
}

void Exchange::record(stats::Phase p, uint64_t from_ns, bool listener, bool cluster) {
  const uint64_t now = clock::cached_ns();
  phase_us_[static_cast<size_t>(p)] =
      static_cast<int64_t>(now > from_ns ? (now - from_ns) / 1000 : 0);
  if (listener && listener_.latency) listener_.latency->record(p, from_ns, now);
  if (cluster && cluster_ && cluster_->latency) cluster_->latency->record(p, from_ns, now);
}

// --- routing --------------------------------------------------------------------------

void Exchange::start(const ph::RequestHead& req, uint64_t head_start_ns, uint64_t headers_ns) {
  req_ = req;
  head_start_ns_ = head_start_ns;
  headers_ns_ = headers_ns;
  phase_us_[static_cast<size_t>(stats::Phase::kAcceptToHeaders)] =
      static_cast<int64_t>(headers_ns > head_start_ns ? (headers_ns - head_start_ns) / 1000 : 0);
  req_done_ = req.body == ph::Body::kNone;
  window_start_ms_ = last_activity_ms_ = ctx_.loop().now_ms();
  const config::ListenerConfig& lc = *listener_.config;
  // Route on the normalised path; the request goes upstream as received.
  const bool connect = req.method == ph::Method::kConnect;
  const std::string_view raw_path = req.path.substr(0, req.path.find('?'));
  char path_buf[route::kMaxPathBytes];
  std::string_view path = raw_path;
  if (!connect && raw_path != "*") {
    if (raw_path.size() > sizeof(path_buf)) {
      answer(414);
      return;
    }
    auto n = route::normalize_path(raw_path, path_buf);
    if (!n) {
      EGW_LOG(debug, "client {}: bad path: {}", client_.peer->to_string(),
              route::to_string(n.error()));
      answer(400);
      return;
    }
    path = std::string_view(path_buf, *n);
  }
  route::RequestView view;
  view.method = req.method_text;
  view.host = req.authority;
  view.path = path;
  view.headers = req.fields;
  view.peer = client_.peer;
  const int r = listener_.router ? listener_.router->match(view) : -1;
  if (r >= 0) route_ = &lc.routes[static_cast<size_t>(r)];
  // CONNECT opens a raw tunnel to whatever the endpoint reaches: only where
  // a route says so.
  if (connect && !(route_ && route_->allow_connect)) {
    answer(405);
    return;
  }
  if (route_ && route_->respond) {
    set_state(State::kDone);
    status_ = route_->respond->status;
    termination_ = "local";
    down_.respond_local(*route_);
    return;
  }
  cluster_ = route_ ? listener_.route_clusters[static_cast<size_t>(r)] : listener_.default_cluster;
  if (!cluster_) {
    answer(404);
    return;
  }
  if (cluster_config().http_protocol == config::ClusterConfig::HttpProtocol::kH2 &&
      (connect || !req.upgrade.empty())) {
    // Tunnels (CONNECT, WebSocket) are not carried over HTTP/2 streams upstream.
    answer(501);
    return;
  }
  attempt_.begin(*cluster_, client_.hash, listener_.latency);
  attempt_.pick();
}

// --- upstream selection --------------------------------------------------------------

void Exchange::on_queued() {
  set_state(State::kQueued);
  arm_timer(cluster_config().queue_timeout_ms);
}

void Exchange::on_refused(upstream::Attempt::Refusal why) {
  EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: {}; answering 503 to {}", cluster_->cluster.name(),
                      upstream::Attempt::to_string(why), client_.peer->to_string());
  fail(503, why == upstream::Attempt::Refusal::kQueueFull ? "queue_full" : "no_endpoint");
}

void Exchange::on_picked(int endpoint) {
  connect_to(endpoint);
}

void Exchange::connect_to(int endpoint) {
  set_state(State::kConnecting);
  endpoint_ = endpoint;
  ctx_.loop().timers().cancel(timer_);  // the queue timeout, if it waited
  const auto& ep_ptr = cluster_->cluster.endpoint_ptr(static_cast<size_t>(endpoint));
  ep_ptr->sessions.fetch_add(1, std::memory_order_relaxed);
  const config::ClusterConfig& cc = cluster_config();
  const uint32_t connect_timeout = cc.connect_timeout_ms;
  if (cc.http_protocol == config::ClusterConfig::HttpProtocol::kH2) {
    upstream::H2Options opt;
    opt.max_streams = cc.h2_max_streams;
    opt.max_connections = cc.h2_max_connections;
    opt.max_requests = cc.h2_max_requests;
    opt.max_age_ms = cc.h2_max_age_ms;
    opt.ping_idle_ms = cc.h2_ping_idle_ms;
    opt.connect_timeout_ms = connect_timeout;
    opt.idle_timeout_ms = cc.keep_alive_timeout_ms;
    opt.initial_window = cc.h2_initial_window;
    opt.connection_window = cc.h2_connection_window;
    bool fresh = false;
    upstream::H2Stream* s =
        ctx_.h2_pool(ep_ptr, cluster_->tls).open_stream(this, opt, cluster_->tls, &fresh);
    if (!s) {
      fail(503);
      return;
    }
    up_ = s;
    if (!s->waiting()) {
      send_request();
      return;
    }
    // A new connection (or a check of a quiet one): on_upstream_connected.
    attempt_.connect_started(clock::cached_ns());
    arm_timer(2 * uint64_t{connect_timeout});
    return;
  }
  upstream::Pool& pool = ctx_.http_pool(ep_ptr, cluster_->tls);
  // send_proxy: the connection must be one opened for this client's
  // addresses and TLS, i.e. with the same PROXY header.
  uint8_t header[proto::proxy_protocol::kMaxWrite];
  size_t header_len = 0;
  if (cc.send_proxy != config::ClusterConfig::SendProxy::kOff) {
    net::ByteStream* s = client_.stream;
    const SocketAddress* dst = client_.dst && s ? client_.dst->get(s->socket().fd()) : nullptr;
    header_len = net::build_proxy_header(cc.send_proxy, client_.peer, dst,
                                         s ? s->tls_session() : nullptr, header);
  }
  const std::string_view key(reinterpret_cast<const char*>(header), header_len);
  if (upstream::HttpConnection* c = pool.checkout(key)) {
    ctx_.stats().upstream_reused.fetch_add(1, std::memory_order_relaxed);
    up_ = c;
    up_->set_user(this);
    send_request();
    return;
  }
  attempt_.connect_started(clock::cached_ns());
  upstream::HttpConnection* c = ctx_.new_http_connection(ep_ptr, &pool);
  if (!c) {
    fail(503);
    return;
  }
  up_ = c;
  up_->set_user(this);
  c->set_proxy_header(key);
  // The TCP connect has its own (linked) timeout; a TLS handshake gets as
  // long again, on the exchange's timer.
  if (cluster_->tls) arm_timer(2 * uint64_t{connect_timeout});
  if (auto st = c->connect(connect_timeout, cluster_->tls); !st) {
    // No socket at all (descriptor limit): not the endpoint's fault.
    EGW_LOG_RATELIMITED(error, 1000, "cannot connect to {}: {}", ep_ptr->label(),
                        st.error().message());
    fail(503);
  }
}

void Exchange::on_upstream_connected(upstream::Stream& c, int err) {
  if (&c != up_) return;
  auto& ep = c.endpoint();
  auto& stats = ctx_.stats();
  if (tls::Session* s = c.tls_session(); s && err == 0) {
    stats.tls_upstream_handshakes.fetch_add(1, std::memory_order_relaxed);
    if (s->resumed()) stats.tls_upstream_resumed.fetch_add(1, std::memory_order_relaxed);
  }
  if (err == 0) {
    ctx_.loop().timers().cancel(timer_);
    attempt_.connect_succeeded();
    send_request();
    return;
  }
  if (err == EPROTO) {
    stats.tls_upstream_failures.fetch_add(1, std::memory_order_relaxed);
    EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: TLS to {} failed: {}", cluster_->cluster.name(),
                        ep.label(), c.tls_error());
  }
  const std::string label = ep.label();
  close_upstream();
  if (attempt_.connect_failed(err)) {
    attempt_.pick();
    return;
  }
  const uint16_t status = err == ETIMEDOUT ? 504 : 502;
  EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: connect to {} failed ({}); answering {}",
                      cluster_->cluster.name(), label,
                      err == ETIMEDOUT ? "timeout" : std::strerror(err), status);
  fail(status, err == ETIMEDOUT ? "connect_timeout" : "connect_failed");
}

void Exchange::send_request() {
  set_state(State::kExchange);
  http::RequestContext rc;
  const config::ListenerConfig& lc = *listener_.config;
  rc.http = &lc.http;
  rc.rules = route_ ? &route_->request_headers : nullptr;
  rc.peer = client_.peer;
  rc.tls = client_.tls;
  if (client_.tls && lc.tls && !lc.tls->client_ca.empty()) {
    rc.subject_header = lc.tls->client_subject_header;
    rc.subject = client_.subject;
  }
  rc.endpoint = &up_->endpoint().address();
  if (!up_->send_request(req_, rc)) {
    fail(431, "request_head_too_large");
    return;
  }
  if (req_done_ && req_.body != ph::Body::kNone &&
      !up_->end_body({})) {  // a retry: the client's (empty) body had already ended
    fail(502);
    return;
  }
  last_activity_ms_ = ctx_.loop().now_ms();
  arm_exchange_timer();
  if (!req_done_ && body_room()) down_.resume_request_body();
}

// --- request body ----------------------------------------------------------------------

bool Exchange::body_room() const {
  return (state_ == State::kExchange || state_ == State::kTunnel) && up_ && !up_->send_full();
}

void Exchange::request_data(const IoBuf& b) {
  EGW_ASSERT(state_ == State::kExchange && up_);
  const config::HttpConfig& http = listener_.config->http;
  req_body_bytes_ += b.len;
  window_bytes_ += b.len;
  last_activity_ms_ = ctx_.loop().now_ms();
  if (req_body_bytes_ > http.max_body_bytes) {
    ctx_.loop().release(b);
    if (!resp_started_) {
      fail(413);
    } else {
      termination_ = "body_too_large";
      down_.reset();
    }
    return;
  }
  req_body_sent_ = true;
  if (!up_->send_body(b)) on_upstream_error(*up_, upstream::HttpError::kTruncated, ENOMEM);
}

void Exchange::request_end(std::span<const ph::Field> trailers) {
  if (req_done_ || !up_) return;
  req_done_ = true;
  if (!up_->end_body(trailers)) on_upstream_error(*up_, upstream::HttpError::kTruncated, ENOMEM);
}

void Exchange::tunnel_data(const IoBuf& b) {
  last_activity_ms_ = ctx_.loop().now_ms();
  if (!up_ || !up_->send(b)) ctx_.loop().release(b);
}

void Exchange::tunnel_eof() {
  if (up_) up_->shutdown_write();
}

void Exchange::pause_response() {
  if (up_) up_->pause_recv();
}

void Exchange::resume_response() {
  if (up_) up_->resume_recv();
}

void Exchange::on_upstream_sent(upstream::Stream& c) {
  if (&c != up_) return;
  last_activity_ms_ = ctx_.loop().now_ms();
  if (state_ == State::kTunnel || (state_ == State::kExchange && !req_done_)) {
    down_.resume_request_body();
  }
}

// --- responses ---------------------------------------------------------------------------

void Exchange::on_response_head(upstream::Stream& c, const ph::ResponseHead& h) {
  if (&c != up_) return;
  last_activity_ms_ = ctx_.loop().now_ms();
  const bool informational = h.status < 200 && h.status != 101;
  const bool connect = req_.method == ph::Method::kConnect;
  const bool tunnel = h.status == 101 || (connect && h.status >= 200 && h.status < 300);
  if (h.status == 101 && req_.upgrade.empty()) {
    fail(502);  // an upgrade nobody asked for
    return;
  }
  http::ResponseContext rc;
  rc.http = &listener_.config->http;
  rc.rules = route_ ? &route_->response_headers : nullptr;
  if (!down_.response_head(h, rc)) {
    EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: response head too large or invalid",
                        c.endpoint().label());
    fail(502);
    return;
  }
  if (informational) return;
  resp_started_ = true;
  status_ = h.status;
  count_cluster_response(h.status);
  record(stats::Phase::kTimeToFirstByte, headers_ns_, true, true);
  if (tunnel) {
    if (h.status != 101) c.set_tunnel();
    set_state(State::kTunnel);
    termination_ = "tunnel_closed";
    ctx_.stats().tunnels.fetch_add(1, std::memory_order_relaxed);
    attempt_.release();  // a tunnel is not a request in flight
    req_done_ = true;
    arm_timer(listener_.config->http.tunnel_timeout_ms);
    down_.tunnel_open();
    return;
  }
  arm_exchange_timer();
}

void Exchange::on_response_data(upstream::Stream& c, const IoBuf& data) {
  if (&c != up_) {
    ctx_.loop().release(data);
    return;
  }
  last_activity_ms_ = ctx_.loop().now_ms();
  resp_bytes_ += data.len;
  down_.response_data(data);
}

void Exchange::on_response_trailers(upstream::Stream& c, std::span<const ph::Field> trailers) {
  if (&c != up_) return;
  down_.response_trailers(trailers);
}

void Exchange::on_response_end(upstream::Stream& c) {
  if (&c != up_) return;
  resp_done_ = true;
  termination_ = "done";
  set_state(State::kDone);
  ctx_.loop().timers().cancel(timer_);
  record(stats::Phase::kTotal, head_start_ns_, true, true);
  down_.response_end();
}

void Exchange::on_tunnel_eof(upstream::Stream& c) {
  if (&c != up_) return;
  down_.tunnel_eof();
}

void Exchange::on_upstream_error(upstream::Stream& c, upstream::HttpError e, int err) {
  if (&c != up_) return;
  EGW_LOG(debug, "client {}: upstream {}: {} ({})", client_.peer->to_string(), c.endpoint().label(),
          upstream::to_string(e), err ? std::strerror(err) : "");
  if (state_ == State::kTunnel || resp_started_) {
    // Mid-response (or mid-tunnel): only the codec can say so.
    if (state_ != State::kTunnel) termination_ = "upstream_reset";
    close_upstream();
    down_.reset();
    return;
  }
  // A reused idle connection that the server had closed: try a fresh one,
  // without counting it as an attempt. Otherwise retry only a request that
  // is safe to repeat and whose body (if any) is not half sent.
  // An HTTP/2 stream the endpoint refused unprocessed (REFUSED_STREAM, or
  // above a GOAWAY's last stream) is safe to send again whatever the
  // method, as long as no body byte of it was consumed.
  const bool reused = c.reused();
  const bool refused = e == upstream::HttpError::kRefused && !req_body_sent_;
  const bool retryable = refused || (e == upstream::HttpError::kReset &&
                                     ph::idempotent(req_.method) && !req_body_sent_);
  close_upstream();
  if (refused) ctx_.stats().upstream_refused.fetch_add(1, std::memory_order_relaxed);
  if (retryable && attempt_.retry(/*counts=*/!reused || refused)) {
    attempt_.pick();
    return;
  }
  fail(502);
}

// --- failure and the end ---------------------------------------------------------------

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

}  // namespace

void Exchange::answer(uint16_t status) {
  status_ = status;
  termination_ = accesslog::termination_of(status);
  down_.respond_error(status);
}

void Exchange::fail(uint16_t status, const char* why) {
  close_upstream();
  attempt_.release();
  attempt_.leave_queue();
  ctx_.loop().timers().cancel(timer_);
  set_state(State::kDone);
  if (resp_started_) {
    termination_ = why ? why : "reset_after_response_began";
    down_.reset();
    return;
  }
  status_ = status;
  termination_ = why ? why : accesslog::termination_of(status);
  count_cluster_response(status);
  down_.respond_error(status);
}

void set_tls(accesslog::Record& r, tls::Session* t) {
  if (!t) return;
  r.tls_version = t->version();
  r.tls_cipher = t->cipher();
  r.sni = t->sni();
}

void Exchange::log_access() {
  accesslog::Record r;
  r.time_ns = clock::wall_ns();
  r.client = client_.peer;
  r.listener = listener_.config->name;
  r.protocol = req_.version == 20 ? "h2" : "h1";
  r.version = req_.version == 20 ? "HTTP/2.0" : req_.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
  r.method = req_.method_text;
  r.authority = req_.authority;
  r.path = req_.path;
  r.status = status_;
  r.bytes_in = req_body_bytes_;
  r.bytes_out = resp_bytes_;
  if (cluster_) {
    r.cluster = cluster_->cluster.name();
    if (endpoint_ >= 0)
      r.endpoint = cluster_->cluster.endpoint_config(static_cast<size_t>(endpoint_)).address_text;
  }
  r.retries = attempt_.attempts();
  r.termination = termination_ ? termination_ : "client_closed";
  if (client_.stream) set_tls(r, client_.stream->tls_session());
  for (const ph::Field& f : req_.fields) {
    if (iequals(f.name, "user-agent")) {
      r.user_agent = f.value;
    } else if (iequals(f.name, "referer")) {
      r.referer = f.value;
    }
  }
  for (size_t k = 0; k < phase_us_.size(); ++k)
    r.phase_us[k] = phase_us_[k];
  r.phase_us[static_cast<size_t>(stats::Phase::kQueueWait)] = attempt_.queue_wait_us();
  r.phase_us[static_cast<size_t>(stats::Phase::kConnect)] = attempt_.connect_us();
  if (client_.tls_handshake_us)
    r.phase_us[static_cast<size_t>(stats::Phase::kTlsHandshake)] = client_.tls_handshake_us;
  listener_.access_log->write(*listener_.access_format, r);
}

void Exchange::count_cluster_response(uint16_t status) {
  if (!cluster_ || !cluster_->latency) return;
  const bool h2 = cluster_config().http_protocol == config::ClusterConfig::HttpProtocol::kH2;
  cluster_->latency->count_response(h2 ? 1 : 0, status);
}

void Exchange::close_upstream() {
  if (!up_) return;
  upstream::Stream* c = up_;
  up_ = nullptr;
  c->release(false, 0, 0);
}

void Exchange::release_upstream() {
  if (!up_) return;
  upstream::Stream* c = up_;
  up_ = nullptr;
  const auto& cc = cluster_config();
  c->release(req_done_ && resp_done_, cc.keep_alive_max_idle, cc.keep_alive_timeout_ms);
}

// --- timers ------------------------------------------------------------------------------

void Exchange::arm_timer(uint64_t delay_ms) {
  ctx_.loop().timers().schedule_after(timer_, delay_ms);
}

// During an exchange one timer serves three deadlines: the response head
// (server timeout), idleness once the response flows, and the end of the
// current request-body rate window.
void Exchange::arm_exchange_timer() {
  const config::HttpConfig& http = listener_.config->http;
  const auto& cc = cluster_config();
  const uint64_t idle = resp_started_ ? std::min<uint64_t>(listener_.config->client_idle_timeout_ms,
                                                           cc.server_idle_timeout_ms)
                                      : cc.server_idle_timeout_ms;
  uint64_t next = last_activity_ms_ + idle;
  if (!req_done_ && http.min_request_body_rate > 0) {
    next = std::min(next, window_start_ms_ + http.body_rate_window_ms);
  }
  ctx_.loop().timers().schedule(timer_, next);
}

void Exchange::on_timer() {
  const uint64_t now = ctx_.loop().now_ms();
  const config::HttpConfig& http = listener_.config->http;
  auto& stats = ctx_.stats();
  switch (state_) {
    case State::kIdle:
    case State::kDone:
      return;
    case State::kQueued:
      attempt_.queue_timed_out();
      fail(503, "queue_timeout");
      return;
    case State::kConnecting:
      // The TLS handshake to the endpoint is late (the TCP connect has its
      // own, linked, timeout).
      if (up_) on_upstream_connected(*up_, ETIMEDOUT);
      return;
    case State::kExchange: {
      // Slow request bodies (slow POST): the average rate over each window.
      if (!req_done_ && http.min_request_body_rate > 0 &&
          now - window_start_ms_ >= http.body_rate_window_ms) {
        const uint64_t window = now - window_start_ms_;
        if (window_bytes_ * 1000 < uint64_t{http.min_request_body_rate} * window) {
          stats.slow_bodies.fetch_add(1, std::memory_order_relaxed);
          fail(408, "slow_request_body");
          return;
        }
        window_start_ms_ = now;
        window_bytes_ = 0;
      }
      const auto& cc = cluster_config();
      const uint64_t idle = resp_started_
                                ? std::min<uint64_t>(listener_.config->client_idle_timeout_ms,
                                                     cc.server_idle_timeout_ms)
                                : cc.server_idle_timeout_ms;
      if (now - last_activity_ms_ >= idle) {
        if (!resp_started_) stats.response_timeouts.fetch_add(1, std::memory_order_relaxed);
        fail(504, resp_started_ ? "response_idle_timeout" : "upstream_timeout");
        return;
      }
      arm_exchange_timer();
      return;
    }
    case State::kTunnel:
      if (now - last_activity_ms_ >= http.tunnel_timeout_ms) {
        termination_ = "tunnel_timeout";
        close_upstream();
        down_.reset();
        return;
      }
      ctx_.loop().timers().schedule(timer_, last_activity_ms_ + http.tunnel_timeout_ms);
      return;
  }
}

}  // namespace egw::proxy

#include "src/downstream/http_session.h"

#include <cstring>

#include "egw/clock.h"
#include "egw/log.h"
#include "proto/h1/encoder.h"
#include "src/route/path.h"
#include "src/route/router.h"
#include "src/server/worker.h"

namespace egw::downstream {

namespace h1 = proto::h1;
using uring::IoBuf;

namespace {

// Input buffered ahead of where the session consumes it (a pipelined next
// request, a body waiting for its upstream) before the client is paused.
constexpr size_t kMaxBuffered = 64 * 1024;
// After the last response of a connection: how long to keep reading (and
// discarding) so that a close does not reset a response still in flight.
constexpr uint64_t kLingerMs = 2000;

bool idempotent(h1::Method m) {
  switch (m) {
    case h1::Method::kGet:
    case h1::Method::kHead:
    case h1::Method::kPut:
    case h1::Method::kDelete:
    case h1::Method::kOptions:
    case h1::Method::kTrace:
      return true;
    default:
      return false;
  }
}

IoBuf static_buf(std::string_view s) {
  IoBuf b;
  b.data = reinterpret_cast<const uint8_t*>(s.data());
  b.len = static_cast<uint32_t>(s.size());
  return b;
}

// The path of a request target (no query), and the authority of an
// absolute-form target.
std::string_view target_path(std::string_view target, std::string_view* authority) {
  if (!target.empty() && target.front() != '/') {
    const size_t scheme = target.find("://");
    if (scheme != std::string_view::npos) {
      const std::string_view rest = target.substr(scheme + 3);
      const size_t slash = rest.find_first_of("/?");
      *authority = rest.substr(0, slash);
      target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
      if (!target.empty() && target.front() == '?') target = "/";
    }
  }
  return target.substr(0, target.find('?'));
}

}  // namespace

const char* HttpSession::to_string(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kHead:
      return "head";
    case State::kQueued:
      return "queued";
    case State::kConnecting:
      return "connecting";
    case State::kExchange:
      return "exchange";
    case State::kLocal:
      return "local";
    case State::kTunnel:
      return "tunnel";
    case State::kClosing:
      return "closing";
  }
  return "?";
}

HttpSession::HttpSession(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
                         UniqueFd client)
    : worker_(worker),
      snap_(snap),
      listener_(snap.runtime->config->listeners[listener]),
      client_(worker.loop(), *this),
      in_(worker.loop()),
      head_buf_(worker.loop()) {
  if (auto p = SocketAddress::peer_of(client.get())) peer_ = *p;
  hash_ = upstream::hash_client(peer_);
  timer_.set_callback([this] { on_timer(); });
  client_.open(std::move(client));
  if (const auto& ctx = snap.runtime->listener_tls[listener]) {
    tls_ = std::make_unique<tls::Transport>(worker.loop(), client_, tls::Session::server(*ctx));
    tls_->set_on_failure([this] { fail_tls(); });
  }
}

HttpSession::~HttpSession() {
  EGW_ASSERT(endpoint_ < 0);
  EGW_ASSERT(up_ == nullptr);
}

void HttpSession::record(stats::Phase p, uint64_t from_ns, bool listener, bool cluster) {
  const uint64_t now = clock::cached_ns();
  if (listener) snap_.listener_latency[listener_index()]->record(p, from_ns, now);
  if (cluster && cluster_) cluster_->latency->record(p, from_ns, now);
}

void HttpSession::start() {
  last_activity_ms_ = worker_.loop().now_ms();
  head_start_ns_ = clock::cached_ns();
  client_.start_recv();
  // The handshake, then the first request, must each arrive in time.
  arm_timer(tls_ ? listener_.tls->handshake_timeout_ms : listener_.http.request_timeout_ms);
}

// --- client input ------------------------------------------------------------------

void HttpSession::on_data(uring::StreamSocket&, const IoBuf& buf) {
  last_activity_ms_ = worker_.loop().now_ms();
  if (!tls_) {
    on_plain(buf);
    return;
  }
  if (state_ == State::kClosing && tls_->session().state() != tls::Session::State::kOpen) {
    worker_.loop().release(buf);
    return;
  }
  const tls::Session::Status st = tls_->on_ciphertext(buf, [this](const IoBuf& plain) {
    if (tls_->take_handshake_done()) on_tls_handshake();
    on_plain(plain);
  });
  if (tls_->take_handshake_done()) on_tls_handshake();
  on_tls_status(st);
}

void HttpSession::on_tls_handshake() {
  auto& stats = worker_.stats();
  stats.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (tls_->session().resumed()) stats.tls_resumed.fetch_add(1, std::memory_order_relaxed);
  record(stats::Phase::kTlsHandshake, head_start_ns_, true, false);
  if (state_ == State::kIdle) arm_timer(listener_.http.request_timeout_ms);
}

void HttpSession::on_tls_status(tls::Session::Status st) {
  switch (st) {
    case tls::Session::Status::kOk:
    case tls::Session::Status::kWantInput:
      return;
    case tls::Session::Status::kClosed:
      on_eof(client_);  // close_notify: the client is done sending
      return;
    case tls::Session::Status::kError:
      if (!tls_->handshake_done()) {
        worker_.stats().tls_failures.fetch_add(1, std::memory_order_relaxed);
        EGW_LOG(debug, "tls handshake from {} failed: {}", peer_.to_string(),
                tls_->session().error());
        close(/*reset=*/true);  // nothing to say in TLS yet: the peer sees a reset
        return;
      }
      EGW_LOG(debug, "tls from {}: {}", peer_.to_string(), tls_->session().error());
      close();
      return;
  }
}

void HttpSession::shutdown_client() {
  if (tls_ && tls_->handshake_done()) tls_->close_notify();
  client_.shutdown_write();
}

void HttpSession::on_plain(const IoBuf& buf) {
  if (state_ == State::kTunnel) {
    if (up_ && up_->send(buf)) {
      if (up_->send_full()) client_.pause_recv();
    } else {
      worker_.loop().release(buf);
    }
    return;
  }
  if (state_ == State::kClosing) {
    worker_.loop().release(buf);  // lingering: read and drop
    return;
  }
  in_.push_back(buf);
  process_input();
}

void HttpSession::process_input() {
  switch (state_) {
    case State::kIdle:
    case State::kHead:
      parse_head();
      break;
    case State::kExchange:
      if (!req_done_) pump_request_body();
      break;
    case State::kLocal:
      if (!req_done_) discard_request_body();
      break;
    default:
      break;
  }
  if (state_ != State::kClosing && state_ != State::kTunnel) {
    if (in_.bytes() >= kMaxBuffered) {
      client_.pause_recv();
    } else if (client_.recv_paused() && !(up_ && up_->send_full())) {
      client_.resume_recv();
    }
  }
}

void HttpSession::parse_head() {
  if (in_.empty()) return;
  const config::HttpConfig& http = listener_.http;
  if (state_ == State::kIdle) {
    if (!first_request_) head_start_ns_ = clock::cached_ns();  // the first counts from accept
    state_ = State::kHead;
    head_deadline_ms_ = worker_.loop().now_ms() + http.request_timeout_ms;
    arm_timer(http.request_timeout_ms);
  }
  if (!parser_) {
    header_block_ = worker_.header_blocks().create();
    if (!header_block_) {
      send_error(503, true);
      return;
    }
    h1::Limits limits;
    limits.max_request_line = http.max_request_line_bytes;
    limits.max_head_bytes = http.max_header_bytes;
    limits.max_headers = std::min(http.max_headers, upstream::HeaderBlock::kCapacity);
    parser_.emplace(limits, std::span<h1::Header>(header_block_->headers));
  }
  bool full = false;
  const std::string_view view = head_buf_.gather(in_, &full);
  if (view.empty()) {
    if (!full) send_error(503, true);  // no chunk to assemble the head in
    return;
  }
  const h1::ParseStatus st = parser_->parse(view);
  if (st == h1::ParseStatus::kError) {
    const int status = h1::http_status(parser_->error());
    EGW_LOG(debug, "client {}: request rejected ({}): {}", peer_.to_string(), status,
            h1::to_string(parser_->error()));
    send_error(static_cast<uint16_t>(status ? status : 400), true);
    return;
  }
  if (st == h1::ParseStatus::kIncomplete) {
    if (full) send_error(431, true);
    return;
  }
  head_mem_ = head_buf_.finish(in_, parser_->head_size());
  begin_exchange();
}

void HttpSession::begin_exchange() {
  const h1::RequestHead& head = parser_->head();
  const config::HttpConfig& http = listener_.http;
  worker_.stats().http_requests.fetch_add(1, std::memory_order_relaxed);
  record(stats::Phase::kAcceptToHeaders, head_start_ns_, true, false);
  headers_ns_ = clock::cached_ns();
  ++requests_;
  first_request_ = false;
  method_ = head.method;
  client_minor_ = head.version_minor;
  client_keep_alive_ = head.keep_alive;
  close_after_ = !client_keep_alive_;
  req_body_kind_ = head.body;
  req_body_.start(head.body, head.content_length);
  req_done_ = head.body == h1::BodyKind::kNone;
  req_body_sent_ = false;
  req_body_bytes_ = 0;
  resp_started_ = resp_done_ = trailers_sent_ = false;
  upgrade_ = head.upgrade || head.method == h1::Method::kConnect;
  attempts_ = 0;
  avoid_ = -1;
  route_ = nullptr;
  cluster_ = nullptr;
  window_start_ms_ = worker_.loop().now_ms();
  window_bytes_ = 0;
  if (head.body == h1::BodyKind::kContentLength && head.content_length > http.max_body_bytes) {
    send_error(413, true);
    return;
  }
  // Check the body bytes already here before anything goes upstream: a
  // request whose framing is broken in its first packet (the usual shape of
  // a smuggling attempt) is refused without the backend seeing any of it.
  if (!req_done_ && !in_.empty()) {
    h1::BodyDecoder probe = req_body_;
    bool bad = false;
    uint64_t total = 0;
    in_.for_each([&](const IoBuf& b) {
      std::string_view rest(reinterpret_cast<const char*>(b.data), b.len);
      while (!bad && !rest.empty()) {
        const auto step = probe.feed(rest);
        if (step.kind == h1::BodyDecoder::Step::kError) bad = true;
        if (step.kind == h1::BodyDecoder::Step::kData) total += step.data.size();
        if (step.kind == h1::BodyDecoder::Step::kDone || step.consumed == 0) break;
        rest.remove_prefix(step.consumed);
      }
    });
    if (bad) {
      EGW_LOG(debug, "client {}: bad request body: {}", peer_.to_string(),
              h1::to_string(probe.error()));
      send_error(400, true);
      return;
    }
    if (total > http.max_body_bytes) {
      send_error(413, true);
      return;
    }
  }
  // Route on the normalised path; the request goes upstream as received.
  std::string_view authority;
  const std::string_view raw_path = target_path(head.target, &authority);
  char path_buf[8192];
  std::string_view path = raw_path;
  if (head.method != h1::Method::kConnect && head.target != "*") {
    if (raw_path.size() > sizeof(path_buf)) {
      send_error(414, true);
      return;
    }
    auto n = route::normalize_path(raw_path, path_buf);
    if (!n) {
      EGW_LOG(debug, "client {}: bad path: {}", peer_.to_string(), route::to_string(n.error()));
      send_error(400, true);
      return;
    }
    path = std::string_view(path_buf, *n);
  }
  const server::ListenerRuntime& lr = snap_.runtime->listeners[listener_index()];
  route::RequestView view;
  view.method = head.method_text;
  view.host = authority.empty() ? head.host : authority;
  view.path = path;
  view.headers = head.headers;
  view.peer = &peer_;
  const route::Router* router = snap_.routers[listener_index()].get();
  const int r = router ? router->match(view) : -1;
  if (r >= 0) route_ = &listener_.routes[static_cast<size_t>(r)];
  if (route_ && route_->respond) {
    send_local(static_cast<uint16_t>(route_->respond->status), route_);
    return;
  }
  const int ci = route_ ? lr.route_clusters[static_cast<size_t>(r)] : lr.default_cluster;
  if (ci < 0) {
    send_error(404, false);
    return;
  }
  cluster_ = snap_.clusters[static_cast<size_t>(ci)].get();
  pick();
}

size_t HttpSession::listener_index() const {
  return static_cast<size_t>(&listener_ - snap_.runtime->config->listeners.data());
}

// --- upstream selection --------------------------------------------------------------

void HttpSession::pick() {
  const auto& cc = cluster_->cluster.config();
  const auto p = cluster_->picker.pick(hash_, cc.redispatch ? avoid_ : -1, worker_.loop().now_ms());
  switch (p.outcome) {
    case upstream::Picker::Outcome::kPicked:
      endpoint_ = p.index;
      connect_to(p.index);
      return;
    case upstream::Picker::Outcome::kFull:
      if (cluster_->queued >= cc.max_queue) {
        worker_.stats().refused_queue_full.fetch_add(1, std::memory_order_relaxed);
        send_error(503, !req_done_);
        return;
      }
      state_ = State::kQueued;
      queued_ns_ = clock::cached_ns();
      cluster_->enqueue(*this, worker_.index());
      worker_.stats().queued.fetch_add(1, std::memory_order_relaxed);
      arm_timer(cc.queue_timeout_ms);
      return;
    case upstream::Picker::Outcome::kNoneUp:
      worker_.stats().refused_no_endpoint.fetch_add(1, std::memory_order_relaxed);
      EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: no endpoint is up; answering 503 to {}",
                          cluster_->cluster.name(), peer_.to_string());
      send_error(503, !req_done_);
      return;
  }
}

void HttpSession::dequeued() {
  EGW_ASSERT(state_ == State::kQueued);
  const auto p = cluster_->picker.pick(hash_, -1, worker_.loop().now_ms());
  if (p.outcome == upstream::Picker::Outcome::kFull) {
    cluster_->enqueue(*this, worker_.index(), /*front=*/true);
    return;
  }
  record(stats::Phase::kQueueWait, queued_ns_, true, true);
  if (p.outcome == upstream::Picker::Outcome::kNoneUp) {
    send_error(503, !req_done_);
    return;
  }
  endpoint_ = p.index;
  connect_to(p.index);
}

void HttpSession::connect_to(int endpoint) {
  state_ = State::kConnecting;
  const auto& ep_ptr = cluster_->cluster.endpoint_ptr(static_cast<size_t>(endpoint));
  ep_ptr->sessions.fetch_add(1, std::memory_order_relaxed);
  upstream::Pool& pool = worker_.http_pool(ep_ptr);
  if (upstream::HttpConnection* c = pool.checkout()) {
    up_ = c;
    up_->set_user(this);
    start_upstream_exchange();
    return;
  }
  connect_ns_ = clock::cached_ns();
  up_ = worker_.new_http_connection(ep_ptr, &pool);
  if (!up_) {
    release_slot();
    send_error(503, !req_done_);
    return;
  }
  up_->set_user(this);
  const uint32_t connect_timeout = cluster_->cluster.config().connect_timeout_ms;
  // The TCP connect has its own (linked) timeout; a TLS handshake gets as
  // long again, on the session's timer.
  if (cluster_->tls) arm_timer(2 * uint64_t{connect_timeout});
  if (auto st = up_->connect(connect_timeout, cluster_->tls); !st) {
    EGW_LOG_RATELIMITED(error, 1000, "cannot connect to {}: {}", ep_ptr->label(),
                        st.error().message());
    up_->close();
    up_ = nullptr;
    release_slot();
    send_error(503, !req_done_);
  }
}

void HttpSession::on_upstream_connected(upstream::HttpConnection& c, int err) {
  if (&c != up_) return;
  auto& ep = c.endpoint();
  if (tls::Session* s = c.tls_session(); s && err == 0) {
    worker_.stats().tls_upstream_handshakes.fetch_add(1, std::memory_order_relaxed);
    if (s->resumed()) worker_.stats().tls_upstream_resumed.fetch_add(1, std::memory_order_relaxed);
  }
  if (err == 0) {
    ep.connect_succeeded();
    record(stats::Phase::kConnect, connect_ns_, false, true);
    start_upstream_exchange();
    return;
  }
  if (err == EPROTO) {
    worker_.stats().tls_upstream_failures.fetch_add(1, std::memory_order_relaxed);
    EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: TLS to {} failed: {}", cluster_->cluster.name(),
                        ep.label(), c.tls_error());
  }
  const auto& cc = cluster_->cluster.config();
  worker_.stats().connect_failures.fetch_add(1, std::memory_order_relaxed);
  const uint32_t backoff = std::max<uint32_t>(cc.health_check.interval_ms, 1000);
  if (ep.connect_failed(cc.health_check.fall, worker_.loop().now_ms(), backoff)) {
    EGW_LOG(warn, "endpoint {} marked down for {} ms after {} consecutive connect failures ({})",
            ep.label(), backoff, cc.health_check.fall,
            err == ETIMEDOUT ? "timeout" : std::strerror(err));
  }
  up_->close();
  up_ = nullptr;
  release_slot();
  if (attempts_ < cc.retries) {
    ++attempts_;
    worker_.stats().retries.fetch_add(1, std::memory_order_relaxed);
    pick();
    return;
  }
  EGW_LOG_RATELIMITED(
      warn, 1000, "cluster {}: connect to {} failed ({}); answering {}", cluster_->cluster.name(),
      ep.label(), err == ETIMEDOUT ? "timeout" : std::strerror(err), err == ETIMEDOUT ? 504 : 502);
  send_error(err == ETIMEDOUT ? 504 : 502, !req_done_);
}

void HttpSession::start_upstream_exchange() {
  state_ = State::kExchange;
  up_->begin(method_);
  if (!encoded_head_.data) {
    const h1::RequestHead& head = parser_->head();
    uring::Chunk* chunk = worker_.loop().new_chunk();
    if (!chunk) {
      fail_upstream(503);
      return;
    }
    http::RequestContext ctx;
    ctx.http = &listener_.http;
    ctx.rules = route_ ? &route_->request_headers : nullptr;
    ctx.peer = &peer_;
    if (tls_) {
      ctx.tls = true;
      if (!listener_.tls->client_ca.empty()) {
        ctx.subject_header = listener_.tls->client_subject_header;
        ctx.subject = tls_->session().peer_subject();
      }
    }
    std::string_view authority;
    std::string_view target = head.target;
    if (!target.empty() && target.front() != '/' && target != "*" &&
        head.method != h1::Method::kConnect) {
      // absolute-form: send origin-form upstream.
      const std::string_view path = target_path(target, &authority);
      const size_t at = head.target.find(path, head.target.find("://") + 3);
      target = at == std::string_view::npos ? std::string_view("/") : head.target.substr(at);
    }
    ctx.target_authority = authority;
    ctx.endpoint = &up_->endpoint().address();
    const size_t n = http::write_upstream_request(
        head, target, ctx, reinterpret_cast<char*>(chunk->data), uring::Chunk::kSize);
    IoBuf own;
    own.chunk = chunk;
    if (n == 0) {
      worker_.loop().release(own);
      up_->close();
      up_ = nullptr;
      release_slot();
      send_error(431, true);
      return;
    }
    encoded_head_ = worker_.loop().chunk_slice(chunk, 0, static_cast<uint32_t>(n));
    worker_.loop().release(own);
    // The parsed views are not needed any more: the head is encoded.
    worker_.loop().release(head_mem_);
    head_mem_ = IoBuf{};
  }
  up_->send(worker_.loop().share(encoded_head_, 0, encoded_head_.len));
  last_activity_ms_ = worker_.loop().now_ms();
  arm_exchange_timer();
  pump_request_body();
}

void HttpSession::pump_request_body() {
  if (state_ != State::kExchange || !up_) return;
  auto& loop = worker_.loop();
  const config::HttpConfig& http = listener_.http;
  const bool chunked = req_body_kind_ == h1::BodyKind::kChunked;
  while (!req_done_ && !up_->send_full()) {
    if (in_.empty()) {
      // A Content-Length body that ended exactly at a buffer's end.
      const auto step = req_body_.feed({});
      if (step.kind == h1::BodyDecoder::Step::kDone) req_done_ = true;
      break;
    }
    const IoBuf& f = in_.front();
    const auto step = req_body_.feed({reinterpret_cast<const char*>(f.data), f.len});
    switch (step.kind) {
      case h1::BodyDecoder::Step::kData: {
        const auto off =
            static_cast<uint32_t>(reinterpret_cast<const uint8_t*>(step.data.data()) - f.data);
        const auto len = static_cast<uint32_t>(step.data.size());
        IoBuf piece = loop.share(f, off, len);
        in_.drop(step.consumed);
        req_body_bytes_ += len;
        window_bytes_ += len;
        if (req_body_bytes_ > http.max_body_bytes) {
          loop.release(piece);
          if (!resp_started_) {
            fail_upstream(413);
          } else {
            close();
          }
          return;
        }
        if (chunked) {
          IoBuf hdr = loop.scratch(h1::kMaxChunkHeaderSize);
          if (!hdr.data) {
            loop.release(piece);
            close();
            return;
          }
          hdr.len = static_cast<uint32_t>(
              h1::write_chunk_header(len, reinterpret_cast<char*>(const_cast<uint8_t*>(hdr.data))));
          up_->send(hdr);
          up_->send(piece);
          up_->send(static_buf(h1::kCrlf));
        } else {
          up_->send(piece);
        }
        req_body_sent_ = true;
        break;
      }
      case h1::BodyDecoder::Step::kTrailer: {
        const auto off =
            static_cast<uint32_t>(reinterpret_cast<const uint8_t*>(step.data.data()) - f.data);
        IoBuf piece = loop.share(f, off, static_cast<uint32_t>(step.data.size()));
        in_.drop(step.consumed);
        if (!trailers_sent_) {
          up_->send(static_buf(h1::kLastChunk));
          trailers_sent_ = true;
        }
        up_->send(piece);
        break;
      }
      case h1::BodyDecoder::Step::kNeedMore:
        in_.drop(step.consumed);
        break;
      case h1::BodyDecoder::Step::kDone:
        in_.drop(step.consumed);
        req_done_ = true;
        if (chunked) up_->send(static_buf(trailers_sent_ ? h1::kCrlf : h1::kLastChunkNoTrailers));
        trailers_sent_ = false;
        break;
      case h1::BodyDecoder::Step::kError:
        EGW_LOG(debug, "client {}: bad request body: {}", peer_.to_string(),
                h1::to_string(req_body_.error()));
        if (!resp_started_) {
          fail_upstream(400);
        } else {
          close();
        }
        return;
    }
  }
  if (up_ && up_->send_full()) client_.pause_recv();
  if (req_done_ && resp_done_) finish_exchange();
}

// --- responses ------------------------------------------------------------------------

void HttpSession::on_response_head(upstream::HttpConnection& c, const h1::ResponseHead& h) {
  if (&c != up_) return;
  auto& loop = worker_.loop();
  last_activity_ms_ = loop.now_ms();
  http::ResponseContext ctx;
  ctx.http = &listener_.http;
  ctx.rules = route_ ? &route_->response_headers : nullptr;
  ctx.client_minor = client_minor_;
  const bool informational = h.status < 200 && h.status != 101;
  if (informational) {
    if (client_minor_ == 0) return;  // 1.0 clients never see 1xx
  } else if (h.status == 101) {
    if (!upgrade_) {
      fail_upstream(502);
      return;
    }
  } else {
    // How the body travels to the client.
    switch (h.body) {
      case h1::BodyKind::kNone:
        resp_framing_ = http::Framing::kNone;
        break;
      case h1::BodyKind::kContentLength:
        resp_framing_ = http::Framing::kContentLength;
        break;
      case h1::BodyKind::kChunked:
        resp_framing_ = client_minor_ == 1 ? http::Framing::kChunked : http::Framing::kUntilClose;
        break;
      case h1::BodyKind::kUntilClose:
        resp_framing_ = client_minor_ == 1 ? http::Framing::kChunked : http::Framing::kUntilClose;
        break;
    }
    if (resp_framing_ == http::Framing::kUntilClose) close_after_ = true;
    if (method_ == h1::Method::kConnect && h.status >= 200 && h.status < 300) {
      resp_framing_ = http::Framing::kNone;
    }
  }
  ctx.keep_alive = !close_after_;
  ctx.framing = resp_framing_;
  uring::Chunk* chunk = loop.new_chunk();
  if (!chunk) {
    fail_upstream(503);
    return;
  }
  const size_t n = http::write_client_response(h, ctx, reinterpret_cast<char*>(chunk->data),
                                               uring::Chunk::kSize);
  IoBuf own;
  own.chunk = chunk;
  if (n == 0) {
    loop.release(own);
    EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: response head too large or invalid",
                        c.endpoint().label());
    fail_upstream(502);
    return;
  }
  send_client(loop.chunk_slice(chunk, 0, static_cast<uint32_t>(n)));
  loop.release(own);
  if (informational) return;
  resp_started_ = true;
  count_status(h.status);
  record(stats::Phase::kTimeToFirstByte, headers_ns_, true, true);
  loop.release(encoded_head_);  // no retry once a response is under way
  encoded_head_ = IoBuf{};
  if (h.status == 101 || (method_ == h1::Method::kConnect && h.status >= 200 && h.status < 300)) {
    if (h.status != 101) c.set_tunnel();
    start_tunnel();
    return;
  }
  arm_exchange_timer();
}

void HttpSession::on_response_data(upstream::HttpConnection& c, const IoBuf& data) {
  if (&c != up_ || state_ == State::kClosing) {
    worker_.loop().release(data);
    return;
  }
  last_activity_ms_ = worker_.loop().now_ms();
  if (resp_framing_ == http::Framing::kChunked && state_ != State::kTunnel) {
    IoBuf hdr = worker_.loop().scratch(h1::kMaxChunkHeaderSize);
    if (!hdr.data) {
      worker_.loop().release(data);
      close();
      return;
    }
    hdr.len = static_cast<uint32_t>(
        h1::write_chunk_header(data.len, reinterpret_cast<char*>(const_cast<uint8_t*>(hdr.data))));
    send_client(hdr);
    send_client(data);
    send_client_static(h1::kCrlf);
  } else {
    send_client(data);
  }
  if (client_.send_full()) up_->pause_recv();
}

void HttpSession::on_response_trailers(upstream::HttpConnection& c, const IoBuf& raw) {
  if (&c != up_ || resp_framing_ != http::Framing::kChunked) {
    worker_.loop().release(raw);
    return;
  }
  if (!trailers_sent_) {
    send_client_static(h1::kLastChunk);
    trailers_sent_ = true;
  }
  send_client(raw);
}

void HttpSession::on_response_end(upstream::HttpConnection& c) {
  if (&c != up_) return;
  if (resp_framing_ == http::Framing::kChunked) {
    send_client_static(trailers_sent_ ? h1::kCrlf : h1::kLastChunkNoTrailers);
  }
  trailers_sent_ = false;
  resp_done_ = true;
  record(stats::Phase::kTotal, head_start_ns_, true, true);
  // A response that ends before the request body did: the rest of that body
  // was never read, so this connection cannot carry another request.
  if (!req_done_) close_after_ = true;
  finish_exchange();
}

void HttpSession::on_upstream_error(upstream::HttpConnection& c, upstream::HttpError e, int err) {
  if (&c != up_) return;
  EGW_LOG(debug, "client {}: upstream {}: {} ({})", peer_.to_string(), c.endpoint().label(),
          upstream::to_string(e), err ? std::strerror(err) : "");
  if (state_ == State::kTunnel) {
    close();
    return;
  }
  if (!resp_started_) {
    // A reused idle connection that the server had closed: try a fresh one,
    // without counting it as an attempt. Otherwise retry only a request that
    // is safe to repeat and whose body (if any) is not half sent.
    const bool reused = c.exchanges() > 0;
    const bool retryable = e == upstream::HttpError::kReset && idempotent(method_) &&
                           !req_body_sent_ && encoded_head_.data;
    if (retryable && (reused || attempts_ < cluster_->cluster.config().retries)) {
      if (!reused) ++attempts_;
      worker_.stats().retries.fetch_add(1, std::memory_order_relaxed);
      up_->close();
      up_ = nullptr;
      release_slot();
      pick();
      return;
    }
    fail_upstream(502);
    return;
  }
  // Mid-response: HTTP/1.1 can only say so by closing.
  close();
}

void HttpSession::on_upstream_sent(upstream::HttpConnection& c) {
  if (&c != up_) return;
  if (client_.recv_paused() && in_.bytes() < kMaxBuffered) client_.resume_recv();
  if (state_ == State::kExchange && !req_done_) pump_request_body();
}

void HttpSession::on_tunnel_eof(upstream::HttpConnection& c) {
  if (&c != up_) return;
  shutdown_client();
  if (client_eof_) close();
}

void HttpSession::start_tunnel() {
  state_ = State::kTunnel;
  worker_.stats().tunnels.fetch_add(1, std::memory_order_relaxed);
  release_slot();  // a tunnel is not a request in flight
  // Client bytes that followed the request head belong to the tunnel.
  while (!in_.empty())
    up_->send(in_.take_front());
  if (client_eof_) up_->shutdown_write();
  if (client_.recv_paused()) client_.resume_recv();
  arm_timer(listener_.http.tunnel_timeout_ms);
}

// --- local answers --------------------------------------------------------------------

void HttpSession::send_local(uint16_t status, const config::RouteConfig* route) {
  state_ = State::kLocal;
  count_status(status);
  const config::RespondConfig& rc = *route->respond;
  uring::Chunk* chunk = worker_.loop().new_chunk();
  if (!chunk) {
    send_error(503, true);
    return;
  }
  // Bodies the client may not have sent yet are not read for a local
  // answer: close after it instead of draining an arbitrary body.
  if (!req_done_ &&
      (req_body_kind_ == h1::BodyKind::kChunked || parser_->head().content_length > kMaxBuffered)) {
    close_after_ = true;
  }
  const bool head_only = method_ == h1::Method::kHead;
  const size_t n = http::write_local_response(
      static_cast<uint16_t>(status), rc.headers, rc.body, client_minor_, !close_after_,
      /*head_only=*/true, reinterpret_cast<char*>(chunk->data), uring::Chunk::kSize);
  IoBuf own;
  own.chunk = chunk;
  if (n == 0) {
    worker_.loop().release(own);
    send_error(500, true);
    return;
  }
  send_client(worker_.loop().chunk_slice(chunk, 0, static_cast<uint32_t>(n)));
  worker_.loop().release(own);
  // The body lives in the configuration snapshot this session holds.
  if (!head_only && !rc.body.empty() && status != 204 && status != 304) {
    send_client_static(rc.body);
  }
  resp_started_ = resp_done_ = true;
  record(stats::Phase::kTotal, head_start_ns_, true, false);
  if (!req_done_ && !close_after_) {
    discard_request_body();
    return;
  }
  finish_exchange();
}

void HttpSession::discard_request_body() {
  while (!req_done_ && !in_.empty()) {
    const IoBuf& f = in_.front();
    const auto step = req_body_.feed({reinterpret_cast<const char*>(f.data), f.len});
    in_.drop(step.consumed);
    if (step.kind == h1::BodyDecoder::Step::kDone) req_done_ = true;
    if (step.kind == h1::BodyDecoder::Step::kError) {
      close_after_ = true;
      req_done_ = true;
    }
  }
  if (!req_done_ && in_.empty() && req_body_.feed({}).kind == h1::BodyDecoder::Step::kDone) {
    req_done_ = true;
  }
  if (req_done_ && resp_done_ && state_ == State::kLocal) finish_exchange();
}

void HttpSession::send_error(uint16_t status, bool close_after) {
  count_status(status);
  worker_.stats().http_errors.fetch_add(1, std::memory_order_relaxed);
  if (resp_started_) {
    close();  // too late for an error response
    return;
  }
  state_ = State::kLocal;
  if (close_after) close_after_ = true;
  IoBuf b = worker_.loop().scratch(512);
  if (!b.data) {
    close();
    return;
  }
  b.len = static_cast<uint32_t>(
      http::write_error_response(status, client_minor_, !close_after_,
                                 reinterpret_cast<char*>(const_cast<uint8_t*>(b.data)), 512));
  send_client(b);
  resp_started_ = resp_done_ = true;
  if (close_after_) req_done_ = true;
  if (!req_done_) {
    discard_request_body();
    return;
  }
  finish_exchange();
}

void HttpSession::fail_upstream(uint16_t status) {
  if (up_) {
    up_->close();
    up_ = nullptr;
  }
  release_slot();
  send_error(status, !req_done_);
}

// --- end of an exchange -------------------------------------------------------------

void HttpSession::release_slot() {
  if (endpoint_ < 0) return;
  avoid_ = endpoint_;
  cluster_->cluster.endpoint(static_cast<size_t>(endpoint_)).release();
  endpoint_ = -1;
  worker_.slot_freed(*cluster_);
}

void HttpSession::release_upstream(bool reusable) {
  if (!up_) return;
  upstream::HttpConnection* c = up_;
  up_ = nullptr;
  if (reusable && c->reusable() && c->pool()) {
    const auto& cc = cluster_->cluster.config();
    c->pool()->checkin(c, cc.keep_alive_max_idle, cc.keep_alive_timeout_ms);
  } else {
    c->close();
  }
}

void HttpSession::drop_request_state() {
  release_slot();
  auto& loop = worker_.loop();
  loop.release(encoded_head_);
  encoded_head_ = IoBuf{};
  loop.release(head_mem_);
  head_mem_ = IoBuf{};
  parser_.reset();
  if (header_block_) {
    worker_.header_blocks().destroy(header_block_);
    header_block_ = nullptr;
  }
  head_buf_.reset();
}

void HttpSession::finish_exchange() {
  release_upstream(req_done_);
  drop_request_state();
  route_ = nullptr;
  if (close_after_ || client_eof_) {
    // Send what is queued, then FIN; keep reading (and dropping) for a
    // moment so that a close does not reset a response still in flight.
    // A client that announced the close itself (Connection: close, or
    // HTTP/1.0 without keep-alive) and sent nothing more has no bytes in
    // flight that could draw a reset: close as soon as the FIN is out,
    // without waiting for its FIN (which would only wake this worker again).
    close_when_sent_ = !client_keep_alive_ && req_done_ && in_.empty();
    state_ = State::kClosing;
    in_.clear();
    shutdown_client();
    if (close_when_sent_ && client_.send_idle()) {
      close();
      return;
    }
    arm_timer(kLingerMs);
    return;
  }
  state_ = State::kIdle;
  // No response is under way until the next request head is read (an error
  // answering that head must not take the last response for its own).
  resp_started_ = resp_done_ = trailers_sent_ = false;
  arm_timer(listener_.http.keep_alive_timeout_ms);
  if (!in_.empty()) process_input();  // a pipelined request
  if (state_ == State::kIdle && client_.recv_paused()) client_.resume_recv();
}

// --- client socket events ---------------------------------------------------------------

void HttpSession::on_eof(uring::StreamSocket&) {
  client_eof_ = true;
  switch (state_) {
    case State::kIdle:
    case State::kHead:
    case State::kClosing:
      close();
      return;
    case State::kTunnel:
      if (up_) up_->shutdown_write();
      return;
    case State::kQueued:
    case State::kConnecting:
    case State::kExchange:
    case State::kLocal:
      if (!req_done_) {
        // The client gave up in the middle of its request body.
        close();
        return;
      }
      close_after_ = true;  // answer, then close
      return;
  }
}

void HttpSession::on_error(uring::StreamSocket&, int) {
  close();
}

void HttpSession::on_sent(uring::StreamSocket&) {
  if (up_ && !client_.send_full()) up_->resume_recv();
  if (state_ == State::kClosing && client_.send_idle() && (client_eof_ || close_when_sent_))
    close();
}

void HttpSession::on_connected(uring::StreamSocket&, int) {}

void HttpSession::fail_tls() {
  // Encryption failed (out of memory): close from the timer, not from under
  // the caller.
  if (tls_failed_) return;
  tls_failed_ = true;
  arm_timer(0);
}

void HttpSession::send_client(const IoBuf& b) {
  if (tls_) {
    if (!tls_->send(b)) fail_tls();
    return;
  }
  if (!client_.send(b)) worker_.loop().release(b);
}

void HttpSession::send_client_static(std::string_view s) {
  if (!s.empty()) send_client(static_buf(s));
}

// --- timers -------------------------------------------------------------------------------

void HttpSession::arm_timer(uint64_t delay_ms) {
  worker_.loop().timers().schedule_after(timer_, delay_ms);
}

// During an exchange one timer serves three deadlines: the response head
// (server timeout), idleness once the response flows, and the end of the
// current request-body rate window.
void HttpSession::arm_exchange_timer() {
  const config::HttpConfig& http = listener_.http;
  const auto& cc = cluster_->cluster.config();
  const uint64_t idle = resp_started_ ? std::min<uint64_t>(listener_.client_idle_timeout_ms,
                                                           cc.server_idle_timeout_ms)
                                      : cc.server_idle_timeout_ms;
  uint64_t next = last_activity_ms_ + idle;
  if (!req_done_ && http.min_request_body_rate > 0) {
    next = std::min(next, window_start_ms_ + http.body_rate_window_ms);
  }
  worker_.loop().timers().schedule(timer_, next);
}

void HttpSession::on_timer() {
  const uint64_t now = worker_.loop().now_ms();
  const config::HttpConfig& http = listener_.http;
  if (tls_failed_) {
    close();
    return;
  }
  switch (state_) {
    case State::kIdle:
      if (tls_ && !tls_->handshake_done()) {
        worker_.stats().tls_timeouts.fetch_add(1, std::memory_order_relaxed);
        close(/*reset=*/true);
        return;
      }
      close();  // keep-alive timeout (or no first request)
      return;
    case State::kHead:
      worker_.stats().request_timeouts.fetch_add(1, std::memory_order_relaxed);
      send_error(408, true);
      return;
    case State::kQueued:
      cluster_->leave(*this, worker_.index());
      worker_.stats().queue_timeouts.fetch_add(1, std::memory_order_relaxed);
      send_error(503, !req_done_);
      return;
    case State::kConnecting:
      // The TLS handshake to the endpoint is late (the TCP connect has its
      // own, linked, timeout).
      if (up_ && up_->tls_session()) on_upstream_connected(*up_, ETIMEDOUT);
      return;
    case State::kExchange: {
      // Slow request bodies (slow POST): the average rate over each window.
      if (!req_done_ && http.min_request_body_rate > 0 &&
          now - window_start_ms_ >= http.body_rate_window_ms) {
        const uint64_t window = now - window_start_ms_;
        if (window_bytes_ * 1000 < uint64_t{http.min_request_body_rate} * window) {
          worker_.stats().slow_bodies.fetch_add(1, std::memory_order_relaxed);
          if (!resp_started_) {
            fail_upstream(408);
          } else {
            close();
          }
          return;
        }
        window_start_ms_ = now;
        window_bytes_ = 0;
      }
      const auto& cc = cluster_->cluster.config();
      const uint64_t idle = resp_started_ ? std::min<uint64_t>(listener_.client_idle_timeout_ms,
                                                               cc.server_idle_timeout_ms)
                                          : cc.server_idle_timeout_ms;
      if (now - last_activity_ms_ >= idle) {
        if (!resp_started_) {
          worker_.stats().response_timeouts.fetch_add(1, std::memory_order_relaxed);
          fail_upstream(504);
        } else {
          close();
        }
        return;
      }
      arm_exchange_timer();
      return;
    }
    case State::kTunnel:
      if (now - last_activity_ms_ >= http.tunnel_timeout_ms) {
        close();
        return;
      }
      worker_.loop().timers().schedule(timer_, last_activity_ms_ + http.tunnel_timeout_ms);
      return;
    case State::kLocal:
      close();
      return;
    case State::kClosing:
      close();  // linger over
      return;
  }
}

// --- teardown ------------------------------------------------------------------------------

void HttpSession::abort() {
  close();
}

void HttpSession::drain() {
  if (state_ == State::kIdle) {
    close();
    return;
  }
  close_after_ = true;  // this exchange is the last; its response says so when not yet sent
}

void HttpSession::close(bool reset) {
  if (!client_live_ || client_.closing()) return;
  if (state_ == State::kQueued) {
    cluster_->leave(*this, worker_.index());
  }
  state_ = State::kClosing;
  worker_.loop().timers().cancel(timer_);
  if (up_) {
    up_->close();
    up_ = nullptr;
  }
  drop_request_state();
  in_.clear();
  if (reset) {
    client_.abort();
  } else {
    client_.close();
  }
}

void HttpSession::on_released(uring::StreamSocket&) {
  client_live_ = false;
  maybe_destroy();
}

void HttpSession::maybe_destroy() {
  if (client_live_) return;
  worker_.session_ended(*this, snap_);  // destroys *this
}

void HttpSession::count_status(uint16_t status) {
  const size_t cls = status / 100;
  if (cls >= 1 && cls <= 5)
    worker_.stats().http_status[cls].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace egw::downstream

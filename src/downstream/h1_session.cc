#include "src/downstream/h1_session.h"

#include <algorithm>
#include <cstring>

#include "egw/clock.h"
#include "egw/log.h"
#include "proto/h1/encoder.h"
#include "src/http/h1_body.h"
#include "src/server/worker.h"

namespace egw::downstream {

namespace h1 = proto::h1;
namespace ph = proto::http;
using uring::IoBuf;

namespace {

// Input buffered ahead of where the session consumes it (a pipelined next
// request, a body waiting for its upstream) before the client is paused.
constexpr size_t kMaxBuffered = 64 * 1024;
// After the last response of a connection: how long to keep reading (and
// discarding) so that a close does not reset a response still in flight.
constexpr uint64_t kLingerMs = 2000;
// Room for an error response (write_error_response() always fits).
constexpr uint32_t kErrorResponseBytes = 512;

IoBuf static_buf(std::string_view s) {
  IoBuf b;
  b.data = reinterpret_cast<const uint8_t*>(s.data());
  b.len = static_cast<uint32_t>(s.size());
  return b;
}

}  // namespace

const char* H1Session::to_string(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kHead:
      return "head";
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

H1Session::H1Session(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
                     const ClientConn& conn)
    : worker_(worker),
      snap_(snap),
      listener_(*snap.http_listeners[listener]),
      client_(conn.stream),
      peer_(conn.peer),
      dst_(conn.dst),
      handshake_us_(conn.handshake_us),
      hash_(conn.hash),
      in_(worker.loop()),
      timer_(conn.timer),
      head_start_ns_(conn.accept_ns) {
  timer_.set_callback([this] { on_timer(); });
}

H1Session::~H1Session() {
  worker_.loop().timers().cancel(timer_);
  drop_request_state();
}

void H1Session::set_state(State s) {
  if (s == state_) return;
  EGW_LOG(trace, "client {}: {} -> {}", peer_.to_string(), to_string(state_), to_string(s));
  state_ = s;
}

void H1Session::record(stats::Phase p, uint64_t from_ns) {
  if (listener_.latency) listener_.latency->record(p, from_ns, clock::cached_ns());
}

void H1Session::start() {
  // The first request counts from the accept (head_start_ns_), and must be
  // complete in time.
  arm_timer(listener_.config->http.request_timeout_ms);
}

// --- client input ------------------------------------------------------------------

void H1Session::on_data(const IoBuf& buf) {
  if (state_ == State::kTunnel) {
    if (ex_) {
      ex_->tunnel_data(buf);
      if (!ex_->body_room()) client_.pause_recv();
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

void H1Session::process_input() {
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
  update_client_recv();
}

// Reads on while less than kMaxBuffered waits and the exchange takes body
// bytes (or has not got that far).
void H1Session::update_client_recv() {
  if (state_ == State::kClosing || state_ == State::kTunnel || client_.closing()) return;
  const bool upstream_full = state_ == State::kExchange && ex_ && !req_done_ &&
                             ex_->state() == proxy::Exchange::State::kExchange && !ex_->body_room();
  if (in_.bytes() >= kMaxBuffered || upstream_full) {
    client_.pause_recv();
  } else if (client_.recv_paused()) {
    client_.resume_recv();
  }
}

void H1Session::parse_head() {
  if (in_.empty()) return;
  const config::HttpConfig& http = listener_.config->http;
  if (state_ == State::kIdle) {
    if (!first_request_) head_start_ns_ = clock::cached_ns();  // the first counts from accept
    set_state(State::kHead);
    arm_timer(http.request_timeout_ms);
  }
  if (!rq_) {
    rq_ = worker_.h1_requests().create(worker_.loop());
    if (!rq_) {
      send_error(503, true);
      return;
    }
    h1::Limits limits;
    limits.max_request_line = http.max_request_line_bytes;
    limits.max_head_bytes = http.max_header_bytes;
    limits.max_headers = std::min(http.max_headers, H1Request::kMaxHeaders);
    rq_->parser.emplace(limits, rq_->headers.span());
  }
  bool full = false;
  const std::string_view view = rq_->head_buf.gather(in_, &full);
  if (view.empty()) {
    if (!full) send_error(503, true);  // no chunk to assemble the head in
    return;
  }
  const h1::ParseStatus st = rq_->parser->parse(view);
  if (st == h1::ParseStatus::kError) {
    const int status = h1::http_status(rq_->parser->error());
    EGW_LOG(debug, "client {}: request rejected ({}): {}", peer_.to_string(), status,
            h1::to_string(rq_->parser->error()));
    send_error(static_cast<uint16_t>(status ? status : 400), true);
    return;
  }
  if (st == h1::ParseStatus::kIncomplete) {
    if (full) send_error(431, true);
    return;
  }
  rq_->head_mem = rq_->head_buf.finish(in_, rq_->parser->head_size());
  begin_exchange();
}

void H1Session::begin_exchange() {
  const h1::RequestHead& head = rq_->parser->head();
  const config::HttpConfig& http = listener_.config->http;
  worker_.stats().http_requests.fetch_add(1, std::memory_order_relaxed);
  record(stats::Phase::kAcceptToHeaders, head_start_ns_);
  const uint64_t headers_ns = clock::cached_ns();
  first_request_ = false;
  method_ = head.method;
  client_minor_ = head.version_minor;
  client_keep_alive_ = head.keep_alive;
  // A draining worker answers this request and closes (Connection: close).
  close_after_ = !client_keep_alive_ || worker_.draining();
  rq_->body.start(head.body, head.content_length);
  req_done_ = head.body == h1::BodyKind::kNone;
  resp_started_ = resp_done_ = trailers_sent_ = false;
  set_state(State::kExchange);
  worker_.loop().timers().cancel(timer_);
  if (head.body == h1::BodyKind::kContentLength && head.content_length > http.max_body_bytes) {
    send_error(413, true);
    return;
  }
  // Check the body bytes already here before anything goes upstream: a
  // request whose framing is broken in its first packet (the usual shape of
  // a smuggling attempt) is refused without the backend seeing any of it.
  if (!req_done_ && !in_.empty()) {
    h1::BodyDecoder probe = rq_->body;
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
  const proxy::Client client = client_of(client_, peer_, hash_, dst_, handshake_us_);
  proxy::Downstream& down = *this;
  ex_ = worker_.exchanges().create(worker_, listener_, down, client);
  if (!ex_) {
    send_error(503, true);
    return;
  }
  ex_->start(head.neutral(), head_start_ns_, headers_ns);
}

void H1Session::pump_request_body() {
  using Kind = http::BodyStep::Kind;
  while (!req_done_ && ex_ && ex_->body_room()) {
    http::BodyStep step = http::next_body_step(worker_.loop(), rq_->body, in_, rq_->trailers);
    switch (step.kind) {
      case Kind::kNeedMore:
        return;
      case Kind::kProgress:
        break;
      case Kind::kData:
        ex_->request_data(step.data);  // may end the exchange (413, upstream failure)
        break;
      case Kind::kTrailersTooLarge:
        send_error(431, true);
        return;
      case Kind::kDone: {
        req_done_ = true;
        bool ok = true;
        if (!rq_->trailers.empty()) {
          ok = rq_->trailers.deliver([this](std::span<const ph::Field> t) { ex_->request_end(t); });
        } else {
          ex_->request_end({});
        }
        if (!ok) {
          send_error(431, true);
          return;
        }
        break;
      }
      case Kind::kError:
        EGW_LOG(debug, "client {}: bad request body: {}", peer_.to_string(),
                h1::to_string(rq_->body.error()));
        send_error(400, true);
        return;
    }
  }
}

void H1Session::resume_request_body() {
  if (state_ == State::kTunnel) {
    if (client_.recv_paused()) client_.resume_recv();
    return;
  }
  if (state_ == State::kExchange && !req_done_) pump_request_body();
  update_client_recv();
}

// --- responses ------------------------------------------------------------------------

bool H1Session::response_head(const ph::ResponseHead& h, const http::ResponseContext& ctx) {
  auto& loop = worker_.loop();
  http::ClientResponse how;
  how.client_minor = client_minor_;
  const bool informational = h.status < 200 && h.status != 101;
  if (informational) {
    if (client_minor_ == 0) return true;  // 1.0 clients never see 1xx
  } else if (h.status != 101) {
    // How the body travels to the client.
    switch (h.body) {
      case ph::Body::kNone:
        resp_framing_ = http::Framing::kNone;
        break;
      case ph::Body::kLength:
        resp_framing_ = http::Framing::kContentLength;
        break;
      case ph::Body::kUnknown:
        resp_framing_ = client_minor_ == 1 ? http::Framing::kChunked : http::Framing::kUntilClose;
        break;
    }
    if (resp_framing_ == http::Framing::kUntilClose) close_after_ = true;
    if (method_ == h1::Method::kConnect && h.status >= 200 && h.status < 300) {
      resp_framing_ = http::Framing::kNone;
      how.tunnel = true;
    }
  }
  how.keep_alive = !close_after_;
  how.framing = resp_framing_;
  uring::Chunk* chunk = loop.new_chunk();
  if (!chunk) return false;
  const size_t n = http::write_client_response(h, ctx, how, reinterpret_cast<char*>(chunk->data),
                                               uring::Chunk::kSize);
  IoBuf own;
  own.chunk = chunk;
  if (n == 0) {
    loop.release(own);
    return false;
  }
  send_client(loop.chunk_slice(chunk, 0, static_cast<uint32_t>(n)));
  loop.release(own);
  if (informational) return true;
  resp_started_ = true;
  count_status(h.status);
  return true;
}

void H1Session::response_data(const IoBuf& data) {
  if (state_ == State::kClosing) {
    worker_.loop().release(data);
    return;
  }
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
  if (ex_ && client_.send_full()) ex_->pause_response();
}

void H1Session::response_trailers(std::span<const ph::Field> trailers) {
  // Only a chunked body can carry them to an HTTP/1.1 client.
  if (resp_framing_ != http::Framing::kChunked || trailers.empty()) return;
  const IoBuf last = http::encode_last_chunk(worker_.loop(), trailers);
  if (!last.data) return;  // the body still ends, without them
  send_client(last);
  trailers_sent_ = true;
}

void H1Session::response_end() {
  if (resp_framing_ == http::Framing::kChunked && !trailers_sent_) {
    send_client_static(h1::kLastChunkNoTrailers);
  }
  trailers_sent_ = false;
  resp_done_ = true;
  // A response that ends before the request body did: the rest of that body
  // was never read, so this connection cannot carry another request.
  if (!req_done_) close_after_ = true;
  finish_exchange();
}

void H1Session::reset() {
  // HTTP/1.1 can only say "this response is broken" by closing.
  close();
}

void H1Session::tunnel_open() {
  set_state(State::kTunnel);
  worker_.loop().timers().cancel(timer_);  // the exchange times the tunnel
  // Client bytes that followed the request head belong to the tunnel.
  while (!in_.empty())
    ex_->tunnel_data(in_.take_front());
  if (client_eof_) ex_->tunnel_eof();
  if (client_.recv_paused()) client_.resume_recv();
}

void H1Session::tunnel_eof() {
  client_.shutdown();
  if (client_eof_) close();
}

// --- local answers --------------------------------------------------------------------

void H1Session::respond_local(const config::RouteConfig& route) {
  set_state(State::kLocal);
  const uint16_t status = static_cast<uint16_t>(route.respond->status);
  count_status(status);
  const config::RespondConfig& rc = *route.respond;
  uring::Chunk* chunk = worker_.loop().new_chunk();
  if (!chunk) {
    send_error(503, true);
    return;
  }
  // Bodies the client may not have sent yet are not read for a local
  // answer: close after it instead of draining an arbitrary body.
  if (!req_done_ && (rq_->parser->head().body == h1::BodyKind::kChunked ||
                     rq_->parser->head().content_length > kMaxBuffered)) {
    close_after_ = true;
  }
  const bool head_request = method_ == h1::Method::kHead;
  const size_t n = http::write_local_response(
      status, rc.headers, rc.body, client_minor_, !close_after_, /*head_only=*/true,
      reinterpret_cast<char*>(chunk->data), uring::Chunk::kSize);
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
  if (!head_request && !rc.body.empty() && status != 204 && status != 304) {
    send_client_static(rc.body);
  }
  resp_started_ = resp_done_ = true;
  record(stats::Phase::kTotal, head_start_ns_);
  if (!req_done_ && !close_after_) {
    discard_request_body();
    return;
  }
  finish_exchange();
}

void H1Session::respond_error(uint16_t status) {
  // A request the exchange found malformed (400, 414, 431) says nothing
  // good about the bytes after it, and a refused CONNECT may be followed by
  // bytes meant for the tunnel: close after those.
  const bool malformed = status == 400 || status == 414 || status == 431;
  send_error(status, !req_done_ || malformed || method_ == h1::Method::kConnect);
}

void H1Session::discard_request_body() {
  if (!rq_) req_done_ = true;  // nothing was read of it
  while (!req_done_ && !in_.empty()) {
    const IoBuf& f = in_.front();
    const auto step = rq_->body.feed({reinterpret_cast<const char*>(f.data), f.len});
    in_.drop(step.consumed);
    if (step.kind == h1::BodyDecoder::Step::kDone) req_done_ = true;
    if (step.kind == h1::BodyDecoder::Step::kError) {
      close_after_ = true;
      req_done_ = true;
    }
  }
  if (!req_done_ && in_.empty() && rq_->body.feed({}).kind == h1::BodyDecoder::Step::kDone) {
    req_done_ = true;
  }
  if (rq_) rq_->trailers.reset();
  if (req_done_ && resp_done_ && state_ == State::kLocal) finish_exchange();
}

void H1Session::send_error(uint16_t status, bool close_after) {
  count_status(status);
  if (!ex_ && listener_.access_log) log_refused(status);
  worker_.stats().http_errors.fetch_add(1, std::memory_order_relaxed);
  if (resp_started_) {
    close();  // too late for an error response
    return;
  }
  set_state(State::kLocal);
  if (close_after) close_after_ = true;
  IoBuf b = worker_.loop().scratch(kErrorResponseBytes);
  if (!b.data) {
    close();
    return;
  }
  b.len = static_cast<uint32_t>(http::write_error_response(
      status, client_minor_, !close_after_, reinterpret_cast<char*>(const_cast<uint8_t*>(b.data)),
      kErrorResponseBytes));
  send_client(b);
  resp_started_ = resp_done_ = true;
  if (close_after_) req_done_ = true;
  if (!req_done_) {
    discard_request_body();
    return;
  }
  finish_exchange();
}

// --- end of an exchange -------------------------------------------------------------

void H1Session::drop_request_state() {
  if (ex_) {
    proxy::Exchange* ex = ex_;
    ex_ = nullptr;
    worker_.exchanges().destroy(ex);  // the upstream goes back to its pool when clean
  }
  if (rq_) {
    worker_.loop().release(rq_->head_mem);
    rq_->head_buf.reset();
    worker_.h1_requests().destroy(rq_);
    rq_ = nullptr;
  }
}

void H1Session::finish_exchange() {
  drop_request_state();
  if (close_after_ || client_eof_) {
    // Send what is queued, then FIN; keep reading (and dropping) for a
    // moment so that a close does not reset a response still in flight.
    // A client that announced the close itself (Connection: close, or
    // HTTP/1.0 without keep-alive) and sent nothing more has no bytes in
    // flight that could draw a reset: close as soon as the FIN is out,
    // without waiting for its FIN (which would only wake this worker again).
    close_when_sent_ = !client_keep_alive_ && req_done_ && in_.empty();
    set_state(State::kClosing);
    in_.clear();
    client_.shutdown();
    if (close_when_sent_ && client_.send_idle()) {
      close();
      return;
    }
    arm_timer(kLingerMs);
    return;
  }
  set_state(State::kIdle);
  // No response is under way until the next request head is read (an error
  // answering that head must not take the last response for its own).
  resp_started_ = resp_done_ = trailers_sent_ = false;
  arm_timer(listener_.config->http.keep_alive_timeout_ms);
  if (!in_.empty()) process_input();  // a pipelined request
  if (state_ == State::kIdle && client_.recv_paused()) client_.resume_recv();
}

// --- client socket events ---------------------------------------------------------------

void H1Session::on_eof() {
  client_eof_ = true;
  switch (state_) {
    case State::kIdle:
    case State::kHead:
    case State::kClosing:
      close();
      return;
    case State::kTunnel:
      if (ex_) ex_->tunnel_eof();
      return;
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

void H1Session::on_error(int err) {
  if (err == EPROTO) EGW_LOG(debug, "tls from {}: {}", peer_.to_string(), client_.error());
  close();
}

void H1Session::on_sent() {
  if (ex_ && !client_.send_full()) ex_->resume_response();
  if (state_ == State::kClosing && client_.send_idle() && (client_eof_ || close_when_sent_))
    close();
}

void H1Session::send_client(const IoBuf& b) {
  client_.send(b);  // a stream that cannot send any more reports why
}

void H1Session::send_client_static(std::string_view s) {
  if (!s.empty()) send_client(static_buf(s));
}

// --- timers -------------------------------------------------------------------------------

void H1Session::arm_timer(uint64_t delay_ms) {
  worker_.loop().timers().schedule_after(timer_, delay_ms);
}

void H1Session::on_timer() {
  switch (state_) {
    case State::kIdle:
      if (worker_.draining()) {
        // The drain window is over: FIN, then read and drop until the
        // client's FIN, so that a request sent meanwhile draws no reset.
        set_state(State::kClosing);
        in_.clear();
        client_.shutdown();
        arm_timer(kLingerMs);
        return;
      }
      close();  // keep-alive timeout (or no first request)
      return;
    case State::kHead:
      worker_.stats().request_timeouts.fetch_add(1, std::memory_order_relaxed);
      send_error(408, true);
      return;
    case State::kExchange:
    case State::kTunnel:
      return;  // the exchange keeps its own time
    case State::kLocal:
      close();
      return;
    case State::kClosing:
      close();  // linger over
      return;
  }
}

// --- teardown ------------------------------------------------------------------------------

void H1Session::abort() {
  close();
}

void H1Session::drain() {
  close_after_ = true;  // this exchange is the last; its response says so when not yet sent
  if (state_ != State::kIdle) return;
  // Idle: a request that comes within the worker's drain window is still
  // answered, with Connection: close, instead of racing it with a close.
  const uint64_t window = worker_.drain_idle_ms();
  if (window == 0 || client_eof_) {
    close();
    return;
  }
  arm_timer(std::min<uint64_t>(window, listener_.config->http.keep_alive_timeout_ms));
}

void H1Session::close(bool reset) {
  if (client_.closing()) return;
  set_state(State::kClosing);
  worker_.loop().timers().cancel(timer_);
  drop_request_state();
  in_.clear();
  if (reset) {
    client_.abort();
  } else {
    client_.close();
  }
}

void H1Session::log_refused(uint16_t status) {
  // Refused before an exchange began (a head that does not parse, a limit,
  // a timeout): what is known of it.
  accesslog::Record r;
  r.time_ns = clock::wall_ns();
  r.client = &peer_;
  r.listener = listener_.config->name;
  r.protocol = "h1";
  r.version = client_minor_ == 0 ? "HTTP/1.0" : "HTTP/1.1";
  r.status = status;
  r.termination = accesslog::termination_of(status);
  proxy::set_tls(r, client_.tls_session());
  if (handshake_us_ && *handshake_us_)
    r.phase_us[static_cast<size_t>(stats::Phase::kTlsHandshake)] = *handshake_us_;
  listener_.access_log->write(*listener_.access_format, r);
}

void H1Session::count_status(uint16_t status) {
  const size_t cls = status / 100;
  if (cls >= 1 && cls <= 5)
    worker_.stats().http_status[cls].fetch_add(1, std::memory_order_relaxed);
  if (listener_.latency) listener_.latency->count_response(0, status);
}

}  // namespace egw::downstream

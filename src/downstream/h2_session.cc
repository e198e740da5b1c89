#include "src/downstream/h2_session.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <sys/random.h>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/server/worker.h"
#include "src/tls/digest.h"

namespace egw::downstream {

namespace h2 = proto::h2;
namespace ph = proto::http;
using Nv = h2::ServerSession::Nv;
using uring::IoBuf;

namespace {

// After the last frame: how long to wait for the client's FIN.
constexpr uint64_t kLingerMs = 2000;
// After the GOAWAY notice of a drain: how long before the final GOAWAY
// (streams the client opened meanwhile are still taken).
constexpr uint64_t kDrainNoticeMs = 1000;
// Output produced per flush round before the socket's room is checked.
constexpr size_t kSendBudget = 64 * 1024;

IoBuf static_buf(std::string_view s) {
  IoBuf b;
  b.data = reinterpret_cast<const uint8_t*>(s.data());
  b.len = static_cast<uint32_t>(s.size());
  return b;
}

h2::Settings settings_of(const config::HttpConfig& http) {
  h2::Settings s;
  s.max_concurrent_streams = http.http2_max_concurrent_streams;
  s.initial_window = http.http2_initial_window_bytes;
  s.connection_window = http.http2_connection_window_bytes;
  s.max_header_list = http.max_header_bytes;
  s.max_headers = http.max_headers;
  return s;
}

// Fields that describe an HTTP/1.1 connection and have no place in HTTP/2
// (RFC 9113 §8.2.2); the forwarding policy drops them already, this is the
// codec's own guarantee.
bool connection_specific(std::string_view n) {
  return ph::iequals(n, "connection") || ph::iequals(n, "keep-alive") ||
         ph::iequals(n, "proxy-connection") || ph::iequals(n, "transfer-encoding") ||
         ph::iequals(n, "upgrade") || ph::iequals(n, "te") || ph::iequals(n, "http2-settings");
}

// Writes a head's fields as HTTP/2 wants them: lower-case names, copied
// into `mem` (nghttp2 copies them again when the head is submitted).
class NvWriter final : public ph::FieldSink {
 public:
  NvWriter(std::vector<Nv>& out, char* mem, size_t cap, std::string_view skip = {})
      : out_(out), mem_(mem), cap_(cap), skip_(skip) {}
  bool field(std::string_view name, std::string_view value) override {
    if (connection_specific(name) || (!skip_.empty() && ph::iequals(name, skip_))) return true;
    if (name.size() + value.size() > cap_ - used_) return false;
    char* n = mem_ + used_;
    for (size_t i = 0; i < name.size(); ++i) {
      const char c = name[i];
      n[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    std::memcpy(n + name.size(), value.data(), value.size());
    used_ += name.size() + value.size();
    out_.push_back({{n, name.size()}, {n + name.size(), value.size()}});
    return true;
  }

 private:
  std::vector<Nv>& out_;
  char* mem_;
  size_t cap_;
  std::string_view skip_;
  size_t used_ = 0;
};

}  // namespace

// --- H2Stream ----------------------------------------------------------------------------

H2Stream::H2Stream(H2Session& session, uring::EventLoop& loop)
    : session_(session), body_(loop), req_body_(loop) {
  st_.user = this;
}

H2Stream::~H2Stream() {
  if (fill_) {
    IoBuf own;
    own.chunk = fill_;
    session_.loop_.release(own);
  }
}

bool H2Stream::response_head(const ph::ResponseHead& h, const http::ResponseContext& ctx) {
  H2Session& s = session_;
  if (closed_) return true;
  // The only upgrade HTTP/2 has is RFC 8441's: the backend's 101 becomes a
  // 200 once its Sec-WebSocket-Accept proves it answered our key.
  const bool websocket = upgrade_ && h.status == 101;
  if (h.status == 101 && !websocket) return false;  // 502
  if (websocket) {
    std::string_view accept;
    for (const auto& f : h.fields)
      if (ph::iequals(f.name, "sec-websocket-accept")) accept = f.value;
    if (accept != tls::websocket_accept(ws_key_)) return false;  // 502
  }
  uring::Chunk* chunk = s.loop_.new_chunk();
  if (!chunk) return false;
  IoBuf own;
  own.chunk = chunk;
  s.nv_.clear();
  NvWriter w(s.nv_, reinterpret_cast<char*>(chunk->data), uring::Chunk::kSize - 32,
             websocket ? "sec-websocket-accept" : "");
  const bool tunnel =
      websocket || (method_ == ph::Method::kConnect && h.status >= 200 && h.status < 300);
  bool ok = http::forward_response_fields(h, ctx, w);
  char len_buf[24];
  if (ok && h.has_length && !tunnel && h.status >= 200 && h.status != 204) {
    const auto r = std::to_chars(len_buf, len_buf + sizeof(len_buf), h.content_length);
    s.nv_.push_back({"content-length", {len_buf, static_cast<size_t>(r.ptr - len_buf)}});
  }
  if (ok) {
    if (h.informational() && !websocket) {
      ok = s.ss_.submit_informational(st_.id, h.status, s.nv_);
    } else {
      // A body follows unless the response has none; a tunnel's bytes are
      // DATA frames until either side ends.
      const bool end = h.body == ph::Body::kNone && !tunnel;
      const uint16_t status = websocket ? 200 : h.status;
      ok = s.ss_.submit_response(st_.id, status, s.nv_, end);
      if (ok) {
        resp_head_sent_ = true;
        if (end) resp_end_ = true;
        s.count_status(status);
      }
    }
  }
  s.loop_.release(own);
  if (ok) s.schedule();
  return ok;
}

void H2Stream::response_data(const IoBuf& data) {
  H2Session& s = session_;
  if (closed_ || resp_end_) {
    s.loop_.release(data);
    return;
  }
  if (body_.empty()) progress_ms_ = s.loop_.now_ms();  // it begins to wait here
  body_.push_back(data);
  s.buffered_ += data.len;
  if (deferred_) {
    deferred_ = false;
    s.ss_.resume(st_.id);
  }
  // Past this stream's share, or past the connection's: the upstream waits
  // until the client's windows let the queues drain.
  if (!paused_ && ex_ &&
      (body_.bytes() >= H2Session::kMaxStreamBuffered ||
       s.buffered_ >= H2Session::kMaxConnBuffered)) {
    paused_ = true;
    ++s.paused_;
    ex_->pause_response();
  }
  s.schedule();
}

void H2Stream::response_trailers(std::span<const ph::Field> trailers) {
  if (closed_) return;
  size_t bytes = 0;
  for (const auto& f : trailers)
    bytes += f.name.size() + f.value.size();
  trailer_mem_.clear();
  trailer_mem_.reserve(bytes);
  resp_trailers_.clear();
  for (const auto& f : trailers) {
    if (connection_specific(f.name)) continue;
    const size_t at = trailer_mem_.size();
    for (char c : f.name)
      trailer_mem_.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
    trailer_mem_.append(f.value);
    resp_trailers_.push_back({{trailer_mem_.data() + at, f.name.size()},
                              {trailer_mem_.data() + at + f.name.size(), f.value.size()}});
  }
}

void H2Stream::response_end() {
  H2Session& s = session_;
  resp_end_ = true;
  if (closed_) return;
  if (deferred_) {
    deferred_ = false;
    s.ss_.resume(st_.id);
  }
  s.finish_exchange(*this);
  s.schedule();
}

void H2Stream::respond_error(uint16_t status) {
  session_.send_error(*this, status);
}

void H2Stream::respond_local(const config::RouteConfig& route) {
  H2Session& s = session_;
  const config::RespondConfig& rc = *route.respond;
  const auto status = static_cast<uint16_t>(rc.status);
  s.nv_.clear();
  const bool no_body = method_ == ph::Method::kHead || status == 204 || status == 304;
  // The configuration checked the names; HTTP/2 wants them lower case.
  std::string names;
  size_t bytes = 0;
  for (const auto& [n, v] : rc.headers)
    bytes += n.size();
  names.reserve(bytes);
  for (const auto& [n, v] : rc.headers) {
    if (connection_specific(n) || ph::iequals(n, "content-length")) continue;
    const size_t at = names.size();
    for (char c : n)
      names.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
    s.nv_.push_back({{names.data() + at, n.size()}, v});
  }
  char len_buf[24];
  const auto r = std::to_chars(len_buf, len_buf + sizeof(len_buf), rc.body.size());
  if (status != 204 && status != 304) {
    s.nv_.push_back({"content-length", {len_buf, static_cast<size_t>(r.ptr - len_buf)}});
  }
  // The body lives in the configuration snapshot this session holds.
  s.respond(*this, status, s.nv_, no_body ? IoBuf{} : static_buf(rc.body));
}

void H2Stream::reset() {
  // The response broke after it began: only this stream ends.
  session_.ss_.reset_stream(st_.id, h2::kInternalError);
  session_.schedule();
}

void H2Stream::resume_request_body() {
  session_.pump_request(*this);
  session_.schedule();
}

void H2Stream::tunnel_open() {
  tunnel_ = true;
  session_.pump_request(*this);
  session_.schedule();
}

void H2Stream::tunnel_eof() {
  // The upstream's FIN: END_STREAM toward the client, who may still send.
  resp_end_ = true;
  if (closed_) return;
  if (deferred_) {
    deferred_ = false;
    session_.ss_.resume(st_.id);
  }
  session_.schedule();
}

// --- H2Session: setup and input ----------------------------------------------------------

H2Session::H2Session(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
                     const ClientConn& conn)
    : worker_(worker),
      snap_(snap),
      listener_(*snap.http_listeners[listener]),
      loop_(worker.loop()),
      client_(conn.stream),
      timer_(conn.timer),
      peer_(conn.peer),
      dst_(conn.dst),
      handshake_us_(conn.handshake_us),
      hash_(conn.hash),
      ss_(*this, settings_of(listener_.config->http)),
      out_(loop_, client_) {
  timer_.set_callback([this] { on_timer(); });
}

H2Session::~H2Session() {
  loop_.timers().cancel(timer_);
  flush_node_unlink();
  while (H2Stream* hs = streams_.front())
    free_stream(*hs);
  // ss_ goes last: the streams have let go of its memory.
}

void H2Session::start() {
  idle_since_ms_ = loop_.now_ms();
  if (!ss_.start(loop_.now_ms())) {
    EGW_LOG(warn, "client {}: cannot start an HTTP/2 session", peer_.to_string());
    close();
    return;
  }
  schedule();
}

void H2Session::on_data(const IoBuf& buf) {
  if (closing_ || fatal_ || closed_) {
    loop_.release(buf);  // lingering: read and drop
    return;
  }
  in_ = &buf;
  const auto st = ss_.recv(buf.data, buf.len, loop_.now_ms());
  in_ = nullptr;
  loop_.release(buf);
  if (st == h2::ServerSession::Status::kClosed) {
    EGW_LOG(debug, "client {}: HTTP/2 connection error: {}", peer_.to_string(), ss_.error());
    worker_.stats().http_errors.fetch_add(1, std::memory_order_relaxed);
    set_fatal();
  }
  if (ss_.may_hibernate()) {
    // No request yet: answer now, so that an idle session lets go of its
    // nghttp2 state before the next connection's bytes are read (a burst of
    // new connections would otherwise hold one full session each until the
    // loop's flush).
    flush();
    return;
  }
  schedule();
}

// A connection error: GOAWAY goes out when the socket takes it, and the
// connection closes then, or after kLingerMs when the client does not read.
void H2Session::set_fatal() {
  if (fatal_) return;
  fatal_ = true;
  fatal_ms_ = loop_.now_ms();
}

h2::Stream* H2Session::begin_stream(int32_t id) {
  (void)id;
  if (draining_ && ss_.goaway_sent()) return nullptr;
  H2Stream* hs = worker_.h2_streams().create(*this, loop_);
  if (!hs) return nullptr;
  if (auto& spare = worker_.h2_spare_streams(); !spare.empty()) {
    std::swap(hs->st_, spare.back());
    hs->st_.user = hs;
    spare.pop_back();
  }
  hs->head_ns_ = clock::cached_ns();
  streams_.push_back(*hs);
  return &hs->st_;
}

void H2Session::on_request(h2::Stream& s, const ph::RequestHead& head, bool end) {
  H2Stream& hs = of(s);
  const config::HttpConfig& http = listener_.config->http;
  worker_.stats().http_requests.fetch_add(1, std::memory_order_relaxed);
  if (listener_.latency && requests_ == 0) {
    listener_.latency->record(stats::Phase::kAcceptToHeaders, hs.head_ns_, clock::cached_ns());
  }
  hs.method_ = head.method;
  hs.req_end_ = end;
  // A request without a body has nothing more to say; one with a declared
  // empty body still ends through request_end().
  hs.req_end_sent_ = head.body == ph::Body::kNone;
  if (++requests_ >= http.http2_max_requests_per_connection && !ss_.goaway_sent()) {
    ss_.goaway(h2::kNoError);  // this one is the last; the client opens a new connection
  }
  if (head.body == ph::Body::kLength && head.content_length > http.max_body_bytes) {
    send_error(hs, 413);
    return;
  }
  ph::RequestHead req = head;
  if (!head.upgrade.empty()) {
    // RFC 8441: only WebSocket is known to go over an HTTP/1.1 upgrade.
    if (!ph::iequals(head.upgrade, "websocket")) {
      send_error(hs, 501);
      return;
    }
    hs.upgrade_ = true;
    uint8_t nonce[16];
    if (getrandom(nonce, sizeof(nonce), 0) != static_cast<ssize_t>(sizeof(nonce))) {
      send_error(hs, 503);
      return;
    }
    hs.ws_key_ = tls::base64(nonce, sizeof(nonce));
    // HTTP/2 has no key of its own (RFC 8441 §5): the one upstream is ours.
    bool version = false;
    std::erase_if(s.fields, [&](const ph::Field& f) {
      version = version || f.name == "sec-websocket-version";
      return f.name == "sec-websocket-key";
    });
    s.fields.push_back({"sec-websocket-key", hs.ws_key_});
    if (!version) s.fields.push_back({"sec-websocket-version", "13"});
    req.fields = s.fields;
  }
  const proxy::Client client = client_of(client_, peer_, hash_, dst_, handshake_us_);
  proxy::Downstream& down = hs;
  hs.ex_ = worker_.exchanges().create(worker_, listener_, down, client);
  if (!hs.ex_) {
    send_error(hs, 503);
    return;
  }
  hs.ex_->start(req, hs.head_ns_, clock::cached_ns());
  pump_request(hs);
}

void H2Session::on_request_rejected(h2::Stream& s, uint16_t status) {
  worker_.stats().http_requests.fetch_add(1, std::memory_order_relaxed);
  send_error(of(s), status);
}

void H2Session::on_request_data(h2::Stream& s, const uint8_t* data, size_t len) {
  H2Stream& hs = of(s);
  if (hs.discard_ || !hs.ex_) {
    credit(s.id, len);  // nobody wants it: the window opens again at once
    return;
  }
  proxy::Exchange& ex = *hs.ex_;
  if ((hs.method_ == ph::Method::kConnect || hs.upgrade_) && !hs.tunnel_) {
    copy_request_data(hs, data, len);  // tunnel bytes: held until the tunnel opens
    return;
  }
  const bool in_buf =
      in_ && data >= in_->data && data + len <= in_->data + in_->len && len <= UINT32_MAX;
  if (hs.req_body_.empty() && in_buf && ex.body_room()) {
    const auto off = static_cast<uint32_t>(data - in_->data);
    const IoBuf piece = loop_.share(*in_, off, static_cast<uint32_t>(len));
    credit(s.id, len);
    if (hs.tunnel_) {
      ex.tunnel_data(piece);
    } else {
      ex.request_data(piece);  // may end the exchange (413, upstream failure)
    }
    return;
  }
  copy_request_data(hs, data, len);
}

void H2Session::copy_request_data(H2Stream& hs, const uint8_t* data, size_t len) {
  while (len > 0) {
    if (!hs.fill_ || hs.fill_used_ == uring::Chunk::kSize) {
      if (hs.fill_) {
        IoBuf own;
        own.chunk = hs.fill_;
        loop_.release(own);
      }
      hs.fill_ = loop_.new_chunk();
      hs.fill_used_ = 0;
      if (!hs.fill_) {
        ss_.reset_stream(hs.st_.id, h2::kInternalError);  // out of memory: this stream only
        hs.discard_ = true;
        credit(hs.st_.id, len);
        return;
      }
    }
    const auto n =
        static_cast<uint32_t>(std::min<size_t>(len, uring::Chunk::kSize - hs.fill_used_));
    std::memcpy(hs.fill_->data + hs.fill_used_, data, n);
    hs.req_body_.push_back(loop_.chunk_slice(hs.fill_, hs.fill_used_, n));
    hs.fill_used_ += n;
    data += n;
    len -= n;
  }
}

void H2Session::on_request_end(h2::Stream& s, std::span<const ph::Field> trailers) {
  (void)trailers;  // kept in s.trailers until the stream closes
  H2Stream& hs = of(s);
  hs.req_end_ = true;
  pump_request(hs);
}

void H2Session::pump_request(H2Stream& hs) {
  if ((hs.method_ == ph::Method::kConnect || hs.upgrade_) && !hs.tunnel_) return;
  while (hs.ex_ && !hs.discard_ && !hs.req_body_.empty() && hs.ex_->body_room()) {
    const IoBuf b = hs.req_body_.take_front();
    credit(hs.st_.id, b.len);
    if (hs.tunnel_) {
      hs.ex_->tunnel_data(b);
    } else {
      hs.ex_->request_data(b);
    }
  }
  if (hs.tunnel_) {
    if (hs.ex_ && hs.req_end_ && !hs.tunnel_end_sent_ && hs.req_body_.empty() && !hs.discard_) {
      hs.tunnel_end_sent_ = true;
      hs.ex_->tunnel_eof();
    }
    return;
  }
  if (hs.ex_ && hs.req_end_ && !hs.req_end_sent_ && hs.req_body_.empty() && !hs.discard_) {
    if (hs.ex_->body_room()) {
      hs.req_end_sent_ = true;
      hs.ex_->request_end(hs.st_.trailers);
    }
  }
}

void H2Session::credit(int32_t id, size_t n) {
  if (n) credits_.push_back({id, static_cast<uint32_t>(n)});
  schedule();
}

// --- responses of the proxy's own ----------------------------------------------------------

void H2Session::respond(H2Stream& hs, uint16_t status, std::span<const Nv> fields,
                        const IoBuf& body) {
  if (hs.closed_ || hs.resp_head_sent_) {
    loop_.release(body);
    if (!hs.closed_) ss_.reset_stream(hs.st_.id, h2::kInternalError);
    schedule();
    return;
  }
  const bool end = body.len == 0;
  if (!ss_.submit_response(hs.st_.id, status, fields, end)) {
    loop_.release(body);
    ss_.reset_stream(hs.st_.id, h2::kInternalError);
    schedule();
    return;
  }
  count_status(status);
  hs.resp_head_sent_ = true;
  if (body.len) {
    hs.body_.push_back(body);
  } else {
    loop_.release(body);
  }
  hs.resp_end_ = true;
  finish_exchange(hs);
  schedule();
}

void H2Session::send_error(H2Stream& hs, uint16_t status) {
  worker_.stats().http_errors.fetch_add(1, std::memory_order_relaxed);
  if (hs.resp_head_sent_) {
    ss_.reset_stream(hs.st_.id, h2::kInternalError);
    schedule();
    return;
  }
  IoBuf body = loop_.scratch(64);
  if (!body.data) {
    ss_.reset_stream(hs.st_.id, h2::kInternalError);
    schedule();
    return;
  }
  const auto r = fmt::format_to_n(reinterpret_cast<char*>(const_cast<uint8_t*>(body.data)), 64,
                                  "{} {}\n", status, http::reason_phrase(status));
  body.len = static_cast<uint32_t>(r.size);
  if (hs.method_ == ph::Method::kHead) body.len = 0;
  char len_buf[8];
  const auto lr = std::to_chars(len_buf, len_buf + sizeof(len_buf), r.size);
  const Nv fields[] = {{"content-type", "text/plain"},
                       {"content-length", {len_buf, static_cast<size_t>(lr.ptr - len_buf)}}};
  respond(hs, status, fields, body);
}

// The exchange has answered (or gave up): what the client still sends of
// this request is dropped, and once the response is out a stream whose
// request has not ended is reset with NO_ERROR (RFC 9113 §8.1).
void H2Session::finish_exchange(H2Stream& hs) {
  if (hs.req_end_) return;
  hs.discard_ = true;
  size_t held = hs.req_body_.bytes();
  hs.req_body_.clear();
  credit(hs.st_.id, held);
  finish_rst_.push_back(hs.st_.id);
}

void H2Session::on_stream_closed(h2::Stream& s, uint32_t error_code) {
  H2Stream& hs = of(s);
  hs.closed_ = true;
  if (error_code != h2::kNoError) {
    EGW_LOG(debug, "client {}: stream {} closed: {}", peer_.to_string(), s.id,
            h2::to_string(error_code));
  }
  // What the exchange never took of its body still counts against the
  // connection window: give it back.
  if (const size_t held = hs.req_body_.bytes()) credit(s.id, held);
  free_stream(hs);
  if (ss_.open_streams() == 0) idle_since_ms_ = loop_.now_ms();
  schedule();
}

void H2Session::free_stream(H2Stream& hs) {
  if (proxy::Exchange* ex = hs.ex_) {
    hs.ex_ = nullptr;
    worker_.exchanges().destroy(ex);  // the upstream goes back to its pool when clean
  }
  buffered_ -= hs.body_.bytes();
  hs.body_.clear();
  hs.req_body_.clear();
  if (hs.paused_) --paused_;
  hs.paused_ = false;
  std::replace(to_resume_.begin(), to_resume_.end(), &hs, static_cast<H2Stream*>(nullptr));
  if (!hs.closed_) ss_.detach(hs.st_);
  h2::ServerSession::release(hs.st_);
  if (auto& spare = worker_.h2_spare_streams(); spare.size() < spare.capacity()) {
    hs.st_.reset();
    spare.push_back(std::move(hs.st_));
  }
  hs.node_.unlink();
  worker_.h2_streams().destroy(&hs);
}

// --- output --------------------------------------------------------------------------------

size_t H2Session::body_ready(h2::Stream& s, size_t max, bool* eof, bool* trailers) {
  H2Stream& hs = of(s);
  const size_t n = std::min(max, hs.body_.bytes());
  *eof = hs.resp_end_ && n == hs.body_.bytes();
  *trailers = *eof && !hs.resp_trailers_.empty();
  if (n == 0 && !*eof) hs.deferred_ = true;
  return n;
}

bool H2Session::write_data(h2::Stream& s, const uint8_t* frame_header, size_t len) {
  H2Stream& hs = of(s);
  write(frame_header, 9);
  out_.flush();
  hs.body_.take(len, [this](const IoBuf& b) { client_.send(b); });
  buffered_ -= len;
  hs.progress_ms_ = loop_.now_ms();
  if (frame_header[4] & 0x1) hs.resp_done_ = true;  // END_STREAM
  return true;
}

std::span<const ph::Field> H2Session::response_trailers(h2::Stream& s) {
  return of(s).resp_trailers_;
}

void H2Session::write(const uint8_t* data, size_t len) {
  if (!out_.write(data, len)) set_fatal();  // out of memory: the connection cannot go on
}

void H2Session::flush() {
  if (closed_ || client_.closing()) return;
  for (const auto& [id, n] : credits_)
    ss_.consume(id, n);
  credits_.clear();
  for (int round = 0; round < 64 && !client_.send_full() && ss_.want_write(); ++round) {
    ss_.send(*this, kSendBudget);
    if (!ss_.want_write() && !finish_rst_.empty()) {
      // Every frame of those responses is out: now the resets may follow.
      for (int32_t id : finish_rst_)
        ss_.reset_stream(id, h2::kNoError);
      finish_rst_.clear();
    }
  }
  out_.flush();
  if (buffered_ > 0 && loop_.buffers().free_count() < loop_.buffers().count() / 2) {
    // With the receive ring half used, what still waits for the client's
    // windows leaves it (one copy): the ring is the whole worker's, and
    // clients that read slowly must not hold it. Below that, queued bytes
    // stay zero-copy.
    streams_.for_each([this](H2Stream& hs) {
      hs.body_.replace_each([this](const IoBuf& b) { return loop_.spill(b); });
    });
  }
  // The socket's queue holds what it still has to send of the chunk: an
  // idle connection keeps none.
  out_.release();
  if (paused_ > 0 && buffered_ < kMaxConnBuffered / 2) {
    // Outside the codec's callbacks: a resumed upstream may hand over data
    // at once (which schedules another flush).
    to_resume_.clear();
    streams_.for_each([&](H2Stream& hs) {
      if (hs.paused_ && hs.body_.bytes() < kResumeBuffered) to_resume_.push_back(&hs);
    });
    for (size_t i = 0; i < to_resume_.size(); ++i) {
      H2Stream* hs = to_resume_[i];
      if (!hs) continue;  // freed meanwhile
      hs->paused_ = false;
      --paused_;
      if (hs->ex_) hs->ex_->resume_response();
    }
    to_resume_.clear();
  }
  if (closing_) return;
  const bool done = fatal_ || (ss_.goaway_sent() && ss_.open_streams() == 0) || ss_.finished();
  if (done && !ss_.want_write()) {
    // GOAWAY (or the last response) is queued: FIN after it, then linger
    // for the client's FIN so that nothing in flight is reset.
    EGW_LOG(debug, "client {}: HTTP/2 connection done ({}, {} streams open, goaway {})",
            peer_.to_string(), fatal_ ? "error" : "clean", ss_.open_streams(), ss_.goaway_sent());
    closing_ = true;
    client_.shutdown();
    loop_.timers().schedule_after(timer_, kLingerMs);
    return;
  }
  // The client is read on even while the socket toward it is full: what it
  // can send is bounded by the windows we grant (request bodies) and by the
  // glitch budget and the outbound-queue cap (everything else), and a client
  // that writes while it does not read (a blocking writer) would otherwise
  // deadlock with us.
  arm_timer();
}

void H2Session::on_sent() {
  if (closing_ && client_.send_idle()) {
    // The FIN is out; the linger timer (or the client's FIN) closes.
    return;
  }
  schedule();
}

// --- timers --------------------------------------------------------------------------------

void H2Session::arm_timer() {
  const config::HttpConfig& http = listener_.config->http;
  const uint64_t now = loop_.now_ms();
  uint64_t at = UINT64_MAX;
  if (!ss_.settings_acked())
    at = std::min(at, ss_.settings_sent_ms() + http.http2_settings_timeout_ms);
  if (ss_.in_header_block())
    at = std::min(at, ss_.header_block_started_ms() + http.request_timeout_ms);
  if (ss_.open_streams() == 0) at = std::min(at, idle_since_ms_ + http.keep_alive_timeout_ms);
  if (draining_ && !ss_.goaway_sent()) at = std::min(at, drain_ms_ + kDrainNoticeMs);
  if (stall_check_ms_ == 0) {
    // Streams with response bytes waiting are looked at once a second.
    bool waiting = false;
    streams_.for_each([&](H2Stream& hs) { waiting = waiting || !hs.body_.empty(); });
    if (waiting) stall_check_ms_ = now + 1000;
  }
  if (stall_check_ms_) at = std::min(at, stall_check_ms_);
  if (fatal_) at = std::min(at, fatal_ms_ + kLingerMs);
  if (at == UINT64_MAX) {
    loop_.timers().cancel(timer_);
    return;
  }
  loop_.timers().schedule_after(timer_, at > now ? at - now : 1);
}

void H2Session::on_timer() {
  if (closing_ || (fatal_ && loop_.now_ms() >= fatal_ms_ + kLingerMs)) {
    close();  // linger over, or a GOAWAY the client would not read
    return;
  }
  const config::HttpConfig& http = listener_.config->http;
  const uint64_t now = loop_.now_ms();
  if (!ss_.settings_acked() && now >= ss_.settings_sent_ms() + http.http2_settings_timeout_ms) {
    EGW_LOG(debug, "client {}: SETTINGS not acknowledged in time", peer_.to_string());
    ss_.goaway(h2::kSettingsTimeout);
    set_fatal();
  } else if (ss_.in_header_block() &&
             now >= ss_.header_block_started_ms() + http.request_timeout_ms) {
    worker_.stats().request_timeouts.fetch_add(1, std::memory_order_relaxed);
    ss_.goaway(h2::kProtocolError);  // a header block that never ends (slowloris)
    set_fatal();
  } else if (ss_.open_streams() == 0 && now >= idle_since_ms_ + http.keep_alive_timeout_ms) {
    ss_.goaway(h2::kNoError);  // idle
  } else if (draining_ && !ss_.goaway_sent() && now >= drain_ms_ + kDrainNoticeMs) {
    ss_.goaway(h2::kNoError);
  }
  if (stall_check_ms_ && now >= stall_check_ms_) {
    stall_check_ms_ = 0;
    check_stalls();
  }
  schedule();
}

// A response that cannot move because the client keeps its window shut
// (or reads nothing) holds an exchange, an upstream connection and up to
// kMaxStreamBuffered: past the stall timeout the stream is reset, and a
// connection whose every stream is stalled is closed (CVE-2019-9511/9517).
void H2Session::check_stalls() {
  const uint64_t now = loop_.now_ms();
  const uint64_t limit = listener_.config->http.http2_stall_timeout_ms;
  size_t open = 0, stalled = 0;
  streams_.for_each([&](H2Stream& hs) {
    if (hs.closed_) return;
    ++open;
    if (hs.body_.empty() || now < hs.progress_ms_ + limit) return;
    ++stalled;
    EGW_LOG(debug, "client {}: stream {} stalled for {} ms: reset", peer_.to_string(), hs.st_.id,
            now - hs.progress_ms_);
    hs.discard_ = true;
    ss_.reset_stream(hs.st_.id, h2::kCancel);
  });
  if (stalled > 0 && stalled == open) {
    // A client that reads nothing would not read a GOAWAY either.
    worker_.stats().http_errors.fetch_add(1, std::memory_order_relaxed);
    close();
  }
}

// --- client events and teardown ------------------------------------------------------------

void H2Session::on_eof() {
  // A client that finishes sending is done with the connection.
  close();
}

void H2Session::on_error(int err) {
  if (err == EPROTO) EGW_LOG(debug, "tls from {}: {}", peer_.to_string(), client_.error());
  close();
}

void H2Session::abort() {
  close();
}

void H2Session::drain() {
  if (draining_) return;
  draining_ = true;
  drain_ms_ = loop_.now_ms();
  if (ss_.open_streams() == 0) {
    ss_.goaway(h2::kNoError);
  } else {
    ss_.shutdown_notice();
  }
  schedule();
}

void H2Session::close() {
  if (closed_) return;
  closed_ = true;
  loop_.timers().cancel(timer_);
  // The streams and their exchanges go now (their upstreams are closed
  // unless they finished cleanly).
  while (H2Stream* hs = streams_.front())
    free_stream(*hs);
  if (!client_.closing()) client_.close();
}

void H2Session::count_status(uint16_t status) {
  const size_t cls = status / 100;
  if (cls >= 1 && cls <= 5)
    worker_.stats().http_status[cls].fetch_add(1, std::memory_order_relaxed);
  if (listener_.latency) listener_.latency->count_response(1, status);
}

}  // namespace egw::downstream

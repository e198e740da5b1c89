#include "src/upstream/h2_connection.h"

#include <algorithm>
#include <cstring>

#include "egw/log.h"
#include "src/tls/context.h"
#include "src/tls/session.h"
#include "src/upstream/endpoint.h"

namespace egw::upstream {

namespace h2 = proto::h2;
namespace ph = proto::http;
using uring::IoBuf;

namespace {

constexpr size_t kSendBudget = 256 * 1024;
constexpr uint64_t kLingerMs = 1000;
// The request head's fields (name + value + 32 each, as RFC 9113 counts).
constexpr size_t kMaxRequestHeadBytes = 64 * 1024;
constexpr size_t kMaxSpareStreams = 64;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// Collects what the forwarding policy writes into one string (names lower
// case), as offsets: the views are made once the string stops growing. The
// first Host becomes :authority; later ones are dropped.
class NvSink final : public ph::FieldSink {
 public:
  struct Entry {
    uint32_t name, name_len, value, value_len;
  };
  NvSink(std::string& mem, std::vector<Entry>& entries) : mem_(mem), entries_(entries) {
    mem_.clear();
    entries_.clear();
  }

  bool field(std::string_view name, std::string_view value) override {
    bytes_ += name.size() + value.size() + 32;
    if (bytes_ > kMaxRequestHeadBytes) return false;
    if (ph::iequals(name, "host")) {
      if (have_authority_) return true;
      have_authority_ = true;
      authority_ =
          Entry{0, 0, static_cast<uint32_t>(mem_.size()), static_cast<uint32_t>(value.size())};
      mem_.append(value);
      return true;
    }
    const auto at = static_cast<uint32_t>(mem_.size());
    for (char c : name)
      mem_.push_back(lower(c));
    mem_.append(value);
    entries_.push_back({at, static_cast<uint32_t>(name.size()),
                        at + static_cast<uint32_t>(name.size()),
                        static_cast<uint32_t>(value.size())});
    return true;
  }
  // An extra field of the codec's own (te, content-length).
  void extra(std::string_view name, std::string_view value) { field(name, value); }

  bool have_authority_ = false;
  Entry authority_{};

 private:
  std::string& mem_;
  std::vector<Entry>& entries_;
  size_t bytes_ = 0;
};

// Trailers as owned copies, names lower case (HTTP/2 wants them so).
void copy_fields(std::span<const ph::Field> in, std::string& mem, std::vector<ph::Field>& out) {
  mem.clear();
  out.clear();
  size_t total = 0;
  for (const auto& f : in)
    total += f.name.size() + f.value.size();
  mem.reserve(total);  // no reallocation below: the views stay valid
  for (const auto& f : in) {
    const size_t at = mem.size();
    for (char c : f.name)
      mem.push_back(lower(c));
    mem.append(f.value);
    out.push_back({std::string_view(mem).substr(at, f.name.size()),
                   std::string_view(mem).substr(at + f.name.size(), f.value.size())});
  }
}

}  // namespace

// --- H2Stream ------------------------------------------------------------------------------

H2Stream::H2Stream(H2Connection& conn) : conn_(conn), body_(conn.loop_), held_(conn.loop_) {
  st_.user = this;
}

H2Stream::~H2Stream() = default;

tls::Session* H2Stream::tls_session() {
  return conn_.sock_.tls_session();
}

const std::string& H2Stream::tls_error() const {
  return conn_.tls_error_;
}

bool H2Stream::reused() const {
  return reused_;
}

EndpointState& H2Stream::endpoint() const {
  return *conn_.ep_;
}

bool H2Stream::send_request(const ph::RequestHead& req, const http::RequestContext& ctx) {
  H2Connection& c = conn_;
  if (c.phase_ != H2Connection::Phase::kReady || req.method == ph::Method::kConnect ||
      !req.upgrade.empty()) {
    return false;
  }
  std::vector<NvSink::Entry> entries;
  entries.reserve(req.fields.size() + 8);
  NvSink sink(c.nv_mem_, entries);
  if (!http::forward_request_fields(req, ctx, sink)) return false;
  // te: trailers is the one value of TE HTTP/2 carries (gRPC needs it).
  for (const auto& f : req.fields) {
    if (ph::iequals(f.name, "te") && ph::list_has(f.value, "trailers")) {
      sink.extra("te", "trailers");
      break;
    }
  }
  char len_buf[24];
  if (req.body == ph::Body::kLength) {
    const int n = std::snprintf(len_buf, sizeof(len_buf), "%llu",
                                static_cast<unsigned long long>(req.content_length));
    sink.extra("content-length", std::string_view(len_buf, static_cast<size_t>(n)));
  }
  const std::string_view mem = c.nv_mem_;
  c.nv_.clear();
  for (const auto& e : entries)
    c.nv_.push_back({mem.substr(e.name, e.name_len), mem.substr(e.value, e.value_len)});
  std::string_view authority = req.authority;
  if (sink.have_authority_)
    authority = mem.substr(sink.authority_.value, sink.authority_.value_len);
  const std::string_view path = req.path.empty() ? std::string_view("/") : req.path;
  const h2::ClientSession::Nv pseudo[] = {
      {":method", req.method_text},
      {":scheme", c.sock_.is_tls() ? std::string_view("https") : std::string_view("http")},
      {":authority", authority},
      {":path", path},
  };
  const bool end = req.body == ph::Body::kNone;
  if (c.cs_.submit_request(st_, pseudo, c.nv_, end) == 0) return false;
  submitted_ = true;
  req_end_ = end;
  c.schedule();
  return true;
}

bool H2Stream::send_body(const IoBuf& b) {
  if (released_ || req_end_ || !submitted_) {
    conn_.loop_.release(b);
    return true;
  }
  body_.push_back(b);
  if (deferred_) {
    deferred_ = false;
    conn_.cs_.resume(st_.id);
  }
  conn_.schedule();
  return true;
}

bool H2Stream::end_body(std::span<const ph::Field> trailers) {
  if (released_ || req_end_ || !submitted_) return true;
  copy_fields(trailers, trailer_mem_, trailers_);
  req_end_ = true;
  if (deferred_) {
    deferred_ = false;
    conn_.cs_.resume(st_.id);
  }
  conn_.schedule();
  return true;
}

bool H2Stream::send(const IoBuf& b) {
  return send_body(b);  // no tunnels over HTTP/2 streams: never reached
}

bool H2Stream::send_full() const {
  const bool full = body_.bytes() >= kMaxQueued || conn_.sock_.send_full();
  if (full) const_cast<H2Stream*>(this)->owe_sent_ = true;
  return full;
}

void H2Stream::pause_recv() {
  paused_ = true;
}

void H2Stream::resume_recv() {
  if (!paused_) return;
  paused_ = false;
  deliver_held();
}

void H2Stream::deliver(const IoBuf& data) {
  conn_.credits_.emplace_back(st_.id, data.len);
  conn_.schedule();
  user_->on_response_data(*this, data);
}

void H2Stream::deliver_held() {
  while (!paused_ && !released_ && !held_.empty())
    deliver(held_.take_front());
  if (paused_ || released_ || !end_held_) return;
  end_held_ = false;
  if (!resp_trailers_.empty()) {
    user_->on_response_trailers(*this, resp_trailers_);
    if (released_) return;
  }
  user_->on_response_end(*this);
}

void H2Stream::release(bool clean, uint32_t, uint32_t) {
  if (released_) return;
  released_ = true;
  user_ = nullptr;
  H2Connection& c = conn_;
  if (!held_.empty()) {
    // Never delivered: the connection's window gets them back.
    c.credits_.emplace_back(st_.id, static_cast<uint32_t>(held_.bytes()));
    held_.clear();
    c.schedule();
  }
  if (!submitted_ || closed_) {
    c.free_stream(*this);
    return;
  }
  if (!clean || !req_end_ || !resp_end_) {
    // Abandoned (the client went away, a timeout, an error): the endpoint
    // stops working on it.
    body_.clear();
    c.cs_.reset_stream(st_.id, h2::kCancel);
    c.schedule();
  }
  // Freed when the codec closes it.
}

// --- H2Connection ----------------------------------------------------------------------------

H2Connection::H2Connection(H2Pool& pool, uint64_t id)
    : pool_(&pool),
      loop_(pool.loop_),
      ep_(pool.ep_),
      opt_(pool.opt_),
      sock_(loop_, *this),
      cs_(*this, h2::ClientSettings{pool.opt_.initial_window, pool.opt_.connection_window}),
      out_(loop_, sock_),
      id_(id) {
  timer_.set_callback([this] { on_timer(); });
  created_ms_ = last_input_ms_ = loop_.now_ms();
}

H2Connection::~H2Connection() {
  loop_.timers().cancel(timer_);
  flush_node_unlink();
  while (H2Stream* s = streams_.pop_front()) {
    if (s->submitted_ && !s->closed_) {
      cs_.detach(s->st_);
    } else {
      h2::ClientSession::release(s->st_);
    }
    delete s;
  }
}

Status H2Connection::connect(uint32_t timeout_ms, tls::ClientContext* tls) {
  std::unique_ptr<tls::Session> session;
  if (tls) {
    const tls::SavedSession* resume =
        pool_ && pool_->tls_resume ? pool_->tls_resume.get() : nullptr;
    session = tls::Session::client(*tls, {}, resume);
    if (!session) return egw::fail(ENOMEM, "cannot create a TLS session");
  }
  return sock_.connect(ep_->address(), timeout_ms, std::move(session));
}

bool H2Connection::accepts(const H2Options& opt, bool hard) const {
  if (retired_ ||
      (phase_ != Phase::kConnecting && phase_ != Phase::kReady && phase_ != Phase::kChecking)) {
    return false;
  }
  if (phase_ != Phase::kConnecting && !cs_.accepts_streams()) return false;
  if (opt.max_requests && streams_opened_ >= opt.max_requests) return false;
  if (opt.max_age_ms && loop_.now_ms() - created_ms_ >= opt.max_age_ms) return false;
  if (hard) return true;
  uint32_t limit = opt.max_streams;
  if (phase_ != Phase::kConnecting) limit = std::min(limit, cs_.peer_max_streams());
  return streams_count_ < limit;
}

H2Stream* H2Connection::open_stream(StreamUser* user) {
  H2Stream* s = nullptr;
  if (!spare_.empty()) {
    s = spare_.back().release();
    spare_.pop_back();
  } else {
    s = new (std::nothrow) H2Stream(*this);
    if (!s) return nullptr;
  }
  s->set_user(user);
  s->reused_ = completed_ > 0;
  streams_.push_back(*s);
  ++streams_count_;
  ++streams_opened_;
  if (phase_ == Phase::kReady) loop_.timers().cancel(timer_);  // the idle timeout
  if (opt_.max_requests && streams_opened_ >= opt_.max_requests) retired_ = true;
  if (phase_ == Phase::kReady && opt_.ping_idle_ms &&
      loop_.now_ms() - last_input_ms_ >= opt_.ping_idle_ms) {
    // Quiet for a while: make sure the endpoint is still there first.
    phase_ = Phase::kChecking;
    check_started_ms_ = loop_.now_ms();
    cs_.ping();
    schedule();
    loop_.timers().schedule_after(timer_, opt_.connect_timeout_ms);
  }
  s->waiting_ = phase_ != Phase::kReady;
  return s;
}

void H2Connection::free_stream(H2Stream& s) {
  if (s.submitted_ && !s.closed_) {
    cs_.detach(s.st_);
  } else {
    h2::ClientSession::release(s.st_);
  }
  s.node_.unlink();
  --streams_count_;
  s.body_.clear();
  s.held_.clear();
  s.trailers_.clear();
  s.resp_trailers_.clear();
  s.st_.reset();
  s.user_ = nullptr;
  s.waiting_ = true;
  s.submitted_ = s.req_end_ = s.deferred_ = s.paused_ = false;
  s.head_seen_ = s.resp_end_ = s.end_held_ = s.closed_ = s.released_ = s.owe_sent_ = false;
  s.reused_ = false;
  if (spare_.size() < kMaxSpareStreams) {
    spare_.emplace_back(&s);
  } else {
    delete &s;
  }
  if (streams_count_ == 0) {
    if (retired_ || cs_.goaway_received()) {
      shutdown();
    } else if (phase_ == Phase::kReady) {
      arm_idle();
    }
  }
}

void H2Connection::retire() {
  retired_ = true;
  if (streams_count_ == 0) shutdown();
}

void H2Connection::arm_idle() {
  loop_.timers().schedule_after(timer_, opt_.idle_timeout_ms);
}

void H2Connection::on_timer() {
  switch (phase_) {
    case Phase::kChecking:
      EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: no answer to PING on an idle HTTP/2 connection",
                          ep_->label());
      fail(ETIMEDOUT);
      return;
    case Phase::kReady:
      if (streams_count_ == 0) shutdown();
      return;
    case Phase::kClosing:
      sock_.close();  // the endpoint did not close after our GOAWAY
      return;
    default:
      return;
  }
}

// A graceful end: GOAWAY, then FIN once it is out, then close.
void H2Connection::shutdown() {
  if (phase_ == Phase::kClosing || phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kConnecting) {
    close();
    return;
  }
  retired_ = true;
  phase_ = Phase::kClosing;
  cs_.goaway(h2::kNoError);
  schedule();
  loop_.timers().schedule_after(timer_, kLingerMs);
}

void H2Connection::close() {
  if (phase_ == Phase::kClosed) return;
  fail(ECONNRESET);
}

void H2Connection::save_tls() {
  tls::Session* t = sock_.tls_session();
  if (!t || tls_saved_ || !pool_) return;
  tls_saved_ = true;
  if (auto s = t->save()) pool_->tls_resume = std::move(s);
}

template <class F>
void H2Connection::for_marked(F&& f) {
  for (;;) {
    H2Stream* next = nullptr;
    streams_.for_each([&](H2Stream& s) {
      if (!next && s.notify_) next = &s;
    });
    if (!next) return;
    next->notify_ = false;
    f(*next);
  }
}

// Every stream hears `err`: those waiting for the connection through
// on_upstream_connected(), the others as a failed stream (a complete
// response is still delivered, from what is held).
void H2Connection::fail(int err) {
  phase_ = Phase::kClosed;
  retired_ = true;
  loop_.timers().cancel(timer_);
  streams_.for_each([](H2Stream& s) { s.notify_ = !s.released_; });
  for_marked([&](H2Stream& s) {
    const bool waiting = s.waiting_;
    s.waiting_ = false;
    if (s.submitted_ && !s.closed_) cs_.detach(s.st_);
    s.closed_ = true;
    if (!s.user_) return;
    if (waiting) {
      s.user_->on_upstream_connected(s, err ? err : ECONNRESET);
    } else if (!s.resp_end_) {
      s.held_.clear();
      s.user_->on_upstream_error(s, s.head_seen_ ? HttpError::kTruncated : HttpError::kReset, err);
    }
  });
  // What nobody holds any more goes now; the rest when its user lets go.
  streams_.for_each([](H2Stream& s) { s.notify_ = s.released_; });
  for_marked([&](H2Stream& s) { free_stream(s); });
  if (!sock_.closing()) sock_.abort();
}

void H2Connection::wake_waiting(int err) {
  streams_.for_each([](H2Stream& s) { s.notify_ = s.waiting_ && s.user_; });
  for_marked([&](H2Stream& s) {
    if (!s.waiting_) return;
    s.waiting_ = false;
    if (s.user_) s.user_->on_upstream_connected(s, err);
  });
}

// --- the socket --------------------------------------------------------------------------------

void H2Connection::on_ready(net::ByteStream& s) {
  if (phase_ != Phase::kConnecting) return;
  if (s.is_tls() && s.alpn() != "h2") {
    tls_error_ = s.alpn().empty()
                     ? "the endpoint did not agree to h2 in ALPN"
                     : "the endpoint chose ALPN '" + std::string(s.alpn()) + "', not h2";
    fail(EPROTO);
    return;
  }
  if (!cs_.start()) {
    fail(ENOMEM);
    return;
  }
  phase_ = Phase::kReady;
  last_input_ms_ = loop_.now_ms();
  schedule();
  wake_waiting(0);
  if (streams_count_ == 0 && phase_ == Phase::kReady) arm_idle();
}

void H2Connection::on_data(net::ByteStream&, const IoBuf& buf) {
  if (phase_ == Phase::kClosed || phase_ == Phase::kConnecting) {
    loop_.release(buf);
    return;
  }
  last_input_ms_ = loop_.now_ms();
  in_ = &buf;
  const auto st = cs_.recv(buf.data, buf.len);
  in_ = nullptr;
  loop_.release(buf);
  if (st == h2::ClientSession::Status::kClosed) {
    EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: HTTP/2 connection error: {}", ep_->label(),
                        cs_.error());
    flush();  // our GOAWAY, where one applies
    fail(EPROTO);
    return;
  }
  schedule();
}

void H2Connection::on_eof(net::ByteStream&) {
  if (phase_ == Phase::kClosing || streams_count_ == 0) {
    phase_ = Phase::kClosed;
    sock_.close();
    return;
  }
  fail(ECONNRESET);
}

void H2Connection::on_error(net::ByteStream& s, int err) {
  if (phase_ == Phase::kClosed) return;
  if (err == EPROTO) tls_error_ = std::string(s.error());
  fail(err);
}

void H2Connection::on_sent(net::ByteStream&) {
  schedule();
}

void H2Connection::on_released(net::ByteStream&) {
  phase_ = Phase::kClosed;
  if (pool_) {
    pool_->closed(*this);  // deletes this
  } else {
    delete this;
  }
}

// --- the codec -----------------------------------------------------------------------------------

void H2Connection::on_response_head(h2::ClientStream& cs, const ph::ResponseHead& head, bool end) {
  H2Stream& s = of(cs);
  if (s.released_) return;
  if (!head.informational()) s.head_seen_ = true;
  if (end) s.resp_end_ = true;
  s.user_->on_response_head(s, head);
  if (end && !s.released_) s.user_->on_response_end(s);
}

void H2Connection::on_response_data(h2::ClientStream& cs, const uint8_t* data, size_t len) {
  H2Stream& s = of(cs);
  if (s.released_) {
    credits_.emplace_back(cs.id, static_cast<uint32_t>(len));
    return;
  }
  IoBuf piece;
  if (in_ && data >= in_->data && data + len <= in_->data + in_->len) {
    piece = loop_.share(*in_, static_cast<uint32_t>(data - in_->data), static_cast<uint32_t>(len));
  } else {
    // Not from the receive buffer (never, with nghttp2's mem_recv): a copy.
    uring::Chunk* c = len <= uring::Chunk::kSize ? loop_.new_chunk() : nullptr;
    if (!c) {
      cs_.reset_stream(cs.id, h2::kInternalError);
      credits_.emplace_back(cs.id, static_cast<uint32_t>(len));
      return;
    }
    std::memcpy(c->data, data, len);
    piece = loop_.chunk_slice(c, 0, static_cast<uint32_t>(len));
    IoBuf own;
    own.chunk = c;
    loop_.release(own);
  }
  if (s.paused_ || !s.held_.empty()) {
    s.held_.push_back(loop_.spill(piece));  // waits: out of the shared receive ring
    return;
  }
  s.deliver(piece);
}

void H2Connection::on_response_end(h2::ClientStream& cs, std::span<const ph::Field> trailers) {
  H2Stream& s = of(cs);
  s.resp_end_ = true;
  if (s.released_) return;
  if (s.paused_ || !s.held_.empty()) {
    copy_fields(trailers, s.resp_trailer_mem_, s.resp_trailers_);
    s.end_held_ = true;
    return;
  }
  if (!trailers.empty()) {
    s.user_->on_response_trailers(s, trailers);
    if (s.released_) return;
  }
  s.user_->on_response_end(s);
}

void H2Connection::on_stream_closed(h2::ClientStream& cs, uint32_t error_code) {
  H2Stream& s = of(cs);
  s.closed_ = true;
  if (error_code == h2::kNoError && s.resp_end_ && ++completed_ == 1) {
    save_tls();  // after a whole exchange: TLS 1.3 tickets come after the handshake
  }
  if (s.released_) {
    free_stream(s);
    return;
  }
  if (error_code == h2::kNoError && s.resp_end_) return;  // delivered, or held
  HttpError e = HttpError::kTruncated;
  if (!s.head_seen_) {
    if (error_code == h2::kRefusedStream) {
      e = HttpError::kRefused;
    } else if (error_code == h2::kProtocolError || error_code == h2::kInternalError) {
      e = HttpError::kBadResponse;  // malformed (we reset it), or the endpoint's own failure
    } else {
      e = HttpError::kReset;
    }
  }
  EGW_LOG(debug, "endpoint {}: stream {} closed: {}", ep_->label(), cs.id,
          h2::to_string(error_code));
  s.held_.clear();
  s.user_->on_upstream_error(s, e, 0);
}

size_t H2Connection::body_ready(h2::ClientStream& cs, size_t max, bool* eof, bool* trailers) {
  H2Stream& s = of(cs);
  if (s.released_ && !s.req_end_) return 0;  // being reset
  const size_t n = std::min(max, s.body_.bytes());
  *eof = s.req_end_ && n == s.body_.bytes();
  *trailers = *eof && !s.trailers_.empty();
  if (n == 0 && !*eof) s.deferred_ = true;
  return n;
}

void H2Connection::write_data(h2::ClientStream& cs, const uint8_t* frame_header, size_t len) {
  H2Stream& s = of(cs);
  write(frame_header, 9);
  out_.flush();
  s.body_.take(len, [this](const IoBuf& b) { sock_.send(b); });
}

std::span<const ph::Field> H2Connection::request_trailers(h2::ClientStream& cs) {
  return of(cs).trailers_;
}

void H2Connection::on_goaway(int32_t last_stream_id, uint32_t error_code) {
  EGW_LOG(debug, "endpoint {}: GOAWAY (last stream {}, {})", ep_->label(), last_stream_id,
          h2::to_string(error_code));
  retired_ = true;  // the streams above last_stream_id close as refused
}

void H2Connection::on_ping_ack() {
  if (phase_ != Phase::kChecking) return;
  phase_ = Phase::kReady;
  loop_.timers().cancel(timer_);
  wake_waiting(0);
}

// --- output ------------------------------------------------------------------------------------

void H2Connection::write(const uint8_t* data, size_t len) {
  if (!out_.write(data, len)) out_of_memory_ = true;  // flush() fails the connection
}

void H2Connection::flush() {
  if (phase_ == Phase::kConnecting || phase_ == Phase::kClosed || sock_.closing()) return;
  for (const auto& [id, n] : credits_)
    cs_.consume(id, n);
  credits_.clear();
  for (int round = 0; round < 64 && !sock_.send_full() && cs_.want_write(); ++round)
    cs_.send(*this, kSendBudget);
  out_.release();
  if (out_of_memory_ || (!cs_.error().empty() && !cs_.want_read())) {
    fail(EPROTO);
    return;
  }
  if (phase_ == Phase::kClosing) {
    if (!cs_.want_write() && !sock_.write_shut()) sock_.shutdown();
    return;
  }
  // Streams whose queue was full hear that it has room (outside the codec).
  streams_.for_each([](H2Stream& s) { s.notify_ = s.owe_sent_ && s.user_; });
  for_marked([](H2Stream& s) {
    if (s.released_ || !s.user_ || s.send_full()) return;
    s.owe_sent_ = false;
    s.user_->on_upstream_sent(s);
  });
}

// --- H2Pool
// ----------------------------------------------------------------------------------------

H2Pool::H2Pool(uring::EventLoop& loop, stats::WorkerStats& stats, std::shared_ptr<EndpointState> ep)
    : loop_(loop), stats_(stats), ep_(std::move(ep)) {}

H2Pool::~H2Pool() {
  // The connections outlive the pool until their sockets are released.
  while (H2Connection* c = conns_.pop_front()) {
    c->pool_ = nullptr;
    c->close();
  }
}

H2Stream* H2Pool::open_stream(StreamUser* user, const H2Options& opt, tls::ClientContext* tls,
                              bool* fresh) {
  opt_ = opt;
  H2Connection* best = nullptr;
  size_t live = 0;
  conns_.for_each([&](H2Connection& c) {
    if (c.retired_ || c.phase_ == H2Connection::Phase::kClosing ||
        c.phase_ == H2Connection::Phase::kClosed) {
      return;
    }
    if (opt.max_age_ms && loop_.now_ms() - c.created_ms_ >= opt.max_age_ms) {
      c.retire();  // closed once its last stream is done
      return;
    }
    ++live;
    if (c.accepts(opt, false) && (!best || c.load() < best->load())) best = &c;
  });
  if (!best && live >= opt.max_connections) {
    conns_.for_each([&](H2Connection& c) {
      if (c.accepts(opt, true) && (!best || c.load() < best->load())) best = &c;
    });
  }
  if (!best) {
    auto* c = new (std::nothrow) H2Connection(*this, next_id_++);
    if (!c) return nullptr;
    conns_.push_back(*c);
    ++count_;
    stats_.upstream_connects.fetch_add(1, std::memory_order_relaxed);
    if (auto st = c->connect(opt.connect_timeout_ms, tls); !st) {
      EGW_LOG_RATELIMITED(error, 1000, "cannot connect to {}: {}", ep_->label(),
                          st.error().message());
      c->close();
      return nullptr;
    }
    best = c;
  } else {
    stats_.upstream_reused.fetch_add(1, std::memory_order_relaxed);
  }
  H2Stream* s = best->open_stream(user);
  if (s) *fresh = s->waiting();
  return s;
}

void H2Pool::closed(H2Connection& c) {
  IntrusiveList<H2Connection, &H2Connection::pool_node_>::erase(c);
  --count_;
  delete &c;
}

}  // namespace egw::upstream

#include "src/load/h2_link.h"

#include <algorithm>

#include "egw/clock.h"
#include "src/load/client.h"

namespace egw::load {
namespace {

namespace h2 = proto::h2;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

constexpr size_t kSendBudget = 256 * 1024;

}  // namespace

// --- H2Lane ----------------------------------------------------------------------------------

H2Lane::H2Lane(H2Link& link) : link_(link) {
  st_.user = this;
  timer_.set_callback([this] { on_timer(); });
}

H2Lane::~H2Lane() {
  link_.client_.loop().timers().cancel(timer_);
}

void H2Lane::preconnect() {
  preconnect_ = true;
  if (link_.state_ == H2Link::State::kReady) {
    preconnect_ = false;
    make_available(false);
    return;
  }
  if (link_.state_ == H2Link::State::kDisconnected) link_.connect();
}

void H2Lane::start(uint64_t intended_ns, bool measured) {
  EGW_ASSERT(!has_request_ && !in_stream_ && !backing_off_);
  has_request_ = true;
  intended_ns_ = intended_ns;
  measured_ = measured;
  preconnect_ = false;
  link_.request(*this, false);
}

void H2Lane::finish(uint64_t now) {
  link_.client_.loop().timers().cancel(timer_);
  Client& c = link_.client_;
  c.keep_tls_session(link_.sock_, link_.tls_saved_);
  if (measured_) {
    c.stats().record_response(intended_ns_, sent_ns_, first_byte_ns_, now, response_bytes_,
                              status_);
  }
  has_request_ = false;
  c.request_ended();
}

void H2Lane::fail(ErrorKind kind) {
  link_.client_.loop().timers().cancel(timer_);
  waiting_ = false;
  if (!has_request_) return;
  if (measured_) link_.client_.stats().count_error(kind);
  has_request_ = false;
  link_.client_.request_ended();
}

void H2Lane::make_available(bool connect_failed) {
  idle_since_ns_ = clock::now_ns();
  link_.client_.on_available(*this, connect_failed);
}

void H2Lane::abandon(ErrorKind kind) {
  if (backing_off_) {
    link_.client_.loop().timers().cancel(timer_);
    backing_off_ = false;
  }
  if (!has_request_) return;
  const bool open = in_stream_;
  fail(kind);
  if (open && link_.cs_) {
    link_.cs_->reset_stream(st_.id, h2::kCancel);
    link_.schedule();
  } else {
    make_available(false);
  }
}

void H2Lane::backoff(uint64_t ms) {
  backing_off_ = true;
  link_.client_.loop().timers().schedule_after(timer_, ms);
}

void H2Lane::close() {
  EGW_ASSERT(!has_request_);
  if (backing_off_) {
    link_.client_.loop().timers().cancel(timer_);
    backing_off_ = false;
  }
  // The link closes with its last lane.
  bool all = true;
  for (const auto& l : link_.lanes_)
    all = all && !l->has_request_ && !l->backing_off_;
  if (all) link_.drop_socket(false);
}

void H2Lane::on_timer() {
  if (backing_off_) {
    backing_off_ = false;
    make_available(false);
    return;
  }
  if (!has_request_) return;
  // No whole response within --timeout (or no connection within
  // --connect-timeout): the stream is reset; the lane comes back once the
  // codec has closed it.
  const bool open = in_stream_;
  fail(waiting_ ? ErrorKind::kConnectTimeout : ErrorKind::kTimeout);
  if (open && link_.cs_) {
    link_.cs_->reset_stream(st_.id, h2::kCancel);
    link_.schedule();
  } else {
    make_available(false);
  }
}

// --- H2Link ----------------------------------------------------------------------------------

H2Link::H2Link(Client& client, unsigned streams) : client_(client) {
  lanes_.reserve(streams);
  for (unsigned i = 0; i < streams; ++i)
    lanes_.push_back(std::make_unique<H2Lane>(*this));
  timer_.set_callback([this] { lost(ErrorKind::kConnectTimeout, ETIMEDOUT); });
  // The request's fields, once: names lower case; Host becomes :authority.
  const Options& o = client_.options();
  std::vector<std::pair<size_t, size_t>> at;  // offsets of name, value
  for (const auto& [name, value] : o.headers) {
    std::string n(name);
    std::transform(n.begin(), n.end(), n.begin(), lower);
    if (n == "host" || n == "connection" || n == "keep-alive" || n == "transfer-encoding" ||
        n == "upgrade" || n == "proxy-connection") {
      continue;
    }
    at.emplace_back(field_mem_.size(), n.size());
    field_mem_ += n;
    at.emplace_back(field_mem_.size(), value.size());
    field_mem_ += value;
  }
  const bool body_method = o.method == "POST" || o.method == "PUT" || o.method == "PATCH";
  if (o.body_size > 0 || body_method) {
    const std::string len = std::to_string(o.body_size);
    at.emplace_back(field_mem_.size(), 14);
    field_mem_ += "content-length";
    at.emplace_back(field_mem_.size(), len.size());
    field_mem_ += len;
  }
  const std::string_view mem = field_mem_;
  for (size_t i = 0; i + 1 < at.size(); i += 2) {
    fields_.push_back(
        {mem.substr(at[i].first, at[i].second), mem.substr(at[i + 1].first, at[i + 1].second)});
  }
}

H2Link::~H2Link() {
  client_.loop().timers().cancel(timer_);
  flush_node_unlink();
  if (cs_) {
    for (auto& l : lanes_) {
      if (l->in_stream_) cs_->detach(l->st_);
    }
  }
  for (auto& l : lanes_)
    h2::ClientSession::release(l->st_);
  EGW_ASSERT(sock_ == nullptr);
}

void H2Link::schedule() {
  client_.loop().schedule_flush(*this);
}

bool H2Link::idle() const {
  for (const auto& l : lanes_) {
    if (l->in_stream_) return false;
  }
  return true;
}

void H2Link::connect() {
  EGW_ASSERT(sock_ == nullptr);
  net::ByteStreamHandler& handler = *this;
  sock_ = client_.sockets().create(client_.loop(), handler);
  state_ = State::kConnecting;
  connect_start_ns_ = clock::now_ns();
  measured_connect_ = false;
  for (const auto& l : lanes_)
    measured_connect_ = measured_connect_ || l->preconnect_ || (l->has_request_ && l->measured_);
  std::unique_ptr<tls::Session> session;
  if (tls::ClientContext* ctx = client_.plan().tls) {
    const tls::SavedSession* resume =
        client_.options().tls.resume ? client_.tls_resume().get() : nullptr;
    session = tls::Session::client(*ctx, {}, resume);
    if (!session) {
      lost(ErrorKind::kConnectOther, ENOMEM);
      return;
    }
    tls_saved_ = false;
  }
  auto st = sock_->connect(client_.options().target.address,
                           static_cast<uint32_t>(client_.options().connect_timeout_ms),
                           std::move(session));
  if (!st) lost(connect_error_kind(st.error().code ? st.error().code : EIO), st.error().code);
}

void H2Link::request(H2Lane& lane, bool again) {
  if (!lane.has_request_) return;  // timed out or abandoned meanwhile
  lane.resent_ = again;
  if (state_ == State::kReady && cs_ && cs_->accepts_streams()) {
    submit(lane);
    return;
  }
  lane.waiting_ = true;
  if (!again) {
    client_.loop().timers().schedule_after(
        lane.timer_, client_.options().connect_timeout_ms + client_.options().timeout_ms);
  }
  if (state_ == State::kDisconnected) {
    connect();
  } else if (state_ == State::kReady && idle()) {
    // After a GOAWAY: nothing is left on the old connection; a new one.
    drop_socket(false);
    connect();
  }
}

void H2Link::submit(H2Lane& lane) {
  const Options& o = client_.options();
  lane.waiting_ = false;
  lane.st_.reset();
  lane.status_ = 0;
  lane.first_byte_ns_ = 0;
  lane.response_bytes_ = 0;
  lane.body_sent_ = 0;
  const h2::ClientSession::Nv pseudo[] = {
      {":method", o.method},
      {":scheme", o.target.tls ? std::string_view("https") : std::string_view("http")},
      {":authority", o.target.authority},
      {":path", o.target.path},
  };
  const bool end = o.body_size == 0;
  if (!lane.resent_) lane.sent_ns_ = clock::now_ns();
  if (cs_->submit_request(lane.st_, pseudo, fields_, end) == 0) {
    lane.fail(ErrorKind::kReset);
    lane.make_available(false);
    return;
  }
  lane.in_stream_ = true;
  if (lane.resent_) {
    schedule();
    return;  // timed from its first send
  }
  client_.loop().timers().schedule_after(lane.timer_, o.timeout_ms);
  if (lane.measured_) {
    Stats& st = client_.stats();
    ++st.sent;
    st.wait.record(since_us(lane.intended_ns_, lane.sent_ns_));
  }
  schedule();
}

void H2Link::lost(ErrorKind kind, int err) {
  client_.loop().timers().cancel(timer_);
  const bool was_ready = state_ == State::kReady;
  if (cs_) {
    for (auto& l : lanes_) {
      if (l->in_stream_) cs_->detach(l->st_);
    }
  }
  drop_socket(true);
  bool counted = false, reconnect = false;
  for (auto& l : lanes_) {
    H2Lane& lane = *l;
    const bool in_stream = lane.in_stream_;
    lane.in_stream_ = false;
    if (lane.preconnect_) {
      lane.preconnect_ = false;
      if (!counted) {  // one connection failed at set-up, whatever its lanes
        counted = true;
        ++client_.stats().setup_failures;
        client_.stats().setup_errno = err;
      }
      lane.make_available(false);
      continue;
    }
    if (!in_stream && !lane.has_request_) continue;
    if (!in_stream && was_ready) {
      // Not on the wire (waiting for a stream after a GOAWAY, or a refused
      // one about to go again): it goes on the next connection.
      reconnect = reconnect || lane.waiting_;
      continue;
    }
    const bool connect_error = lane.waiting_;
    lane.fail(kind);
    lane.make_available(connect_error &&
                        (kind == ErrorKind::kConnectRefused || kind == ErrorKind::kConnectTimeout ||
                         kind == ErrorKind::kConnectOther));
  }
  if (reconnect) connect();
}

void H2Link::drop_socket(bool reset) {
  flush_node_unlink();
  cs_.reset();
  out_.reset();
  credits_.clear();
  state_ = State::kDisconnected;
  if (!sock_) return;
  net::ByteStream* s = sock_;
  sock_ = nullptr;
  if (reset) {
    s->abort();
  } else {
    s->close();
  }
}

void H2Link::on_connected(net::ByteStream& s) {
  if (&s != sock_) return;
  const uint64_t now = clock::cached_ns();
  if (measured_connect_) client_.stats().connect.record(since_us(connect_start_ns_, now));
  if (s.is_tls()) {
    handshake_start_ns_ = now;
    client_.loop().timers().schedule_after(timer_, client_.options().connect_timeout_ms);
  }
}

void H2Link::on_ready(net::ByteStream& s) {
  if (&s != sock_) return;
  client_.loop().timers().cancel(timer_);
  if (s.is_tls()) {
    if (s.alpn() != "h2") {
      lost(ErrorKind::kTls, EPROTO);  // the server did not agree to HTTP/2
      return;
    }
    Stats& st = client_.stats();
    if (measured_connect_) {
      st.tls_handshake.record(since_us(handshake_start_ns_, clock::cached_ns()));
      if (sock_->tls_session()->resumed()) ++st.tls_resumed;
    }
  }
  h2::ClientHandler& handler = *this;
  cs_ = std::make_unique<h2::ClientSession>(handler, h2::ClientSettings{});
  out_ = std::make_unique<net::ChunkWriter>(client_.loop(), *sock_);
  if (!cs_->start()) {
    lost(ErrorKind::kConnectOther, ENOMEM);
    return;
  }
  state_ = State::kReady;
  schedule();
  for (auto& l : lanes_) {
    H2Lane& lane = *l;
    if (lane.waiting_) {
      submit(lane);
    } else if (lane.preconnect_) {
      lane.preconnect_ = false;
      lane.make_available(false);
    }
  }
}

void H2Link::on_data(net::ByteStream& s, const uring::IoBuf& buf) {
  if (&s != sock_ || !cs_) {
    uring::StreamSocket::release(buf);
    return;
  }
  const auto st = cs_->recv(buf.data, buf.len);
  uring::StreamSocket::release(buf);
  if (st == h2::ClientSession::Status::kClosed) {
    flush();
    lost(ErrorKind::kBadResponse, EPROTO);
    return;
  }
  schedule();
}

void H2Link::on_eof(net::ByteStream& s) {
  if (&s != sock_) return;
  lost(ErrorKind::kClosed, ECONNRESET);
}

void H2Link::on_error(net::ByteStream& s, int err) {
  if (&s != sock_) return;
  if (state_ == State::kConnecting) {
    if (!s.connected()) {
      lost(connect_error_kind(err), err);
    } else {
      if (client_.options().tls.resume) client_.tls_resume().reset();
      lost(ErrorKind::kTls, EPROTO);
    }
    return;
  }
  lost(err == EPROTO ? ErrorKind::kTls : ErrorKind::kReset, err);
}

void H2Link::on_released(net::ByteStream& s) {
  EGW_ASSERT(&s != sock_);
  client_.sockets().destroy(&s);
}

void H2Link::on_response_head(h2::ClientStream& cs, const proto::http::ResponseHead& head, bool) {
  H2Lane& lane = of(cs);
  if (lane.first_byte_ns_ == 0) lane.first_byte_ns_ = clock::cached_ns();
  if (!head.informational()) lane.status_ = head.status;
}

void H2Link::on_response_data(h2::ClientStream& cs, const uint8_t*, size_t len) {
  H2Lane& lane = of(cs);
  lane.response_bytes_ += len;
  credits_.emplace_back(cs.id, static_cast<uint32_t>(len));
}

void H2Link::on_response_end(h2::ClientStream& cs, std::span<const proto::http::Field>) {
  H2Lane& lane = of(cs);
  if (lane.has_request_) lane.finish(clock::cached_ns());
}

void H2Link::on_stream_closed(h2::ClientStream& cs, uint32_t error_code) {
  H2Lane& lane = of(cs);
  lane.in_stream_ = false;
  h2::ClientSession::release(cs);
  if (lane.has_request_ && error_code == h2::kRefusedStream) {
    // Refused unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream):
    // sent again, as browsers do, on this connection or the next one; its
    // latency still runs from the intended time, and its timeout from the
    // first send.
    H2Lane* l = &lane;
    client_.loop().defer([l] { l->link_.request(*l, /*again=*/true); });
    return;
  }
  if (lane.has_request_) {
    // Reset (by the server, or for a malformed response) before its end.
    lane.fail(error_code == h2::kProtocolError || error_code == h2::kInternalError
                  ? ErrorKind::kBadResponse
              : error_code == h2::kRefusedStream ? ErrorKind::kClosed
                                                 : ErrorKind::kReset);
  }
  // Outside the codec's call: the Client may hand this lane its next
  // request at once (and a connection after GOAWAY may be replaced).
  H2Lane* l = &lane;
  client_.loop().defer([l] {
    l->make_available(false);
    l->link_.maybe_reconnect();
  });
}

size_t H2Link::body_ready(h2::ClientStream& cs, size_t max, bool* eof, bool*) {
  H2Lane& lane = of(cs);
  const size_t left = client_.options().body_size - lane.body_sent_;
  const size_t n = std::min(max, left);
  *eof = n == left;
  return n;
}

void H2Link::write_data(h2::ClientStream& cs, const uint8_t* frame_header, size_t len) {
  H2Lane& lane = of(cs);
  write(frame_header, 9);
  out_->flush();
  // The body is the request template's tail: every stream sends the same
  // bytes, without a copy.
  const std::string_view req = client_.plan().request;
  const std::string_view body = req.substr(req.size() - client_.options().body_size);
  const uring::IoBuf b{reinterpret_cast<const uint8_t*>(body.data() + lane.body_sent_),
                       static_cast<uint32_t>(len), uring::BufferRing::kNoBuffer, nullptr};
  sock_->send(b);
  lane.body_sent_ += len;
}

void H2Link::on_goaway(int32_t, uint32_t) {
  // No new streams here; the next request after the last one closed
  // reconnects (request()).
}

void H2Link::write(const uint8_t* data, size_t len) {
  if (out_ && !out_->write(data, len)) out_of_memory_ = true;  // flush() gives up
}

void H2Link::flush() {
  if (!cs_ || !sock_ || sock_->closing()) return;
  for (const auto& [id, n] : credits_)
    cs_->consume(id, n);
  credits_.clear();
  for (int round = 0; round < 64 && !sock_->send_full() && cs_->want_write(); ++round)
    cs_->send(*this, kSendBudget);
  if (out_) out_->release();
  if (out_of_memory_) {
    out_of_memory_ = false;
    lost(ErrorKind::kReset, ENOMEM);
  }
}

void H2Link::maybe_reconnect() {
  // After a GOAWAY, once the old connection carries nothing: a new one for
  // the lanes that wait.
  if (state_ != State::kReady || !cs_ || cs_->accepts_streams() || !idle()) return;
  bool waiting = false;
  for (const auto& l : lanes_)
    waiting = waiting || l->waiting_;
  drop_socket(false);
  if (waiting) connect();
}

}  // namespace egw::load

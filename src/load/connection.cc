#include "src/load/connection.h"

#include <algorithm>
#include <cstring>

#include "egw/clock.h"
#include "src/load/client.h"

namespace egw::load {
namespace {

constexpr proto::h1::Limits kLimits{8192, 32768, 100};

}  // namespace

Connection::Connection(Client& client)
    : client_(client), parser_(kLimits, std::span<proto::h1::Header>(headers_)) {
  timer_.set_callback([this] { on_timer(); });
}

Connection::~Connection() {
  EGW_ASSERT(sock_ == nullptr);
}

void Connection::preconnect() {
  has_request_ = false;
  setup_connect_ = true;
  connect();
}

void Connection::start(uint64_t intended_ns, bool measured) {
  EGW_ASSERT(!has_request_ && !backing_off_);
  has_request_ = true;
  intended_ns_ = intended_ns;
  measured_ = measured;
  setup_connect_ = false;
  if (sock_ && state_ == State::kReady) {
    send_request();
  } else if (!sock_) {
    connect();
  }
  // else kConnecting from a set-up connect: the request goes out on connect.
}

void Connection::connect() {
  EGW_ASSERT(sock_ == nullptr);
  sock_ = client_.sockets().create(client_.loop(), *this);
  state_ = State::kConnecting;
  connect_start_ns_ = clock::now_ns();
  std::unique_ptr<tls::Session> session;
  if (tls::ClientContext* ctx = client_.plan().tls) {
    // https: the handshake follows the connect; the connection is ready
    // when it is done.
    const tls::SavedSession* resume =
        client_.options().tls.resume ? client_.tls_resume().get() : nullptr;
    session = tls::Session::client(*ctx, {}, resume);
    if (!session) {
      connect_failed(ENOMEM);
      return;
    }
    tls_saved_ = false;
  }
  auto st = sock_->connect(client_.options().target.address,
                           static_cast<uint32_t>(client_.options().connect_timeout_ms),
                           std::move(session));
  if (!st) connect_failed(st.error().code ? st.error().code : EIO);
}

void Connection::on_connected(net::ByteStream& s) {
  if (&s != sock_) return;
  const uint64_t now = clock::cached_ns();
  if (setup_connect_ || measured_) client_.stats().connect.record(since_us(connect_start_ns_, now));
  if (s.is_tls()) {
    handshake_start_ns_ = now;
    client_.loop().timers().schedule_after(timer_, client_.options().connect_timeout_ms);
  }
}

void Connection::on_ready(net::ByteStream& s) {
  if (&s != sock_) return;
  if (s.is_tls()) {
    tls_ready();
    return;
  }
  state_ = State::kReady;
  if (has_request_) {
    send_request();
  } else {
    make_available(false);
  }
}

void Connection::tls_ready() {
  client_.loop().timers().cancel(timer_);
  Stats& st = client_.stats();
  if (setup_connect_ || measured_) {
    st.tls_handshake.record(since_us(handshake_start_ns_, clock::cached_ns()));
    if (sock_->tls_session()->resumed()) ++st.tls_resumed;
  }
  state_ = State::kReady;
  if (has_request_) {
    send_request();
  } else {
    make_available(false);
  }
}

void Connection::tls_failed() {
  // Verification or protocol failure in the handshake: a resumption the
  // server refused is forgotten.
  if (client_.options().tls.resume) client_.tls_resume().reset();
  client_.loop().timers().cancel(timer_);
  if (has_request_) {
    fail(ErrorKind::kTls);
  } else {
    ++client_.stats().setup_failures;
    client_.stats().setup_errno = EPROTO;
    drop_socket(true);
    make_available(false);
  }
}

void Connection::connect_failed(int err) {
  if (!has_request_) {
    // A set-up connect: not a request; reported once in the summary.
    Stats& st = client_.stats();
    ++st.setup_failures;
    st.setup_errno = err;
    drop_socket(true);
    make_available(false);
    return;
  }
  fail(connect_error_kind(err));
}

void Connection::send_request() {
  const std::string_view req = client_.plan().request;
  state_ = State::kBusy;
  phase_ = Phase::kHead;
  parser_.reset();
  scratch_len_ = 0;
  first_byte_ns_ = 0;
  response_bytes_ = 0;
  sent_ns_ = clock::now_ns();
  const uring::IoBuf buf{reinterpret_cast<const uint8_t*>(req.data()),
                         static_cast<uint32_t>(req.size()), uring::BufferRing::kNoBuffer, nullptr};
  if (!sock_->send(buf)) {
    fail(ErrorKind::kReset);
    return;
  }
  client_.loop().timers().schedule_after(timer_, client_.options().timeout_ms);
  if (measured_) {
    Stats& st = client_.stats();
    ++st.sent;
    st.wait.record(since_us(intended_ns_, sent_ns_));
  }
}

void Connection::on_data(net::ByteStream& s, const uring::IoBuf& buf) {
  if (&s != sock_) {
    uring::StreamSocket::release(buf);  // this connection let go of that stream
    return;
  }
  on_plain(buf);
}

void Connection::on_plain(const uring::IoBuf& buf) {
  if (state_ != State::kBusy) {
    // Bytes nobody asked for: the connection's framing can no longer be trusted.
    uring::StreamSocket::release(buf);
    if (has_request_) {
      fail(ErrorKind::kBadResponse);
    } else {
      drop_socket(true);
    }
    return;
  }
  if (first_byte_ns_ == 0) first_byte_ns_ = clock::cached_ns();
  response_bytes_ += buf.len;
  consume(std::string_view(reinterpret_cast<const char*>(buf.data), buf.len));
  uring::StreamSocket::release(buf);
}

void Connection::consume(std::string_view in) {
  using proto::h1::ParseStatus;
  const proto::h1::Method method = client_.plan().method;
  for (;;) {
    if (phase_ == Phase::kHead) {
      ParseStatus st;
      std::string_view rest;
      if (scratch_len_ == 0) {
        st = parser_.parse(in, method);
        if (st == ParseStatus::kIncomplete) {
          // The parser fails a head longer than max_head_bytes, so what is
          // incomplete always fits the scratch buffer.
          if (!scratch_) scratch_ = std::make_unique<char[]>(kLimits.max_head_bytes);
          if (EGW_BUG(in.size() > kLimits.max_head_bytes, "incomplete head over the limit")) {
            fail(ErrorKind::kBadResponse);
            return;
          }
          std::memcpy(scratch_.get(), in.data(), in.size());
          scratch_len_ = static_cast<uint32_t>(in.size());
          return;
        }
        if (st == ParseStatus::kComplete) rest = in.substr(parser_.head_size());
      } else {
        const uint32_t old = scratch_len_;
        const size_t n = std::min<size_t>(in.size(), kLimits.max_head_bytes - old);
        std::memcpy(scratch_.get() + old, in.data(), n);
        scratch_len_ += static_cast<uint32_t>(n);
        st = parser_.parse(std::string_view(scratch_.get(), scratch_len_), method);
        if (st == ParseStatus::kIncomplete) {
          if (n < in.size())
            st = ParseStatus::kError;  // cannot happen: the parser caps heads
          else
            return;
        }
        if (st == ParseStatus::kComplete) {
          rest = in.substr(parser_.head_size() - old);
          scratch_len_ = 0;
        }
      }
      if (st == ParseStatus::kError) {
        fail(ErrorKind::kBadResponse);
        return;
      }
      const proto::h1::ResponseHead& h = parser_.head();
      if (h.informational()) {
        if (h.status == 101) {
          // A protocol switch nobody asked for ends HTTP on this connection.
          fail(ErrorKind::kStatus1xx);
          return;
        }
        parser_.reset();  // 100 Continue, 103 Early Hints: the final head follows
        in = rest;
        continue;
      }
      status_ = h.status;
      keep_alive_ = h.keep_alive;
      body_.start(h.body, h.content_length);
      phase_ = Phase::kBody;
      in = rest;
    }
    for (;;) {
      const proto::h1::BodyDecoder::Step step = body_.feed(in);
      switch (step.kind) {
        case proto::h1::BodyDecoder::Step::kData:
        case proto::h1::BodyDecoder::Step::kTrailer:
          in.remove_prefix(step.consumed);
          continue;
        case proto::h1::BodyDecoder::Step::kNeedMore:
          return;
        case proto::h1::BodyDecoder::Step::kDone:
          in.remove_prefix(step.consumed);
          if (!in.empty()) {
            // More than one response to one request.
            fail(ErrorKind::kBadResponse);
            return;
          }
          finish();
          return;
        case proto::h1::BodyDecoder::Step::kError:
          fail(ErrorKind::kBadResponse);
          return;
      }
    }
  }
}

void Connection::finish() {
  const uint64_t now = clock::cached_ns();
  client_.loop().timers().cancel(timer_);
  client_.keep_tls_session(sock_, tls_saved_);
  if (measured_) {
    client_.stats().record_response(intended_ns_, sent_ns_, first_byte_ns_, now, response_bytes_,
                                    status_);
  }
  has_request_ = false;
  client_.request_ended();
  if (keep_alive_ && !client_.options().new_connection_per_request) {
    state_ = State::kReady;
  } else {
    drop_socket(true);
  }
  make_available(false);
}

void Connection::fail(ErrorKind kind) {
  client_.loop().timers().cancel(timer_);
  const bool connect_error = kind == ErrorKind::kConnectRefused ||
                             kind == ErrorKind::kConnectTimeout || kind == ErrorKind::kConnectOther;
  drop_socket(true);
  if (has_request_) {
    if (measured_) client_.stats().count_error(kind);
    has_request_ = false;
    client_.request_ended();
  }
  make_available(connect_error);
}

void Connection::abandon(ErrorKind kind) {
  if (backing_off_) {
    client_.loop().timers().cancel(timer_);
    backing_off_ = false;
  }
  if (has_request_) fail(kind);
}

void Connection::on_eof(net::ByteStream& s) {
  if (&s != sock_) return;
  peer_closed();
}

void Connection::peer_closed() {
  if (has_request_ && state_ == State::kBusy && phase_ == Phase::kBody && body_.end_of_input()) {
    finish();  // a body delimited by the end of the connection
    return;
  }
  if (has_request_) {
    fail(ErrorKind::kClosed);
  } else {
    drop_socket(true);  // an idle keep-alive connection the server closed
  }
}

void Connection::on_error(net::ByteStream& s, int err) {
  if (&s != sock_) return;
  if (state_ == State::kConnecting) {
    if (!s.connected()) {
      connect_failed(err);
    } else {
      tls_failed();  // the handshake failed, or the server closed during it
    }
    return;
  }
  if (err == EPROTO) {  // TLS failed (or could not encrypt) on a ready connection
    if (has_request_) {
      fail(ErrorKind::kTls);
    } else {
      drop_socket(true);
    }
    return;
  }
  if (has_request_) {
    fail(ErrorKind::kReset);
  } else {
    drop_socket(true);
  }
}

void Connection::on_released(net::ByteStream& s) {
  EGW_ASSERT(&s != sock_);
  client_.sockets().destroy(&s);
}

void Connection::drop_socket(bool reset) {
  if (!sock_) return;
  net::ByteStream* s = sock_;
  sock_ = nullptr;
  state_ = State::kDisconnected;
  if (reset) {
    s->abort();
  } else {
    s->close();
  }
}

void Connection::close() {
  EGW_ASSERT(!has_request_);
  if (backing_off_) {
    client_.loop().timers().cancel(timer_);
    backing_off_ = false;
  }
  drop_socket(false);
}

void Connection::backoff(uint64_t ms) {
  backing_off_ = true;
  client_.loop().timers().schedule_after(timer_, ms);
}

void Connection::make_available(bool connect_failed) {
  idle_since_ns_ = clock::now_ns();
  client_.on_available(*this, connect_failed);
}

void Connection::on_timer() {
  if (backing_off_) {
    backing_off_ = false;
    make_available(false);
    return;
  }
  if (sock_ && sock_->is_tls() && state_ == State::kConnecting) {
    // The TLS handshake took longer than --connect-timeout.
    if (has_request_) {
      fail(ErrorKind::kConnectTimeout);
    } else {
      ++client_.stats().setup_failures;
      client_.stats().setup_errno = ETIMEDOUT;
      drop_socket(true);
      make_available(false);
    }
    return;
  }
  if (has_request_) fail(ErrorKind::kTimeout);
}

}  // namespace egw::load

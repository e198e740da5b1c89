#include "src/net/byte_stream.h"

namespace egw::net {

ByteStream::ByteStream(uring::EventLoop& loop, ByteStreamHandler& handler)
    : handler_(handler), sock_(loop, *this) {}

ByteStream::~ByteStream() = default;

void ByteStream::attach_tls(std::unique_ptr<tls::Session> tls) {
  tls_ = std::make_unique<TlsTransport>(sock_.loop(), sock_, std::move(tls));
  tls_->set_on_failure([this] { fail(EPROTO, "encrypting failed"); });
}

void ByteStream::open(UniqueFd fd, std::unique_ptr<tls::Session> tls) {
  sock_.open(std::move(fd));
  if (tls) attach_tls(std::move(tls));
}

Status ByteStream::connect(const SocketAddress& to, uint32_t timeout_ms,
                           std::unique_ptr<tls::Session> tls) {
  pending_tls_ = std::move(tls);
  return sock_.connect(to, timeout_ms);
}

void ByteStream::start_recv() {
  sock_.start_recv();
  if (tls_ && tls_->session().role() == tls::Session::Role::kClient && !tls_->handshake_done()) {
    // The client speaks first: its ClientHello goes out now.
    status(tls_->pump([this](const uring::IoBuf& p) { handler_.on_data(*this, p); }));
  }
}

std::string_view ByteStream::alpn() const {
  return tls_ ? tls_->session().alpn() : std::string_view();
}

void ByteStream::on_connected(uring::StreamSocket&, int err) {
  if (err != 0) {
    pending_tls_.reset();
    handler_.on_error(*this, err);
    return;
  }
  connected_ = true;
  handler_.on_connected(*this);
  if (sock_.closing()) return;
  if (!pending_tls_) {
    sock_.start_recv();
    handler_.on_ready(*this);
    return;
  }
  attach_tls(std::move(pending_tls_));
  start_recv();
}

bool ByteStream::send(const uring::IoBuf& b) {
  if (failed_ || shut_ || sock_.closing()) {
    sock_.loop().release(b);
    return false;
  }
  if (tls_) {
    if (!tls_->send(b)) {  // the session failed: the receive side reports it
      failed_ = true;
      return false;
    }
    return true;
  }
  if (!sock_.send(b)) {
    sock_.loop().release(b);
    return false;
  }
  return true;
}

void ByteStream::shutdown() {
  if (shut_) return;
  shut_ = true;
  if (tls_ && tls_->handshake_done()) {
    tls_->close_notify();
    if (sock_.closing()) return;  // encrypting failed, and the handler closed
  }
  sock_.shutdown_write();
}

void ByteStream::on_data(uring::StreamSocket&, const uring::IoBuf& buf) {
  if (!tls_) {
    handler_.on_data(*this, buf);
    return;
  }
  if (failed_ || (shut_ && tls_->session().state() != tls::Session::State::kOpen)) {
    sock_.loop().release(buf);  // after our close_notify: nothing more to read
    return;
  }
  const bool was_done = tls_->handshake_done();
  const tls::Session::Status st = tls_->on_ciphertext(buf, [this](const uring::IoBuf& p) {
    if (tls_->take_handshake_done()) handler_.on_ready(*this);
    if (sock_.closing()) {
      sock_.loop().release(p);
      return;
    }
    handler_.on_data(*this, p);
  });
  if (!was_done && tls_->take_handshake_done() && !sock_.closing()) handler_.on_ready(*this);
  status(st);
}

void ByteStream::status(tls::Session::Status st) {
  if (sock_.closing()) return;
  switch (st) {
    case tls::Session::Status::kOk:
    case tls::Session::Status::kWantInput:
      return;
    case tls::Session::Status::kClosed:
      handler_.on_eof(*this);  // close_notify: the peer is done sending
      return;
    case tls::Session::Status::kError:
      fail(EPROTO, tls_->session().error());
      return;
  }
}

void ByteStream::fail(int err, std::string why) {
  if (failed_) return;
  failed_ = true;
  if (tls_) tls_->error() = std::move(why);
  handler_.on_error(*this, err);
}

void ByteStream::on_eof(uring::StreamSocket&) {
  if (tls_ && !tls_->handshake_done()) {
    fail(ECONNRESET, "connection closed during the TLS handshake");
    return;
  }
  handler_.on_eof(*this);
}

void ByteStream::on_error(uring::StreamSocket&, int err) {
  if (failed_) return;
  failed_ = true;
  handler_.on_error(*this, err);
}

void ByteStream::on_sent(uring::StreamSocket&) {
  if (!send_full()) handler_.on_sent(*this);
}

void ByteStream::on_released(uring::StreamSocket&) {
  handler_.on_released(*this);
}

}  // namespace egw::net

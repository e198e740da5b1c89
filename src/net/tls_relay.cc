#include "src/net/tls_relay.h"

#include <cerrno>

#include "egw/log.h"

namespace egw::net {

TlsRelay::TlsRelay(uring::EventLoop& loop, TlsRelayHandler& handler)
    : loop_(loop),
      handler_(handler),
      sides_{Side(loop, *this), Side(loop, *this)},
      pending_(loop) {}

TlsRelay::~TlsRelay() = default;

void TlsRelay::open_a(UniqueFd fd, std::unique_ptr<tls::Session> session) {
  Side& a = sides_[0];
  last_activity_ms_ = loop_.now_ms();
  a.sock.open(std::move(fd));
  a.open = true;
  if (session) {
    a.tls = std::make_unique<TlsTransport>(loop_, a.sock, std::move(session));
    a.tls->set_on_failure([this] { fail(0, EPROTO, "encrypting failed"); });
  } else {
    a.ready = true;
  }
  a.sock.start_recv();
}

void TlsRelay::open_b(UniqueFd fd, std::unique_ptr<tls::Session> session) {
  Side& b = sides_[1];
  last_activity_ms_ = loop_.now_ms();
  b.sock.open(std::move(fd));
  b.open = true;
  b.sock.start_recv();
  if (!session) {
    became_ready(1);
    return;
  }
  b.tls = std::make_unique<TlsTransport>(loop_, b.sock, std::move(session));
  b.tls->set_on_failure([this] { fail(1, EPROTO, "encrypting failed"); });
  // The ClientHello goes out now.
  const tls::Session::Status st = b.tls->pump([this](const uring::IoBuf& p) { forward(1, p); });
  handle_status(1, st);
}

void TlsRelay::start(UniqueFd a, UniqueFd b) {
  open_a(std::move(a), nullptr);
  open_b(std::move(b), nullptr);
}

void TlsRelay::became_ready(int side) {
  Side& s = sides_[side];
  s.ready = true;
  if (side == 1) {
    // What the client sent while the endpoint was not ready.
    while (!pending_.empty() && !done_)
      send_to(1, pending_.take_front());
    if (sides_[0].eof && !sides_[0].eof_passed) pass_eof(0);
    Side& a = sides_[0];
    if (a.sock.recv_paused() && !s.sock.send_full()) a.sock.resume_recv();
  }
  if (s.tls) handler_.on_tls_ready(*this, side);
}

void TlsRelay::on_data(uring::StreamSocket& sock, const uring::IoBuf& buf) {
  last_activity_ms_ = loop_.now_ms();
  const int i = index(sock);
  Side& s = sides_[i];
  if (done_) {
    loop_.release(buf);
    return;
  }
  if (!s.tls) {
    s.bytes += buf.len;
    forward(i, buf);
    return;
  }
  const tls::Session::Status st = s.tls->on_ciphertext(buf, [this, i](const uring::IoBuf& plain) {
    if (sides_[i].tls->take_handshake_done()) became_ready(i);
    sides_[i].bytes += plain.len;
    forward(i, plain);
  });
  if (s.tls->take_handshake_done()) became_ready(i);
  handle_status(i, st);
}

void TlsRelay::handle_status(int side, tls::Session::Status st) {
  switch (st) {
    case tls::Session::Status::kOk:
    case tls::Session::Status::kWantInput:
      return;
    case tls::Session::Status::kClosed:
      side_eof(side);
      return;
    case tls::Session::Status::kError:
      fail(side, EPROTO, sides_[side].tls->session().error());
      return;
  }
}

void TlsRelay::forward(int from, const uring::IoBuf& plain) {
  if (done_) {
    loop_.release(plain);
    return;
  }
  const int to = 1 - from;
  if (!sides_[to].open || !sides_[to].ready) {
    pending_.push_back(plain);
    if (pending_.bytes() >= kMaxPending) sides_[from].sock.pause_recv();
    return;
  }
  send_to(to, plain);
  if (sides_[to].sock.send_full()) sides_[from].sock.pause_recv();
}

void TlsRelay::send_to(int to, const uring::IoBuf& plain) {
  Side& s = sides_[to];
  if (s.tls) {
    if (!s.tls->send(plain)) fail(to, EPROTO, "encrypting failed");
    return;
  }
  if (!s.sock.send(plain)) loop_.release(plain);
}

void TlsRelay::on_sent(uring::StreamSocket& sock) {
  last_activity_ms_ = loop_.now_ms();
  const int i = index(sock);
  Side& other = sides_[1 - i];
  if (other.open && other.sock.recv_paused() && !sock.send_full() &&
      pending_.bytes() < kMaxPending) {
    other.sock.resume_recv();
  }
  check_done();
}

void TlsRelay::on_eof(uring::StreamSocket& sock) {
  const int i = index(sock);
  Side& s = sides_[i];
  if (s.tls && !s.tls->handshake_done()) {
    fail(i, ECONNRESET, "connection closed during the handshake");
    return;
  }
  side_eof(i);
}

void TlsRelay::side_eof(int side) {
  Side& s = sides_[side];
  if (s.eof) return;
  s.eof = true;
  Side& other = sides_[1 - side];
  if (other.open && other.ready) pass_eof(side);
  check_done();
}

void TlsRelay::pass_eof(int from) {
  Side& s = sides_[from];
  Side& to = sides_[1 - from];
  s.eof_passed = true;
  if (to.tls) to.tls->close_notify();
  to.sock.shutdown_write();
}

void TlsRelay::check_done() {
  const Side& a = sides_[0];
  const Side& b = sides_[1];
  if (a.eof && b.eof && a.sock.send_idle() && b.sock.send_idle()) finish(0);
}

void TlsRelay::on_error(uring::StreamSocket& sock, int err) {
  fail(index(sock), err, "");
}

void TlsRelay::fail(int side, int err, std::string why) {
  if (done_) return;
  if (failed_side_ < 0) {
    failed_side_ = side;
    error_ = std::move(why);
  }
  finish(err);
}

void TlsRelay::finish(int err) {
  if (done_) return;
  done_ = true;
  pending_.clear();
  handler_.on_relay_done(*this, err);
}

void TlsRelay::close() {
  if (closing_) return;
  closing_ = true;
  done_ = true;
  pending_.clear();
  sides_[0].sock.close();
  sides_[1].sock.close();
}

void TlsRelay::on_released(uring::StreamSocket&) {
  if (++released_ == 2) handler_.on_relay_released(*this);
}

}  // namespace egw::net

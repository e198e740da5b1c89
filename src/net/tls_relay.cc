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
  a.ready = session == nullptr;
  a.stream.open(std::move(fd), std::move(session));
  a.open = true;
  a.stream.start_recv();
}

void TlsRelay::open_b(UniqueFd fd, std::unique_ptr<tls::Session> session) {
  Side& b = sides_[1];
  last_activity_ms_ = loop_.now_ms();
  const bool plain = session == nullptr;
  b.stream.open(std::move(fd), std::move(session));
  b.open = true;
  b.stream.start_recv();  // a client session's ClientHello goes out now
  if (plain) became_ready(1);
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
    if (a.stream.recv_paused() && !s.stream.send_full()) a.stream.resume_recv();
  }
  if (s.stream.is_tls()) handler_.on_tls_ready(*this, side);
}

void TlsRelay::on_ready(ByteStream& stream) {
  became_ready(index(stream));
}

void TlsRelay::on_data(ByteStream& stream, const uring::IoBuf& buf) {
  last_activity_ms_ = loop_.now_ms();
  const int i = index(stream);
  if (done_) {
    loop_.release(buf);
    return;
  }
  sides_[i].bytes += buf.len;
  forward(i, buf);
}

void TlsRelay::forward(int from, const uring::IoBuf& plain) {
  if (done_) {
    loop_.release(plain);
    return;
  }
  const int to = 1 - from;
  if (!sides_[to].open || !sides_[to].ready) {
    pending_.push_back(plain);
    if (pending_.bytes() >= kMaxPending) sides_[from].stream.pause_recv();
    return;
  }
  send_to(to, plain);
  if (sides_[to].stream.send_full()) sides_[from].stream.pause_recv();
}

void TlsRelay::send_to(int to, const uring::IoBuf& plain) {
  sides_[to].stream.send(plain);  // a stream that cannot send reports why
}

void TlsRelay::on_sent(ByteStream& stream) {
  last_activity_ms_ = loop_.now_ms();
  const int i = index(stream);
  Side& other = sides_[1 - i];
  if (other.open && other.stream.recv_paused() && !stream.send_full() &&
      pending_.bytes() < kMaxPending) {
    other.stream.resume_recv();
  }
  check_done();
}

void TlsRelay::on_eof(ByteStream& stream) {
  side_eof(index(stream));
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
  to.stream.shutdown();
}

void TlsRelay::check_done() {
  const Side& a = sides_[0];
  const Side& b = sides_[1];
  if (a.eof && b.eof && a.stream.send_idle() && b.stream.send_idle()) finish(0);
}

void TlsRelay::on_error(ByteStream& stream, int err) {
  fail(index(stream), err, std::string(stream.error()));
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
  sides_[0].stream.close();
  sides_[1].stream.close();
}

void TlsRelay::on_released(ByteStream&) {
  if (++released_ == 2) handler_.on_relay_released(*this);
}

}  // namespace egw::net

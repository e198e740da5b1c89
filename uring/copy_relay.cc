#include "uring/copy_relay.h"

#include <cstring>

#include "egw/log.h"

namespace egw::uring {

CopyRelay::CopyRelay(EventLoop& loop, RelayHandler& handler)
    : loop_(loop), handler_(handler), a_(loop, *this), b_(loop, *this) {}

void CopyRelay::start(UniqueFd a, UniqueFd b) {
  last_activity_ms_ = loop_.now_ms();
  a_.open(std::move(a));
  b_.open(std::move(b));
  a_.start_recv();
  b_.start_recv();
}

void CopyRelay::on_data(StreamSocket& s, const IoBuf& buf) {
  last_activity_ms_ = loop_.now_ms();
  StreamSocket& out = peer(s);
  if (!out.send(buf)) {
    // Only when the peer is closing or already shut: the bytes have nowhere
    // to go.
    StreamSocket::release(buf);
    return;
  }
  if (out.send_full()) s.pause_recv();
}

void CopyRelay::on_sent(StreamSocket& s) {
  last_activity_ms_ = loop_.now_ms();
  StreamSocket& in = peer(s);
  if (in.recv_paused() && !s.send_full()) in.resume_recv();
  check_done();
}

void CopyRelay::on_eof(StreamSocket& s) {
  (&s == &a_ ? a_eof_ : b_eof_) = true;
  peer(s).shutdown_write();
  check_done();
}

void CopyRelay::check_done() {
  if (a_eof_ && b_eof_ && a_.send_idle() && b_.send_idle()) finish(0);
}

void CopyRelay::on_error(StreamSocket&, int err) {
  finish(err);
}

void CopyRelay::finish(int err) {
  if (done_) return;
  done_ = true;
  EGW_LOG(debug, "copy relay done: err {} a->b {} (sent {}) b->a {} (sent {}) eof a={} b={}", err,
          a_.bytes_received(), b_.bytes_sent(), b_.bytes_received(), a_.bytes_sent(), a_eof_,
          b_eof_);
  handler_.on_relay_done(*this, err);
}

void CopyRelay::close() {
  if (closing_) return;
  closing_ = true;
  done_ = true;
  a_.close();
  b_.close();
}

void CopyRelay::on_released(StreamSocket&) {
  if (++released_ == 2) handler_.on_relay_released(*this);
}

}  // namespace egw::uring

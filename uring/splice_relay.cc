#include "uring/splice_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

namespace egw::uring {
namespace {
constexpr unsigned kPollIn = POLLIN | POLLRDHUP;
}

SpliceRelay::SpliceRelay(EventLoop& loop, PipePool& pipes, RelayHandler& handler)
    : loop_(loop), pipes_(pipes), handler_(handler) {
  bind<&SpliceRelay::on_poll_a>(poll_a_, Op::kPoll);
  bind<&SpliceRelay::on_poll_b>(poll_b_, Op::kPoll);
  bind<&SpliceRelay::on_pollout_a>(pollout_a_, Op::kPoll);
  bind<&SpliceRelay::on_pollout_b>(pollout_b_, Op::kPoll);
  bind<&SpliceRelay::on_cancel>(cancel_, Op::kCancel);
  bind<&SpliceRelay::on_close>(close_, Op::kClose);
}

SpliceRelay::~SpliceRelay() {
  EGW_ASSERT(!attached());
  pipes_.cancel_wait(*this);
  for (auto& d : dir_)
    drop_pipe(d);
}

void SpliceRelay::start(UniqueFd a, UniqueFd b) {
  a_ = std::move(a);
  b_ = std::move(b);
  dir_[0].in = a_.get();
  dir_[0].out = b_.get();
  dir_[1].in = b_.get();
  dir_[1].out = a_.get();
  last_activity_ms_ = loop_.now_ms();
  loop_.attach(*this);
  arm_pollin(a_.get(), poll_a_);
  arm_pollin(b_.get(), poll_b_);
}

void SpliceRelay::drop_pipe(Direction& d) {
  if (d.pipe) pipes_.put(std::move(d.pipe), d.in_pipe == 0);
}

void SpliceRelay::on_pipe_available() {
  // Called from another relay's put(): pump on the next turn of the loop.
  loop_.defer([this] {
    for (auto& d : dir_) {
      if (d.waiting_pipe) {
        d.waiting_pipe = false;
        pump(d);
      }
    }
  });
}

void SpliceRelay::arm_pollin(int fd, Completion& c) {
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_poll_multishot(s, fd, kPollIn);
  loop_.arm(c, s);
}

void SpliceRelay::arm_pollout(Direction& d) {
  if (d.waiting_out) return;
  d.waiting_out = true;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_poll_add(s, d.out, POLLOUT);
  loop_.arm(&d == &dir_[0] ? pollout_b_ : pollout_a_, s);
}

void SpliceRelay::pump(Direction& d, unsigned revents) {
  // While the receiver is full, POLLIN wake-ups change nothing: wait for POLLOUT.
  if (done_ || closing_ || d.waiting_out || d.waiting_pipe) return;
  // A non-blocking TCP splice reads everything the socket holds (up to what
  // the pipe takes), so a short read means the socket is drained: after
  // passing those bytes on there is no need for an EAGAIN probe (one system
  // call per message saved; new data wakes the multishot poll again).
  // The probe is skipped only when the wake-up said nothing of a hang-up: a
  // FIN that arrived with the data must still be read.
  const bool may_skip_probe = !(revents & (POLLRDHUP | POLLHUP | POLLERR));
  bool drained = false;
  for (;;) {
    if (d.in_pipe > 0) {
      const ssize_t n = ::splice(d.pipe->read_end.get(), nullptr, d.out, nullptr, d.in_pipe,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.in_pipe -= static_cast<size_t>(n);
        d.bytes += static_cast<uint64_t>(n);
        last_activity_ms_ = loop_.now_ms();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        arm_pollout(d);  // receiver full: stop reading until it drains
        return;
      }
      finish(n < 0 ? errno : EPIPE);
      return;
    }
    if (drained) {
      drop_pipe(d);
      return;
    }
    if (d.in_eof) {
      drop_pipe(d);
      if (!d.out_shut) {
        d.out_shut = true;
        ::shutdown(d.out, SHUT_WR);
      }
      if (dir_[0].out_shut && dir_[1].out_shut) finish(0);
      return;
    }
    if (!d.pipe) {
      d.pipe = pipes_.get();
      if (!d.pipe) {
        // Pool empty: the bytes wait in the socket until a pipe is returned.
        d.waiting_pipe = true;
        pipes_.wait(*this);
        return;
      }
    }
    const ssize_t n = ::splice(d.in, nullptr, d.pipe->write_end.get(), nullptr, d.pipe->capacity,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d.in_pipe += static_cast<size_t>(n);
      // Short of what a pipe holds at least (16 pages): the socket is empty.
      drained = may_skip_probe && static_cast<size_t>(n) < 65536;
      continue;
    }
    if (n == 0) {
      d.in_eof = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      drop_pipe(d);  // drained and nothing to read: an idle direction holds no pipe
      return;        // wait for POLLIN
    }
    finish(errno);
    return;
  }
}

void SpliceRelay::on_pollin(const io_uring_cqe& cqe, Direction& d, int fd, Completion& c) {
  if (closing_) return;
  if (cqe.res < 0) {
    if (cqe.res != -ECANCELED) finish(-cqe.res);
    return;
  }
  pump(d, static_cast<unsigned>(cqe.res));
  if (!(cqe.flags & IORING_CQE_F_MORE) && !done_ && !closing_ && !d.in_eof) arm_pollin(fd, c);
}

void SpliceRelay::on_poll_a(const io_uring_cqe& cqe) {
  on_pollin(cqe, dir_[0], a_.get(), poll_a_);
}
void SpliceRelay::on_poll_b(const io_uring_cqe& cqe) {
  on_pollin(cqe, dir_[1], b_.get(), poll_b_);
}

// POLLOUT on b means direction 0 (a -> b) may continue; on a, direction 1.
void SpliceRelay::on_pollout_b(const io_uring_cqe&) {
  dir_[0].waiting_out = false;
  pump(dir_[0]);
}

void SpliceRelay::on_pollout_a(const io_uring_cqe&) {
  dir_[1].waiting_out = false;
  pump(dir_[1]);
}

void SpliceRelay::finish(int err) {
  if (done_) return;
  done_ = true;
  handler_.on_relay_done(*this, err);
}

void SpliceRelay::close() {
  if (closing_) return;
  closing_ = true;
  done_ = true;
  pipes_.cancel_wait(*this);
  if (!attached()) {
    loop_.defer([this] { handler_.on_relay_released(*this); });
    return;
  }
  for (UniqueFd* fd : {&a_, &b_}) {
    if (!*fd) continue;
    const int raw = fd->release();
    // Polls hold a reference to the socket: cancel them, then close.
    loop_.reserve_sqes(2);
    io_uring_sqe* c = loop_.sqe();
    io_uring_prep_cancel_fd(c, raw, IORING_ASYNC_CANCEL_ALL);
    c->flags |= IOSQE_IO_HARDLINK;
    loop_.arm(cancel_, c);
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_close(s, raw);
    loop_.arm(close_, s);
  }
  loop_.retire(*this);
}

void SpliceRelay::on_cancel(const io_uring_cqe&) {}
void SpliceRelay::on_close(const io_uring_cqe&) {}

void SpliceRelay::on_released() {
  for (auto& d : dir_)
    pipes_.put(std::move(d.pipe), d.in_pipe == 0);
  handler_.on_relay_released(*this);
}

}  // namespace egw::uring

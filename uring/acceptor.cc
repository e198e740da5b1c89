#include "uring/acceptor.h"

#include <sys/socket.h>

#include <cstring>

#include "egw/log.h"
#include "uring/probe.h"

namespace egw::uring {

Acceptor::Acceptor(EventLoop& loop, int listen_fd, OnAccept on_accept)
    : loop_(loop),
      fd_(listen_fd),
      on_accept_(std::move(on_accept)),
      multishot_(features().multishot_accept) {
  bind<&Acceptor::on_accept>(accept_, Op::kAccept);
  bind<&Acceptor::on_cancel>(cancel_, Op::kCancel);
  backoff_.set_callback([this] { arm(); });
  loop_.attach(*this);
}

Acceptor::~Acceptor() {
  EGW_ASSERT(!attached());
}

void Acceptor::start() {
  if (stopping_) return;
  want_ = true;
  arm();
}

void Acceptor::arm() {
  if (!want_ || stopping_ || accept_.busy() || backoff_.armed()) return;
  io_uring_sqe* s = loop_.sqe();
  if (multishot_) {
    io_uring_prep_multishot_accept(s, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } else {
    io_uring_prep_accept(s, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  loop_.arm(accept_, s);
}

void Acceptor::pause() {
  want_ = false;
  loop_.timers().cancel(backoff_);
  if (accept_.busy() && !cancel_pending_) {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel64(s, accept_.user_data(), 0);
    loop_.arm(cancel_, s);
    cancel_pending_ = true;
  }
}

void Acceptor::stop(OnStopped on_stopped) {
  if (stopping_) return;
  on_stopped_ = std::move(on_stopped);
  pause();
  stopping_ = true;
  loop_.retire(*this);
}

void Acceptor::on_accept(const io_uring_cqe& cqe) {
  const bool final = !(cqe.flags & IORING_CQE_F_MORE);
  if (final) cancel_pending_ = false;
  if (cqe.res >= 0) {
    UniqueFd fd(cqe.res);
    if (stopping_) return;  // a connection that raced the stop: closed here
    ++accepted_;
    on_accept_(std::move(fd));
    if (final) arm();
    return;
  }
  const int err = -cqe.res;
  if (err == ECANCELED || stopping_) {
    arm();  // resumed while the cancel was in flight
    return;
  }
  ++errors_;
  switch (err) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      EGW_LOG_RATELIMITED(warn, 1000, "accept: {}; pausing accepts for 100 ms", std::strerror(err));
      loop_.timers().schedule_after(backoff_, 100);
      return;
    case ECONNABORTED:
    case EAGAIN:
    case EINTR:
      if (final) arm();
      return;
    default:
      EGW_LOG_RATELIMITED(error, 1000, "accept: {}; retrying in 100 ms", std::strerror(err));
      loop_.timers().schedule_after(backoff_, 100);
      return;
  }
}

void Acceptor::on_cancel(const io_uring_cqe&) {}

void Acceptor::on_released() {
  loop_.timers().cancel(backoff_);
  if (on_stopped_) {
    auto fn = std::move(on_stopped_);
    fn();  // may destroy *this
  }
}

}  // namespace egw::uring

#include "uring/poll_waiter.h"

namespace egw::uring {

PollWaiter::PollWaiter(EventLoop& loop, PollWaiterHandler& handler)
    : loop_(loop), handler_(handler) {
  bind<&PollWaiter::on_poll>(poll_, Op::kPoll);
  bind<&PollWaiter::on_cancel>(cancel_, Op::kCancel);
}

PollWaiter::~PollWaiter() {
  EGW_ASSERT(!attached());
}

void PollWaiter::arm(int fd, unsigned events) {
  EGW_ASSERT(!closing_ && !poll_.busy());
  if (!attached()) loop_.attach(*this);
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_poll_add(s, fd, events);
  loop_.arm(poll_, s);
}

void PollWaiter::on_poll(const io_uring_cqe& cqe) {
  if (closing_) return;
  handler_.on_poll_ready(*this, cqe.res);
}

void PollWaiter::on_cancel(const io_uring_cqe&) {}

void PollWaiter::close() {
  if (closing_) return;
  closing_ = true;
  if (!attached()) {
    loop_.defer([this] { handler_.on_poll_released(*this); });
    return;
  }
  if (poll_.busy()) {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel64(s, poll_.user_data(), 0);
    loop_.arm(cancel_, s);
  }
  loop_.retire(*this);
}

void PollWaiter::on_released() {
  handler_.on_poll_released(*this);
}

}  // namespace egw::uring

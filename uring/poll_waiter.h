// PollWaiter: one-shot readiness waits on a descriptor it does not own (a
// session that peeks at its client before deciding where it goes). One poll
// at a time; close() cancels it and reports on_poll_released() once nothing
// is in flight.
#pragma once

#include <cstdint>

#include "uring/event_loop.h"

namespace egw::uring {

class PollWaiter;

class PollWaiterHandler {
 public:
  // `result`: the ready poll events, or -errno.
  virtual void on_poll_ready(PollWaiter& w, int result) = 0;
  virtual void on_poll_released(PollWaiter& w) = 0;

 protected:
  ~PollWaiterHandler() = default;
};

class PollWaiter final : public Owner {
 public:
  PollWaiter(EventLoop& loop, PollWaiterHandler& handler);
  ~PollWaiter() override;

  // Waits for `events` (POLLIN, ...) on `fd`; on_poll_ready() reports once.
  void arm(int fd, unsigned events);
  bool armed() const { return poll_.busy(); }
  // Cancels a wait in flight; on_poll_released() follows. Idempotent.
  void close();

 private:
  void on_poll(const io_uring_cqe& cqe);
  void on_cancel(const io_uring_cqe& cqe);
  void on_released() override;

  EventLoop& loop_;
  PollWaiterHandler& handler_;
  Completion poll_, cancel_;
  bool closing_ = false;
};

}  // namespace egw::uring

// Acceptor: a multishot accept on one listening socket (per worker: each
// worker has its own SO_REUSEPORT socket, research notes §3). New sockets are
// non-blocking and close-on-exec. Where multishot accept is missing, a
// one-shot accept is re-armed per connection. Resource errors (EMFILE,
// ENFILE, ENOBUFS, ENOMEM) back off for 100 ms instead of spinning.
#pragma once

#include <cstdint>

#include "egw/inline_function.h"
#include "egw/unique_fd.h"
#include "uring/event_loop.h"

namespace egw::uring {

class Acceptor final : public Owner {
 public:
  using OnAccept = InlineFunction<void(UniqueFd), 24>;
  using OnStopped = InlineFunction<void(), 24>;

  // `listen_fd` stays owned by the caller and must outlive the acceptor.
  Acceptor(EventLoop& loop, int listen_fd, OnAccept on_accept);
  ~Acceptor() override;

  void start();
  // Stops accepting for now (connections wait in the kernel's backlog).
  void pause();
  void resume() { start(); }
  // Stops for good; `on_stopped` runs once nothing is in flight, after which
  // the acceptor may be destroyed.
  void stop(OnStopped on_stopped);

  uint64_t accepted() const { return accepted_; }
  uint64_t errors() const { return errors_; }
  bool running() const { return want_ && !stopping_; }

 private:
  void arm();
  void on_accept(const io_uring_cqe& cqe);
  void on_cancel(const io_uring_cqe& cqe);
  void on_released() override;

  EventLoop& loop_;
  int fd_;
  OnAccept on_accept_;
  OnStopped on_stopped_;
  Completion accept_, cancel_;
  Timer backoff_;
  bool multishot_;
  bool want_ = false;
  bool stopping_ = false;
  bool cancel_pending_ = false;
  uint64_t accepted_ = 0;
  uint64_t errors_ = 0;
};

}  // namespace egw::uring

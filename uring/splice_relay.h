// SpliceRelay: moves bytes both ways between two connected sockets without
// copying them through user space: socket -> pipe -> socket with inline
// splice(2) (SPLICE_F_NONBLOCK), driven by io_uring polls (a multishot
// POLLIN per socket, a one-shot POLLOUT when the receiver is full).
//
// Never IORING_OP_SPLICE on a socket: it is always punted to io-wq, and a
// blocking socket->pipe splice holds the pipe mutex that the pipe->socket
// splice on the same pipe needs (research notes §7).
//
// Half-close: EOF on one side's input is passed on as shutdown(SHUT_WR) of
// the other side once its pipe drained; the other direction keeps flowing.
// Back-pressure: a direction whose output returns EAGAIN stops reading until
// POLLOUT. The relay is done when both directions have passed EOF, or at the
// first error.
#pragma once

#include <cstdint>
#include <memory>

#include "egw/result.h"
#include "egw/unique_fd.h"
#include "uring/event_loop.h"
#include "uring/pipe_pool.h"
#include "uring/relay.h"

namespace egw::uring {

class SpliceRelay final : public Owner, public Relay {
 public:
  SpliceRelay(EventLoop& loop, PipePool& pipes, RelayHandler& handler);
  ~SpliceRelay() override;

  // Takes two pipes from the pool; fails with EAGAIN when the pool is empty
  // (the caller then relays by copying). On failure nothing is taken.
  Status reserve_pipes();
  // Starts relaying between `a` and `b` (both connected, non-blocking). The
  // relay owns and eventually closes them.
  void start(UniqueFd a, UniqueFd b) override;
  // Stops at once: cancels the polls, closes both sockets. Idempotent.
  void close() override;

  uint64_t bytes_a_to_b() const override { return dir_[0].bytes; }
  uint64_t bytes_b_to_a() const override { return dir_[1].bytes; }
  uint64_t last_activity_ms() const override { return last_activity_ms_; }
  bool a_eof() const override { return dir_[0].in_eof; }
  bool b_eof() const override { return dir_[1].in_eof; }

 private:
  struct Direction {
    int in = -1;
    int out = -1;
    std::unique_ptr<Pipe> pipe;
    size_t in_pipe = 0;   // bytes sitting in the pipe
    bool in_eof = false;  // read 0 from `in`
    bool out_shut = false;
    bool waiting_out = false;  // POLLOUT armed on `out`
    uint64_t bytes = 0;
  };

  void on_poll_a(const io_uring_cqe& cqe);
  void on_poll_b(const io_uring_cqe& cqe);
  void on_pollout_a(const io_uring_cqe& cqe);
  void on_pollout_b(const io_uring_cqe& cqe);
  void on_cancel(const io_uring_cqe& cqe);
  void on_close(const io_uring_cqe& cqe);
  void on_released() override;

  void arm_pollin(int fd, Completion& c);
  void arm_pollout(Direction& d);
  void pump(Direction& d);
  void finish(int err);

  EventLoop& loop_;
  PipePool& pipes_;
  RelayHandler& handler_;
  UniqueFd a_, b_;
  Direction dir_[2];  // 0: a -> b, 1: b -> a
  Completion poll_a_, poll_b_, pollout_a_, pollout_b_, cancel_, close_;
  uint64_t last_activity_ms_ = 0;
  bool done_ = false;
  bool closing_ = false;
};

}  // namespace egw::uring

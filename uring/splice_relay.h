// SpliceRelay: moves bytes both ways between two connected sockets without
// copying them through user space: socket -> pipe -> socket with inline
// splice(2) (SPLICE_F_NONBLOCK), driven by io_uring polls (a multishot
// POLLIN per socket, a one-shot POLLOUT when the receiver is full).
//
// Never IORING_OP_SPLICE on a socket: it is always punted to io-wq, and a
// blocking socket->pipe splice holds the pipe mutex that the pipe->socket
// splice on the same pipe needs (research notes §7).
//
// Pipes are taken from the worker's pool only while bytes are in flight and
// returned when they drain (an idle session holds none); with the pool empty
// a direction waits for a pipe, with its bytes left in the socket.
// Half-close: EOF on one side's input is passed on as shutdown(SHUT_WR) of the
// other side once its pipe drained; the other direction keeps flowing.
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

class SpliceRelay final : public Owner, public Relay, private PipeWaiter {
 public:
  SpliceRelay(EventLoop& loop, PipePool& pipes, RelayHandler& handler);
  ~SpliceRelay() override;

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
  // Pipes held right now (0 when idle).
  unsigned pipes_held() const { return (dir_[0].pipe ? 1u : 0u) + (dir_[1].pipe ? 1u : 0u); }

 private:
  struct Direction {
    int in = -1;
    int out = -1;
    std::unique_ptr<Pipe> pipe;  // only while bytes are in it
    size_t in_pipe = 0;          // bytes sitting in the pipe
    bool in_eof = false;         // read 0 from `in`
    bool out_shut = false;
    bool waiting_out = false;   // POLLOUT armed on `out`
    bool waiting_pipe = false;  // readable, but the pool was empty
    uint64_t bytes = 0;
  };

  void on_poll_a(const io_uring_cqe& cqe);
  void on_poll_b(const io_uring_cqe& cqe);
  void on_pollout_a(const io_uring_cqe& cqe);
  void on_pollout_b(const io_uring_cqe& cqe);
  void on_cancel(const io_uring_cqe& cqe);
  void on_close(const io_uring_cqe& cqe);
  void on_released() override;
  void on_pipe_available() override;

  void on_pollin(const io_uring_cqe& cqe, Direction& d, int fd, Completion& c);
  void arm_pollin(int fd, Completion& c);
  void arm_pollout(Direction& d);
  // `revents`: the poll events that woke this direction (all bits when not a
  // POLLIN wake-up).
  void pump(Direction& d, unsigned revents = ~0u);
  void drop_pipe(Direction& d);
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

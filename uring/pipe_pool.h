// PipePool: the worker's kernel pipes for splice relays, each resized to
// `pipe_size` (capped by /proc/sys/fs/pipe-max-size). A relay holds a pipe
// only while bytes sit in it (its receiver is slower than its sender) and
// gives it back as soon as it drains, so idle connections hold none. Each
// pipe costs two descriptors, so the pool is capped (HAProxy's maxpipes);
// when it is empty a relay waits on the pool (back-pressure) and is woken
// when a pipe comes back.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "egw/intrusive_list.h"
#include "egw/unique_fd.h"

namespace egw::uring {

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
  unsigned capacity = 0;
};

class PipeWaiter {
 public:
  // A pipe was returned; get() will succeed now (for the first waiter).
  virtual void on_pipe_available() = 0;
  bool waiting() const { return pipe_wait_node_.linked(); }

 protected:
  ~PipeWaiter() = default;

 private:
  friend class PipePool;
  ListNode pipe_wait_node_;
};

class PipePool {
 public:
  explicit PipePool(unsigned max_pipes = 1024, unsigned pipe_size = 1u << 20);
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // An empty pipe, or nullptr when the cap is reached or pipe2() fails.
  std::unique_ptr<Pipe> get();
  // Returns a pipe. Only an empty pipe is kept; one that may hold bytes is
  // closed (a later relay must never see another's data). Wakes a waiter.
  void put(std::unique_ptr<Pipe> pipe, bool empty);
  // Asks to be told when a pipe is returned (FIFO). Idempotent.
  void wait(PipeWaiter& w);
  void cancel_wait(PipeWaiter& w) { w.pipe_wait_node_.unlink(); }

  unsigned max() const { return max_; }
  unsigned in_use() const { return in_use_; }
  unsigned idle() const { return static_cast<unsigned>(idle_.size()); }
  uint64_t exhausted() const { return exhausted_; }

 private:
  const unsigned max_;
  const unsigned size_;
  unsigned in_use_ = 0;
  uint64_t exhausted_ = 0;
  std::vector<std::unique_ptr<Pipe>> idle_;
  IntrusiveList<PipeWaiter, &PipeWaiter::pipe_wait_node_> waiters_;
};

}  // namespace egw::uring

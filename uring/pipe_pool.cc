#include "uring/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "uring/probe.h"

namespace egw::uring {

PipePool::PipePool(unsigned max_pipes, unsigned pipe_size)
    : max_(max_pipes),
      size_(std::min(pipe_size, features().pipe_max_size ? features().pipe_max_size : pipe_size)) {}

std::unique_ptr<Pipe> PipePool::get() {
  if (!idle_.empty()) {
    auto p = std::move(idle_.back());
    idle_.pop_back();
    ++in_use_;
    return p;
  }
  if (in_use_ >= max_) {
    ++exhausted_;
    return nullptr;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    ++exhausted_;
    return nullptr;
  }
  auto p = std::make_unique<Pipe>();
  p->read_end.reset(fds[0]);
  p->write_end.reset(fds[1]);
  const int got = ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size_));
  p->capacity = got > 0 ? static_cast<unsigned>(got) : 65536u;
  ++in_use_;
  return p;
}

void PipePool::put(std::unique_ptr<Pipe> pipe, bool empty) {
  if (!pipe) return;
  --in_use_;
  if (empty && idle_.size() < max_) idle_.push_back(std::move(pipe));
  if (PipeWaiter* w = waiters_.pop_front()) w->on_pipe_available();
}

void PipePool::wait(PipeWaiter& w) {
  if (!w.waiting()) waiters_.push_back(w);
}

}  // namespace egw::uring

// IoQueue: a FIFO of IoBufs (nodes from the worker's pool; never allocates
// on its own), for bytes received but not yet consumed: a parser looks at
// the front, a consumer takes bytes off it, possibly splitting a buffer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "uring/event_loop.h"

namespace egw::uring {

class IoQueue {
 public:
  explicit IoQueue(EventLoop& loop) : loop_(loop) {}
  IoQueue(const IoQueue&) = delete;
  IoQueue& operator=(const IoQueue&) = delete;
  ~IoQueue() { clear(); }

  bool empty() const { return head_ == nullptr; }
  size_t bytes() const { return bytes_; }
  size_t size() const { return count_; }
  const IoBuf& front() const { return head_->buf; }
  const IoBuf& back() const { return tail_->buf; }
  // Calls f(const IoBuf&) for each buffer, front first.
  template <class F>
  void for_each(F&& f) const {
    for (IoBufNode* n = head_; n; n = n->next)
      f(n->buf);
  }

  // Takes ownership of `b`.
  // Replaces every queued buffer by f(buffer) (same bytes; e.g. spilled).
  template <class F>
  void replace_each(F&& f) {
    for (IoBufNode* n = head_; n; n = n->next)
      n->buf = f(n->buf);
  }
  void push_back(const IoBuf& b);
  void push_front(const IoBuf& b);
  // Removes the front buffer and hands its ownership to the caller.
  IoBuf take_front();
  // Drops `n` bytes from the front (releasing what is fully consumed).
  void drop(size_t n);
  // Moves the first `n` bytes into `out` (as IoBufs sharing the memory).
  template <class F>
  void take(size_t n, F&& out) {
    while (n > 0 && head_) {
      IoBuf& f = head_->buf;
      if (f.len <= n) {
        n -= f.len;
        out(take_front());
      } else {
        out(loop_.share(f, 0, static_cast<uint32_t>(n)));
        f.data += n;
        f.len -= static_cast<uint32_t>(n);
        bytes_ -= n;
        n = 0;
      }
    }
  }
  void clear();

 private:
  EventLoop& loop_;
  IoBufNode* head_ = nullptr;
  IoBufNode* tail_ = nullptr;
  size_t bytes_ = 0;
  size_t count_ = 0;
};

}  // namespace egw::uring

#include "uring/io_queue.h"

namespace egw::uring {

void IoQueue::push_back(const IoBuf& b) {
  IoBufNode* n = loop_.io_nodes().create();
  EGW_RELEASE_ASSERT(n != nullptr, "io node pool exhausted");
  n->buf = b;
  n->next = nullptr;
  if (tail_) {
    tail_->next = n;
  } else {
    head_ = n;
  }
  tail_ = n;
  bytes_ += b.len;
  ++count_;
}

void IoQueue::push_front(const IoBuf& b) {
  IoBufNode* n = loop_.io_nodes().create();
  EGW_RELEASE_ASSERT(n != nullptr, "io node pool exhausted");
  n->buf = b;
  n->next = head_;
  head_ = n;
  if (!tail_) tail_ = n;
  bytes_ += b.len;
  ++count_;
}

IoBuf IoQueue::take_front() {
  IoBufNode* n = head_;
  head_ = n->next;
  if (!head_) tail_ = nullptr;
  IoBuf b = n->buf;
  bytes_ -= b.len;
  --count_;
  loop_.io_nodes().destroy(n);
  return b;
}

void IoQueue::drop(size_t n) {
  while (n > 0 && head_) {
    IoBuf& f = head_->buf;
    if (f.len <= n) {
      n -= f.len;
      loop_.release(take_front());
    } else {
      f.data += n;
      f.len -= static_cast<uint32_t>(n);
      bytes_ -= n;
      n = 0;
    }
  }
}

void IoQueue::clear() {
  while (head_)
    loop_.release(take_front());
}

}  // namespace egw::uring

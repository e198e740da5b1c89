#include "uring/mailbox.h"

#include <liburing.h>

#include "egw/log.h"

namespace egw::uring {
namespace {

// A ring for threads without an event loop (the control thread, tests). Its
// own MSG_RING completions are reaped right after each submit.
struct SenderRing {
  io_uring ring{};
  bool ok = false;
  SenderRing() { ok = io_uring_queue_init(8, &ring, 0) == 0; }
  ~SenderRing() {
    if (ok) io_uring_queue_exit(&ring);
  }
};

}  // namespace

bool ring_doorbell(int target_ring_fd, int32_t value) {
  if (EventLoop* loop = EventLoop::current()) {
    io_uring_sqe* s = loop->sqe();
    io_uring_prep_msg_ring(s, target_ring_fd, static_cast<unsigned>(value),
                           EventLoop::kDoorbellUserData, 0);
    loop->arm_internal(s, Op::kMsgRing);
    return true;  // submitted with the sender's next enter
  }
  thread_local SenderRing sender;
  if (!sender.ok) return false;
  io_uring_sqe* s = io_uring_get_sqe(&sender.ring);
  if (!s) return false;
  io_uring_prep_msg_ring(s, target_ring_fd, static_cast<unsigned>(value),
                         EventLoop::kDoorbellUserData, 0);
  s->user_data = 0;
  io_uring_submit_and_wait(&sender.ring, 1);
  io_uring_cqe* cqe = nullptr;
  bool ok = true;
  while (io_uring_peek_cqe(&sender.ring, &cqe) == 0) {
    if (cqe->res < 0) ok = false;
    io_uring_cqe_seen(&sender.ring, cqe);
  }
  return ok;
}

Mailbox::Mailbox(EventLoop& loop) : loop_(loop), ring_fd_(loop.ring_fd()) {
  queue_.reserve(64);
  draining_.reserve(64);
  loop_.set_doorbell_handler([this](int32_t) { drain(); });
}

bool Mailbox::post(Message m) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(m));
  }
  if (doorbell_pending_.exchange(true, std::memory_order_acq_rel)) return true;
  if (EventLoop::current() == &loop_) {
    loop_.defer([this] { drain(); });
    return true;
  }
  return ring_doorbell(ring_fd_, 0);
}

void Mailbox::drain() {
  // Clear first: a post after this point rings again (or is in the swap).
  doorbell_pending_.store(false, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_.swap(queue_);
  }
  for (auto& m : draining_) {
    ++delivered_;
    m();
  }
  draining_.clear();
}

}  // namespace egw::uring

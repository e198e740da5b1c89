// Mailbox: how other threads reach a worker. A mutex-guarded MPSC queue holds
// the messages; an IORING_OP_MSG_RING CQE posted into the worker's ring is
// the doorbell that wakes it (one per batch: posts coalesce while a doorbell
// is pending). Messages run on the worker thread, in the order each sender
// posted them. Cross-thread messages are rare (config snapshots, admin
// commands, drain, queue kicks): never one per request.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "egw/inline_function.h"
#include "uring/event_loop.h"

namespace egw::uring {

class Mailbox {
 public:
  using Message = InlineFunction<void(), 48>;

  // Construct on the worker thread; installs itself as `loop`'s doorbell.
  explicit Mailbox(EventLoop& loop);
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Any thread. Returns false only when the doorbell could not be rung (the
  // message is queued anyway and runs at the worker's next wake-up).
  bool post(Message m);

  uint64_t delivered() const { return delivered_; }

 private:
  void drain();

  EventLoop& loop_;
  const int ring_fd_;
  std::mutex mu_;
  std::vector<Message> queue_;
  std::vector<Message> draining_;
  std::atomic<bool> doorbell_pending_{false};
  uint64_t delivered_ = 0;
};

// Posts a doorbell CQE (user_data EventLoop::kDoorbellUserData, res `value`)
// into the ring `target_ring_fd`, from whatever thread this is: through the
// thread's own event loop when it has one, otherwise through a small private
// ring of the thread's own.
bool ring_doorbell(int target_ring_fd, int32_t value);

}  // namespace egw::uring

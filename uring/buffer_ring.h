// BufferRing: the worker's provided-buffer ring. The kernel picks buffers from
// it for multishot recv; a buffer then belongs to whoever holds it until it is
// released back. Released buffers are published to the kernel in one batch
// before each io_uring_enter (flush()).
//
// The buffer memory is one mapping, registered as fixed buffer 0 so that
// send_zc can send from it.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>

#include "egw/assert.h"
#include "egw/result.h"
#include "uring/ring.h"

namespace egw::uring {

// Whoever received a provided buffer and is charged for it until it is freed
// (a StreamSocket counts the buffers its peers still hold, for its cap).
class BufferOwner {
 public:
  virtual void on_buffer_freed() = 0;

 protected:
  ~BufferOwner() = default;
};

class BufferRing {
 public:
  struct Options {
    unsigned count = 2048;  // buffers (rounded up to a power of two, <= 32768)
    unsigned size = 16384;  // bytes each; 16 KiB holds one maximum TLS record
    uint16_t group_id = 0;
  };
  static constexpr uint16_t kNoBuffer = 0xffff;

  static Result<std::unique_ptr<BufferRing>> create(Ring& ring, const Options& options);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  uint16_t group_id() const { return group_id_; }
  unsigned buffer_size() const { return size_; }
  unsigned count() const { return count_; }
  uint8_t* data(uint16_t bid) { return base_ + size_t{bid} * size_; }
  bool registered() const { return registered_; }
  // The fixed-buffer index of the buffer memory (send_zc), when registered().
  static constexpr unsigned kFixedIndex = 0;

  // Walks the buffers a recv CQE filled (one, or several with bundles), in
  // order: f(bid, data, len). The callee owns each buffer until release();
  // `owner` (may be null) is charged for it until then.
  template <class F>
  void consume(const io_uring_cqe& cqe, BufferOwner* owner, F&& f) {
    if (!(cqe.flags & IORING_CQE_F_BUFFER)) return;
    const uint16_t first = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    uint32_t left = cqe.res > 0 ? static_cast<uint32_t>(cqe.res) : 0;
    // A CQE with a buffer but no bytes still consumed that one buffer.
    unsigned n = left == 0 ? 1 : (left + size_ - 1) / size_;
    for (unsigned i = 0; i < n; ++i) {
      uint16_t bid = br_->bufs[(head_ + i) & mask_].bid;
      if (i == 0 && EGW_BUG(bid != first, "buffer ring head out of step with the kernel")) {
        ++out_of_order_;
        bid = first;
        n = 1;  // cannot trust the walk; deliver what the CQE names
      }
      const uint32_t len = left < size_ ? left : size_;
      left -= len;
      ++in_use_;
      refs_[bid] = 1;
      owners_[bid] = owner;
      f(bid, data(bid), len);
    }
    head_ += n;
  }

  // Gives a buffer back. Visible to the kernel after the next flush().
  void release(uint16_t bid) {
    EGW_ASSERT(bid < count_ && in_use_ > 0);
    refs_[bid] = 0;
    owners_[bid] = nullptr;
    io_uring_buf_ring_add(br_, data(bid), size_, bid, mask_, pending_);
    ++pending_;
    --in_use_;
  }

  // A buffer can be shared by several holders (the head of a request, its
  // body, the next pipelined request): each takes a reference, and the
  // buffer goes back to the kernel when the last one lets go.
  void ref(uint16_t bid) {
    EGW_ASSERT(bid < count_ && refs_[bid] > 0);
    ++refs_[bid];
  }
  // Drops one reference; when that was the last, the buffer goes back and
  // its owner (if it still has one) is told.
  void unref(uint16_t bid) {
    EGW_ASSERT(bid < count_ && refs_[bid] > 0);
    if (--refs_[bid] != 0) return;
    BufferOwner* owner = owners_[bid];
    release(bid);
    if (owner) owner->on_buffer_freed();
  }

  // An owner that goes away while others still hold slices of its buffers
  // (a response body queued toward a slow client after the upstream
  // connection closed) is no longer charged for them. O(count), and only
  // when the owner still holds buffers.
  void disown(const BufferOwner* owner) {
    for (unsigned i = 0; i < count_; ++i) {
      if (owners_[i] == owner) owners_[i] = nullptr;
    }
  }

  // Publishes released buffers. Returns how many were published.
  unsigned flush() {
    const unsigned n = pending_;
    if (n) {
      io_uring_buf_ring_advance(br_, static_cast<int>(n));
      pending_ = 0;
    }
    return n;
  }

  // Buffers the application holds right now.
  unsigned in_use() const { return in_use_; }
  // Buffers the kernel may pick from (including those not yet flushed).
  unsigned free_count() const { return count_ - in_use_; }
  uint64_t out_of_order() const { return out_of_order_; }

 private:
  BufferRing() = default;

  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;
  unsigned count_ = 0;
  unsigned mask_ = 0;
  unsigned size_ = 0;
  uint16_t group_id_ = 0;
  bool registered_ = false;
  unsigned head_ = 0;     // mirror of the kernel's consumer head
  unsigned pending_ = 0;  // added since the last flush
  unsigned in_use_ = 0;
  uint64_t out_of_order_ = 0;
  std::unique_ptr<uint16_t[]> refs_;
  std::unique_ptr<BufferOwner*[]> owners_;
};

}  // namespace egw::uring

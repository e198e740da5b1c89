#include "uring/buffer_ring.h"

#include <sys/mman.h>
#include <sys/uio.h>

#include <bit>

#include "egw/log.h"
#include "uring/compat.h"

namespace egw::uring {

Result<std::unique_ptr<BufferRing>> BufferRing::create(Ring& ring, const Options& options) {
  if (options.count == 0 || options.count > 32768)
    return fail(EINVAL, "buffer count not in 1..32768");
  if (options.size == 0 || options.size % 64)
    return fail(EINVAL, "buffer size not a multiple of 64");
  std::unique_ptr<BufferRing> br(new BufferRing());
  br->ring_ = ring.get();
  br->count_ = std::bit_ceil(options.count);
  br->mask_ = br->count_ - 1;
  br->size_ = options.size;
  br->group_id_ = options.group_id;
  br->bytes_ = size_t{br->count_} * br->size_;
  br->refs_ = std::make_unique<uint16_t[]>(br->count_);
  br->owners_ = std::make_unique<BufferOwner*[]>(br->count_);
  void* mem =
      ::mmap(nullptr, br->bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return fail_errno("mmap provided buffers");
  br->base_ = static_cast<uint8_t*>(mem);
  int err = 0;
  // The ring has as many slots as there are buffers: the consumed slots we
  // have not yet read (head_..kernel head) plus the published ones never
  // exceed count_, so re-adding a buffer never overwrites an unread slot.
  br->br_ = compat::setup_buf_ring(ring.get(), br->count_, br->group_id_, &err);
  if (!br->br_) return fail_res(err, "register provided buffer ring");
  for (unsigned i = 0; i < br->count_; ++i) {
    io_uring_buf_ring_add(br->br_, br->data(static_cast<uint16_t>(i)), br->size_,
                          static_cast<uint16_t>(i), br->mask_, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br->br_, static_cast<int>(br->count_));
  iovec iov{br->base_, br->bytes_};
  br->registered_ = io_uring_register_buffers(ring.get(), &iov, 1) == 0;
  if (!br->registered_) EGW_LOG(debug, "buffer memory not registered as a fixed buffer");
  return br;
}

BufferRing::~BufferRing() {
  if (br_) compat::free_buf_ring(ring_, br_, count_, group_id_);
  if (registered_) io_uring_unregister_buffers(ring_);
  if (base_) ::munmap(base_, bytes_);
}

}  // namespace egw::uring

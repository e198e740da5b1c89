// What liburing 2.3 (Debian 12) lacks and the engine uses. Every definition is
// guarded, so a newer liburing's own wins. Values are from the current kernel
// uapi header and were exercised on Linux 6.18 (shared research notes, §12).
//
// Never pass SETUP_NO_MMAP / REGISTERED_FD_ONLY / NO_SQARRAY to 2.3's
// io_uring_queue_init*: 2.3 cannot map such rings and corrupts them.
#pragma once

#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

// Setup flags 2.3 does not know. Defined for reporting only.
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP (1U << 14)
#endif
#ifndef IORING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_REGISTERED_FD_ONLY (1U << 15)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif

// Features.
#ifndef IORING_FEAT_REG_REG_RING
#define IORING_FEAT_REG_REG_RING (1U << 13)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

// Per-op flags.
#ifndef IORING_RECV_MULTISHOT
#define IORING_RECV_MULTISHOT (1U << 1)
#endif
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6)
#endif
#ifndef IORING_ASYNC_CANCEL_USERDATA
#define IORING_ASYNC_CANCEL_USERDATA (1U << 4)
#endif
#ifndef IORING_MSG_RING_FLAGS_PASS
#define IORING_MSG_RING_FLAGS_PASS (1U << 1)
#endif

// Register opcodes.
#ifndef IORING_REGISTER_PBUF_STATUS
#define IORING_REGISTER_PBUF_STATUS 26
#endif
#ifndef IORING_REGISTER_SEND_MSG_RING
#define IORING_REGISTER_SEND_MSG_RING 31
#endif

namespace egw::uring::compat {

// Kernel flags for io_uring_buf_reg (2.3 calls the field `pad`).
inline constexpr uint16_t kPbufRingMmap = 1;
inline constexpr uint16_t kPbufRingInc = 2;

// liburing 2.4's io_uring_setup_buf_ring: maps `entries` ring slots, registers
// them as buffer group `bgid`, initialises the tail. Returns nullptr and sets
// *err (negative errno) on failure.
inline io_uring_buf_ring* setup_buf_ring(io_uring* ring, unsigned entries, int bgid, int* err) {
  const size_t bytes = entries * sizeof(io_uring_buf);
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    *err = -errno;
    return nullptr;
  }
  io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = entries;
  reg.bgid = static_cast<uint16_t>(bgid);
  const int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc < 0) {
    ::munmap(mem, bytes);
    *err = rc;
    return nullptr;
  }
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br);
  *err = 0;
  return br;
}

// liburing 2.4's io_uring_free_buf_ring.
inline void free_buf_ring(io_uring* ring, io_uring_buf_ring* br, unsigned entries, int bgid) {
  io_uring_unregister_buf_ring(ring, bgid);
  ::munmap(br, entries * sizeof(io_uring_buf));
}

// liburing 2.7's prep_send_bundle: a send that takes its data from the
// provided buffers of `bgid`.
inline void prep_send_bundle(io_uring_sqe* sqe, int fd, size_t len, uint16_t bgid) {
  io_uring_prep_send(sqe, fd, nullptr, len, 0);
  sqe->ioprio |= IORING_RECVSEND_BUNDLE;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bgid;
}

// liburing 2.5's prep_msg_ring_cqe_flags: posts a CQE with user_data `data`,
// res `len` and the given CQE flags on the ring `fd`.
inline void prep_msg_ring_cqe_flags(io_uring_sqe* sqe, int fd, unsigned len, uint64_t data,
                                    unsigned flags, unsigned cqe_flags) {
  io_uring_prep_msg_ring(sqe, fd, len, data, flags | IORING_MSG_RING_FLAGS_PASS);
  sqe->file_index = cqe_flags;
}

}  // namespace egw::uring::compat

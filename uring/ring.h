// Ring: one io_uring instance, owned by one worker thread (SINGLE_ISSUER: it
// must be created, registered and submitted from that thread). Created with
// the flags the probe chose; registers its own fd (saves an fdget per enter)
// and a sparse fixed-file table. Move-only; exits the ring on destruction.
#pragma once

#include <liburing.h>

#include <cstdint>

#include "egw/result.h"

namespace egw::uring {

struct RingOptions {
  unsigned sq_entries = 1024;
  // Multishot recv and zero-copy notifications arrive in bursts; the CQ must
  // never overflow (research notes §2), so it is 8x the SQ.
  unsigned cq_entries = 8192;
  // Fixed-file slots; capped by RLIMIT_NOFILE (more gives EMFILE). 0 = none.
  unsigned fixed_files = 0;
};

class Ring {
 public:
  // Creates a ring on the calling thread with the probe's setup flags.
  static Result<Ring> create(const RingOptions& options);

  Ring(Ring&& other) noexcept;
  Ring& operator=(Ring&&) = delete;
  Ring(const Ring&) = delete;
  ~Ring();

  io_uring* get() { return &ring_; }
  int fd() const { return ring_.ring_fd; }
  uint32_t setup_flags() const { return ring_.flags; }
  bool registered_fd() const { return registered_fd_; }
  unsigned fixed_files() const { return fixed_files_; }
  bool defer_taskrun() const { return ring_.flags & IORING_SETUP_DEFER_TASKRUN; }

 private:
  Ring() = default;

  io_uring ring_{};
  bool live_ = false;
  bool registered_fd_ = false;
  unsigned fixed_files_ = 0;
};

}  // namespace egw::uring

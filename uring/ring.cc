#include "uring/ring.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "egw/log.h"
#include "uring/probe.h"

namespace egw::uring {

Result<Ring> Ring::create(const RingOptions& options) {
  const Features& f = features();
  if (!f.available) return fail(ENOSYS, "io_uring unavailable");
  Ring r;
  io_uring_params p;
  std::memset(&p, 0, sizeof(p));
  p.flags = f.setup_flags;
  p.cq_entries = std::max(options.cq_entries, options.sq_entries * 2);
  const int rc = io_uring_queue_init_params(options.sq_entries, &r.ring_, &p);
  if (rc < 0) return fail_res(rc, "io_uring_queue_init_params");
  r.live_ = true;
  if (f.registered_ring) r.registered_fd_ = io_uring_register_ring_fd(&r.ring_) == 1;
  if (options.fixed_files > 0) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    const unsigned cap = static_cast<unsigned>(std::min<rlim_t>(rl.rlim_cur, 1u << 20));
    const unsigned n = std::min(options.fixed_files, cap);
    const int frc = io_uring_register_files_sparse(&r.ring_, n);
    if (frc < 0) {
      EGW_LOG(warn, "fixed-file table of {} slots refused ({}); using plain descriptors", n,
              std::strerror(-frc));
    } else {
      r.fixed_files_ = n;
    }
  }
  return r;
}

Ring::Ring(Ring&& other) noexcept
    : ring_(other.ring_),
      live_(std::exchange(other.live_, false)),
      registered_fd_(other.registered_fd_),
      fixed_files_(other.fixed_files_) {}

Ring::~Ring() {
  if (live_) io_uring_queue_exit(&ring_);
}

}  // namespace egw::uring

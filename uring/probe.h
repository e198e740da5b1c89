// Feature probe: what this kernel's io_uring offers, found once at start-up by
// asking the kernel (opcode probe, setup flags tried in order, small trial
// operations on loopback sockets), and a report that says what was chosen and
// why. Everything else in the engine reads its choices from here.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

namespace egw::uring {

struct Features {
  // False when io_uring cannot be used at all; `unavailable_reason` says why
  // (disabled by sysctl, blocked by seccomp, too old a kernel).
  bool available = false;
  std::string unavailable_reason;

  std::string kernel_release;
  uint32_t kernel_features = 0;  // io_uring_params.features
  unsigned last_op = 0;
  std::bitset<256> ops;

  // The setup flags every worker ring uses, and one line per decision.
  uint32_t setup_flags = 0;
  std::vector<std::string> setup_notes;

  bool ext_arg = false;           // enter with a timeout argument (no timeout SQE)
  bool min_timeout = false;       // getevents_arg.min_wait_usec
  bool buf_ring = false;          // provided buffer rings
  bool multishot_recv = false;    // trial: F_MORE on a loopback recv
  bool multishot_accept = false;  // trial: multishot accept accepted
  bool recv_bundle = false;       // IORING_RECVSEND_BUNDLE
  bool send_zc = false;
  bool msg_ring = false;
  bool registered_ring = false;  // IORING_REGISTER_RING_FDS
  // TCP_ULP "tls" exists (kernel TLS), from setsockopt on a fresh TCP
  // socket: ENOTCONN means the module is there, ENOENT that it is not. The
  // one kTLS probe of the process; src/tls asks here.
  bool ktls = false;
  std::string ktls_reason;     // what the probe saw (never empty)
  unsigned pipe_max_size = 0;  // /proc/sys/fs/pipe-max-size

  bool has_op(unsigned op) const { return op < ops.size() && ops.test(op); }
  // Multi-line human-readable report (one "feature: yes/no (why)" per line).
  std::string report() const;
  // One line for logs: "io_uring: flags=SINGLE_ISSUER|... recv=multishot+bundle ...".
  std::string summary() const;
};

// Probes once (thread-safe) and returns the cached result.
const Features& features();

// Names the set bits of io_uring setup flags ("SINGLE_ISSUER|DEFER_TASKRUN").
std::string setup_flags_to_string(uint32_t flags);

}  // namespace egw::uring

#include "uring/probe.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>

#include "egw/unique_fd.h"
#include "uring/compat.h"

namespace egw::uring {
namespace {

struct FlagChoice {
  uint32_t flags;
  const char* why;
};

// Strongest first. DEFER_TASKRUN needs SINGLE_ISSUER (EINVAL otherwise) and
// runs completions only when the owner thread enters the ring, which is
// exactly the thread-per-core model; TASKRUN_FLAG lets liburing 2.3's peek
// notice pending task work. COOP_TASKRUN is the pre-6.1 fallback.
constexpr uint32_t kBase = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
const FlagChoice kChoices[] = {
    {kBase | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
     "completions run as task work only when the worker enters (6.1+)"},
    {kBase | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
     "no DEFER_TASKRUN: cooperative task work (5.19+)"},
    {kBase | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
     "no SINGLE_ISSUER: cooperative task work (5.19+)"},
    {kBase, "no task-run flags: interrupt-driven completions (5.18)"},
    {IORING_SETUP_CQSIZE, "minimal flags (pre-5.18 kernel)"},
};

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// Submits what is queued and waits at most 200 ms for one completion; the
// trials must not hang on a kernel that behaves unexpectedly.
void submit_wait(io_uring* ring) {
  __kernel_timespec ts{0, 200'000'000};
  io_uring_cqe* cqe = nullptr;
  io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
}

// Trial: a multishot recv on a socketpair with a one-entry buffer ring; it is
// supported when the first CQE carries F_MORE.
void trial_recv(io_uring* ring, Features& f) {
  int err = 0;
  io_uring_buf_ring* br = compat::setup_buf_ring(ring, 8, 7, &err);
  if (!br) return;
  f.buf_ring = true;
  static char buf[8][64];
  for (int i = 0; i < 8; ++i)
    io_uring_buf_ring_add(br, buf[i], 64, i, 7, i);
  io_uring_buf_ring_advance(br, 8);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
    UniqueFd a(sv[0]), b(sv[1]);
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, a.get(), nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 7;
    sqe->user_data = 1;
    (void)!::write(b.get(), "x", 1);
    submit_wait(ring);
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(ring, &cqe) == 0) {
      f.multishot_recv = cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE);
      io_uring_cqe_seen(ring, cqe);
    }
    // Closing the peer ends the multishot recv with res 0.
    b.reset();
    for (int i = 0; i < 4; ++i) {
      submit_wait(ring);
      bool done = false;
      while (io_uring_peek_cqe(ring, &cqe) == 0) {
        done = !(cqe->flags & IORING_CQE_F_MORE);
        io_uring_cqe_seen(ring, cqe);
      }
      if (done) break;
    }
  }
  compat::free_buf_ring(ring, br, 8, 7);
}

// Trial: a multishot accept on a loopback listener, then one connect.
void trial_accept(io_uring* ring, Features& f) {
  UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (!lfd || ::bind(lfd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(lfd.get(), 4) != 0 ||
      ::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  io_uring_prep_multishot_accept(sqe, lfd.get(), nullptr, nullptr, SOCK_CLOEXEC);
  sqe->user_data = 2;
  io_uring_submit(ring);
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return;
  submit_wait(ring);
  io_uring_cqe* cqe = nullptr;
  if (io_uring_peek_cqe(ring, &cqe) == 0) {
    f.multishot_accept = cqe->res >= 0 && (cqe->flags & IORING_CQE_F_MORE);
    if (cqe->res >= 0) ::close(cqe->res);
    const bool more = cqe->flags & IORING_CQE_F_MORE;
    io_uring_cqe_seen(ring, cqe);
    if (more) {
      sqe = io_uring_get_sqe(ring);
      io_uring_prep_cancel64(sqe, 2, 0);
      sqe->user_data = 3;
      for (int i = 0; i < 4; ++i) {
        submit_wait(ring);
        int seen = 0;
        while (io_uring_peek_cqe(ring, &cqe) == 0) {
          ++seen;
          io_uring_cqe_seen(ring, cqe);
        }
        if (seen >= 2) break;
      }
    }
  }
}

void probe_ktls(Features& f) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) {
    f.ktls_reason = fmt::format("socket(AF_INET, SOCK_STREAM): {}", std::strerror(errno));
    return;
  }
  if (::setsockopt(s.get(), SOL_TCP, TCP_ULP, "tls", 3) == 0) {
    f.ktls = true;
    f.ktls_reason = "TCP_ULP tls accepted";
  } else if (errno == ENOTCONN) {
    // The module exists; it only refuses a socket that is not established.
    f.ktls = true;
    f.ktls_reason = "TCP_ULP tls present";
  } else if (errno == ENOENT) {
    f.ktls_reason = "kernel has no tls module (TCP_ULP: ENOENT)";
  } else {
    f.ktls_reason = fmt::format("TCP_ULP tls: {}", std::strerror(errno));
  }
}

// EGW_DISABLE=bundle,multishot_recv,multishot_accept,send_zc,min_timeout
// turns features off as if the kernel lacked them, so that the fallback
// paths can be exercised (and measured) on a kernel that has everything.
void apply_disable_list(Features& f) {
  const char* env = std::getenv("EGW_DISABLE");
  if (!env || !*env) return;
  std::string_view list(env);
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    bool* flag = nullptr;
    if (item == "bundle") flag = &f.recv_bundle;
    if (item == "multishot_recv") flag = &f.multishot_recv;
    if (item == "multishot_accept") flag = &f.multishot_accept;
    if (item == "send_zc") flag = &f.send_zc;
    if (item == "min_timeout") flag = &f.min_timeout;
    if (flag) {
      *flag = false;
      f.setup_notes.push_back(fmt::format("{} disabled by EGW_DISABLE", item));
    } else if (!item.empty()) {
      f.setup_notes.push_back(fmt::format("EGW_DISABLE: unknown feature '{}' ignored", item));
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

Features run_probe() {
  Features f;
  utsname u;
  if (::uname(&u) == 0) f.kernel_release = u.release;
  f.pipe_max_size =
      static_cast<unsigned>(std::atoi(read_first_line("/proc/sys/fs/pipe-max-size").c_str()));
  probe_ktls(f);

  io_uring ring;
  int last_err = 0;
  bool made = false;
  for (const auto& choice : kChoices) {
    io_uring_params p;
    std::memset(&p, 0, sizeof(p));
    p.flags = choice.flags;
    p.cq_entries = 64;
    const int rc = io_uring_queue_init_params(8, &ring, &p);
    if (rc == 0) {
      f.setup_flags = choice.flags;
      f.kernel_features = p.features;
      f.setup_notes.push_back(
          fmt::format("setup flags {}: {}", setup_flags_to_string(choice.flags), choice.why));
      made = true;
      break;
    }
    last_err = rc;
    f.setup_notes.push_back(fmt::format("setup flags {} refused: {}",
                                        setup_flags_to_string(choice.flags), std::strerror(-rc)));
    if (rc == -ENOSYS || rc == -EPERM) break;
  }
  if (!made) {
    if (last_err == -ENOSYS) {
      f.unavailable_reason =
          "io_uring_setup returned ENOSYS: the kernel lacks io_uring or a seccomp filter blocks "
          "it (containers often do; allow io_uring_setup/io_uring_enter/io_uring_register)";
    } else if (last_err == -EPERM) {
      f.unavailable_reason =
          "io_uring_setup returned EPERM: io_uring is disabled (sysctl kernel.io_uring_disabled) "
          "or blocked by a security policy";
    } else {
      f.unavailable_reason = fmt::format("io_uring_setup failed: {}", std::strerror(-last_err));
    }
    return f;
  }
  f.available = true;

  if (io_uring_probe* p = io_uring_get_probe_ring(&ring)) {
    f.last_op = p->last_op;
    for (unsigned op = 0; op <= p->last_op && op < f.ops.size(); ++op) {
      if (io_uring_opcode_supported(p, static_cast<int>(op))) f.ops.set(op);
    }
    io_uring_free_probe(p);
  }
  f.ext_arg = f.kernel_features & IORING_FEAT_EXT_ARG;
  f.min_timeout = f.kernel_features & IORING_FEAT_MIN_TIMEOUT;
  f.recv_bundle = f.kernel_features & IORING_FEAT_RECVSEND_BUNDLE;
  f.send_zc = f.has_op(IORING_OP_SEND_ZC);
  f.msg_ring = f.has_op(IORING_OP_MSG_RING);
  f.registered_ring = io_uring_register_ring_fd(&ring) == 1;
  trial_recv(&ring, f);
  trial_accept(&ring, f);
  if (!f.buf_ring) f.recv_bundle = false;
  apply_disable_list(f);
  io_uring_queue_exit(&ring);
  return f;
}

const char* yes(bool b) {
  return b ? "yes" : "no";
}

}  // namespace

std::string setup_flags_to_string(uint32_t flags) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {IORING_SETUP_IOPOLL, "IOPOLL"},
      {IORING_SETUP_SQPOLL, "SQPOLL"},
      {IORING_SETUP_CQSIZE, "CQSIZE"},
      {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
      {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
      {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
      {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
      {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) {
      if (!out.empty()) out += '|';
      out += name;
    }
  }
  return out.empty() ? "none" : out;
}

std::string Features::report() const {
  if (!available) return "io_uring: unavailable: " + unavailable_reason;
  std::string out = fmt::format("io_uring on Linux {} (features 0x{:x}, last opcode {})\n",
                                kernel_release, kernel_features, last_op);
  for (const auto& n : setup_notes)
    out += "  " + n + "\n";
  out += fmt::format("  enter timeout argument (EXT_ARG): {}\n", yes(ext_arg));
  out += fmt::format("  min-wait batching (MIN_TIMEOUT): {}\n", yes(min_timeout));
  out += fmt::format("  provided buffer rings: {}\n", yes(buf_ring));
  out += fmt::format("  multishot recv: {}{}\n", yes(multishot_recv),
                     multishot_recv ? "" : " (one-shot recv re-armed per completion)");
  out += fmt::format("  recv bundles: {}\n", yes(recv_bundle));
  out += fmt::format("  multishot accept: {}{}\n", yes(multishot_accept),
                     multishot_accept ? "" : " (one-shot accept re-armed per connection)");
  out += fmt::format("  send_zc: {}\n", yes(send_zc));
  out += fmt::format("  msg_ring: {}\n", yes(msg_ring));
  out += fmt::format("  registered ring fd: {}\n", yes(registered_ring));
  out += fmt::format("  kernel TLS: {} ({})\n", yes(ktls), ktls_reason);
  out += fmt::format("  pipe-max-size: {} bytes", pipe_max_size);
  return out;
}

std::string Features::summary() const {
  if (!available) return "io_uring unavailable: " + unavailable_reason;
  return fmt::format(
      "io_uring: linux {} flags={} recv={}{} accept={} buf_ring={} ext_arg={} min_wait={} "
      "send_zc={} msg_ring={} ktls={}",
      kernel_release, setup_flags_to_string(setup_flags), multishot_recv ? "multishot" : "oneshot",
      recv_bundle ? "+bundle" : "", multishot_accept ? "multishot" : "oneshot", yes(buf_ring),
      yes(ext_arg), yes(min_timeout), yes(send_zc), yes(msg_ring), ktls ? "yes" : "no");
}

const Features& features() {
  static const Features f = run_probe();
  return f;
}

}  // namespace egw::uring

// echo_compare: the engine's request/response rate beside a plain epoll echo
// server of the same shape, in one process, on the same loopback.
//
// Both servers are single-threaded, pinned to one CPU, and echo each message
// back; one client thread (pinned to the other CPU, epoll, one message in
// flight per connection) drives C connections for D seconds per round, and
// the rounds alternate between the two servers. Reported: requests/s of each,
// their ratio, the engine's CQEs, SQEs and io_uring_enter calls per request,
// and the epoll server's system calls per request.
//
//   echo_compare [--conns 64] [--size 64] [--seconds 5] [--rounds 3]
//                [--server-cpu 1] [--client-cpu 0]
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "egw/address.h"
#include "egw/clock.h"
#include "uring/acceptor.h"
#include "uring/event_loop.h"
#include "uring/mailbox.h"
#include "uring/net.h"
#include "uring/stream_socket.h"

namespace {

using namespace egw;

struct Options {
  int conns = 64;
  size_t size = 64;
  double seconds = 5;
  int rounds = 3;
  int server_cpu = 1;
  int client_cpu = 0;
};

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// CPU time (ns) a thread has run, from the scheduler's own accounting.
uint64_t thread_cpu_ns(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", static_cast<int>(tid));
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  unsigned long long ns = 0;
  if (std::fscanf(f, "%llu", &ns) != 1) ns = 0;
  std::fclose(f);
  return ns;
}

struct ServerStats {
  uint64_t requests = 0;  // messages echoed (counted by the client)
  uint64_t cqes = 0, sqes = 0, enters = 0;
  uint64_t syscalls = 0;
};

// --- the engine's echo server -------------------------------------------------

class EchoConn final : public uring::StreamSocketHandler {
 public:
  explicit EchoConn(uring::EventLoop& loop) : sock_(loop, *this) {}
  uring::StreamSocket& sock() { return sock_; }
  void on_connected(uring::StreamSocket&, int) override {}
  void on_data(uring::StreamSocket& s, const uring::IoBuf& buf) override {
    if (!s.send(buf)) uring::StreamSocket::release(buf);
    if (s.send_full()) s.pause_recv();
  }
  void on_eof(uring::StreamSocket& s) override { s.close(); }
  void on_error(uring::StreamSocket& s, int) override { s.close(); }
  void on_sent(uring::StreamSocket& s) override {
    if (s.recv_paused()) s.resume_recv();
  }
  void on_released(uring::StreamSocket&) override { delete this; }

 private:
  uring::StreamSocket sock_;
};

struct UringServer {
  UniqueFd listen_fd;
  SocketAddress addr;
  std::thread thread;
  std::atomic<bool> ready{false};
  uring::Mailbox* mailbox = nullptr;
  uring::EventLoop* loop = nullptr;
  std::atomic<pid_t> tid{0};

  void start(int cpu) {
    auto fd = uring::listen_tcp(*SocketAddress::parse("127.0.0.1:0"), uring::ListenOptions{});
    listen_fd = std::move(*fd);
    addr = *SocketAddress::local_of(listen_fd.get());
    thread = std::thread([this, cpu] {
      pin(cpu);
      tid = ::gettid();
      uring::LoopOptions o;
      auto lp = uring::EventLoop::create(o);
      if (!lp) {
        std::fprintf(stderr, "event loop: %s\n", lp.error().message().c_str());
        std::exit(1);
      }
      uring::Mailbox mb(**lp);
      mailbox = &mb;
      loop = lp->get();
      uring::Acceptor acc(**lp, listen_fd.get(), [&](UniqueFd c) {
        uring::tune_tcp(c.get());
        auto* conn = new EchoConn(**lp);
        conn->sock().open(std::move(c));
        conn->sock().start_recv();
      });
      acc.start();
      ready = true;
      (void)(*lp)->run();
      bool stopped = false;
      acc.stop([&] { stopped = true; });
      while (!stopped || (*lp)->live_owners() > 0)
        (void)(*lp)->run_once(false);
    });
    while (!ready)
      std::this_thread::yield();
  }
  uring::LoopCounters counters() {
    std::atomic<bool> done{false};
    uring::LoopCounters c;
    mailbox->post([&] {
      c = loop->counters();
      done = true;
    });
    while (!done)
      std::this_thread::yield();
    return c;
  }
  void stop() {
    mailbox->post([this] { loop->stop(); });
    thread.join();
  }
};

// --- the epoll echo server ------------------------------------------------------

struct EpollServer {
  UniqueFd listen_fd;
  SocketAddress addr;
  UniqueFd stop_fd{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  std::thread thread;
  std::atomic<uint64_t> syscalls{0};
  std::atomic<pid_t> tid{0};

  void start(int cpu) {
    auto fd = uring::listen_tcp(*SocketAddress::parse("127.0.0.1:0"), uring::ListenOptions{});
    listen_fd = std::move(*fd);
    addr = *SocketAddress::local_of(listen_fd.get());
    thread = std::thread([this, cpu] { run(cpu); });
  }
  void run(int cpu) {
    pin(cpu);
    tid = ::gettid();
    UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd.get();
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, listen_fd.get(), &ev);
    ev.data.fd = stop_fd.get();
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, stop_fd.get(), &ev);
    std::vector<char> buf(16384);
    epoll_event events[256];
    uint64_t calls = 0;
    for (;;) {
      syscalls.store(calls, std::memory_order_relaxed);
      const int n = ::epoll_wait(ep.get(), events, 256, -1);
      ++calls;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd.get()) {
          syscalls = calls;
          return;
        }
        if (fd == listen_fd.get()) {
          for (;;) {
            const int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            ++calls;
            if (c < 0) break;
            uring::tune_tcp(c);
            epoll_event cev{};
            cev.events = EPOLLIN;
            cev.data.fd = c;
            ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, c, &cev);
            ++calls;
          }
          continue;
        }
        // Level-triggered: one read per readiness, echo it all back.
        const ssize_t r = ::read(fd, buf.data(), buf.size());
        ++calls;
        if (r <= 0) {
          ::close(fd);
          ++calls;
          continue;
        }
        ssize_t off = 0;
        while (off < r) {
          const ssize_t w = ::write(fd, buf.data() + off, static_cast<size_t>(r - off));
          ++calls;
          if (w <= 0) break;  // small messages into an idle socket: never partial here
          off += w;
        }
      }
    }
  }
  void stop() {
    uint64_t one = 1;
    (void)!::write(stop_fd.get(), &one, sizeof(one));
    thread.join();
  }
};

// --- the client -------------------------------------------------------------------

// Runs `conns` connections, one message in flight each, for `seconds` after a
// 0.5 s warm-up; returns completed round trips in the measured window.
uint64_t run_client(const SocketAddress& addr, const Options& o,
                    const std::function<void()>& at_start) {
  pin(o.client_cpu);
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  std::vector<UniqueFd> fds;
  std::vector<size_t> got(static_cast<size_t>(o.conns), 0);
  std::vector<char> msg(o.size, 'x');
  std::vector<char> buf(65536);
  for (int i = 0; i < o.conns; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(fd.get(), addr.get(), addr.len()) != 0) {
      std::perror("connect");
      std::exit(1);
    }
    uring::tune_tcp(fd.get());
    ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd.get(), &ev);
    fds.push_back(std::move(fd));
  }
  for (auto& fd : fds)
    (void)!::write(fd.get(), msg.data(), msg.size());
  const uint64_t t0 = clock::now_ns();
  const uint64_t warm = t0 + 500'000'000ull;
  const uint64_t end = warm + static_cast<uint64_t>(o.seconds * 1e9);
  uint64_t done = 0;
  bool measuring = false;
  epoll_event events[256];
  for (;;) {
    const uint64_t now = clock::now_ns();
    if (!measuring && now >= warm) {
      measuring = true;
      done = 0;
      at_start();
    }
    if (now >= end) break;
    const int n = ::epoll_wait(ep.get(), events, 256, 100);
    for (int k = 0; k < n; ++k) {
      const uint32_t i = events[k].data.u32;
      const ssize_t r = ::read(fds[i].get(), buf.data(), buf.size());
      if (r <= 0) continue;
      got[i] += static_cast<size_t>(r);
      while (got[i] >= o.size) {
        got[i] -= o.size;
        ++done;
        (void)!::write(fds[i].get(), msg.data(), msg.size());
      }
    }
  }
  return done;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--conns")
      o.conns = std::atoi(v);
    else if (k == "--size")
      o.size = static_cast<size_t>(std::atol(v));
    else if (k == "--seconds")
      o.seconds = std::atof(v);
    else if (k == "--rounds")
      o.rounds = std::atoi(v);
    else if (k == "--server-cpu")
      o.server_cpu = std::atoi(v);
    else if (k == "--client-cpu")
      o.client_cpu = std::atoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::printf(
      "echo_compare: %d connections, %zu-byte messages, %.1f s x %d rounds, server cpu %d, client "
      "cpu %d\n",
      o.conns, o.size, o.seconds, o.rounds, o.server_cpu, o.client_cpu);
  std::printf("%-6s %-7s %12s %10s %10s %10s %12s %10s\n", "round", "server", "req/s", "cqe/req",
              "sqe/req", "enter/req", "syscall/req", "cpu us/req");
  double sum_uring = 0, sum_epoll = 0, cpu_uring = 0, cpu_epoll = 0;
  for (int round = 1; round <= o.rounds; ++round) {
    {
      UringServer s;
      s.start(o.server_cpu);
      uring::LoopCounters before;
      uint64_t cpu0 = 0;
      const uint64_t n = run_client(s.addr, o, [&] {
        before = s.counters();
        cpu0 = thread_cpu_ns(s.tid);
      });
      const uint64_t cpu1 = thread_cpu_ns(s.tid);
      const uring::LoopCounters after = s.counters();
      s.stop();
      const double rps = static_cast<double>(n) / o.seconds;
      const double d = static_cast<double>(n ? n : 1);
      std::printf("%-6d %-7s %12.0f %10.2f %10.2f %10.2f %12.2f %10.2f\n", round, "uring", rps,
                  static_cast<double>(after.cqes - before.cqes) / d,
                  static_cast<double>(after.total_sqes() - before.total_sqes()) / d,
                  static_cast<double>(after.enters - before.enters) / d,
                  static_cast<double>(after.enters - before.enters) / d,
                  static_cast<double>(cpu1 - cpu0) / 1000.0 / d);
      cpu_uring += static_cast<double>(cpu1 - cpu0) / 1000.0 / d;
      sum_uring += rps;
    }
    {
      EpollServer s;
      s.start(o.server_cpu);
      uint64_t before = 0;
      uint64_t cpu0 = 0;
      const uint64_t n = run_client(s.addr, o, [&] {
        before = s.syscalls.load();
        cpu0 = thread_cpu_ns(s.tid);
      });
      const uint64_t cpu1 = thread_cpu_ns(s.tid);
      const uint64_t after = s.syscalls.load();
      s.stop();
      const double rps = static_cast<double>(n) / o.seconds;
      const double d = static_cast<double>(n ? n : 1);
      std::printf("%-6d %-7s %12.0f %10s %10s %10s %12.2f %10.2f\n", round, "epoll", rps, "-", "-",
                  "-", static_cast<double>(after - before) / d,
                  static_cast<double>(cpu1 - cpu0) / 1000.0 / d);
      cpu_epoll += static_cast<double>(cpu1 - cpu0) / 1000.0 / d;
      sum_epoll += rps;
    }
  }
  std::printf("mean req/s: uring %.0f, epoll %.0f, ratio uring/epoll %.2f\n", sum_uring / o.rounds,
              sum_epoll / o.rounds, sum_uring / sum_epoll);
  std::printf("mean server cpu us/req: uring %.2f, epoll %.2f, ratio uring/epoll %.2f\n",
              cpu_uring / o.rounds, cpu_epoll / o.rounds, cpu_uring / cpu_epoll);
  return 0;
}

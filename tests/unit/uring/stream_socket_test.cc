// StreamSocket and the loop's receive machinery over real loopback sockets.
#include "uring/stream_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "egw/clock.h"
#include "tests/support/test_util.h"
#include "uring/probe.h"

namespace egw::uring {
namespace {

using test::run_until;

#define SKIP_WITHOUT_URING()                                                        \
  do {                                                                              \
    if (!features().available) GTEST_SKIP() << features().unavailable_reason;       \
    if (!features().buf_ring) GTEST_SKIP() << "kernel lacks provided buffer rings"; \
  } while (0)

// Echoes everything back by forwarding the received provided buffers into
// its own send queue (no copy), with back-pressure, and checks the pattern.
class EchoHandler : public StreamSocketHandler {
 public:
  explicit EchoHandler(uint64_t seed) : seed_(seed) {}
  void on_connected(StreamSocket&, int err) override { connect_err = err; }
  void on_data(StreamSocket& s, const IoBuf& buf) override {
    if (test::check_pattern(seed_, received, buf.data, buf.len) >= 0) corrupt = true;
    received += buf.len;
    if (!s.send(buf)) {
      // Queue full: cannot happen while we pause at the watermark below.
      ADD_FAILURE() << "send queue overflow";
      StreamSocket::release(buf);
    }
    if (s.send_full()) s.pause_recv();
  }
  void on_eof(StreamSocket& s) override {
    eof = true;
    s.shutdown_write();
  }
  void on_error(StreamSocket& s, int err) override {
    error = err;
    s.close();
  }
  void on_sent(StreamSocket& s) override {
    if (s.recv_paused() && !s.send_full()) s.resume_recv();
  }
  void on_released(StreamSocket&) override { released = true; }

  uint64_t seed_;
  uint64_t received = 0;
  bool corrupt = false;
  bool eof = false;
  int error = 0;
  int connect_err = -1;
  bool released = false;
};

TEST(StreamSocket, TinyBufferRingCarries50MiBByteExact) {
  SKIP_WITHOUT_URING();
  // 8 buffers of 4 KiB for the whole worker, and a per-socket cap above the
  // ring size: the recv must run dry (ENOBUFS) and be re-armed many times.
  auto loop = EventLoop::create(test::small_loop_options(8, 4096));
  ASSERT_TRUE(loop) << loop.error().message();
  auto l = test::listen_loopback();
  constexpr uint64_t kTotal = 50ull << 20;
  constexpr uint64_t kSeed = 7;

  std::atomic<int64_t> echoed{0};
  std::atomic<bool> client_done{false};
  int64_t bad = -1;
  std::thread client([&] {
    UniqueFd fd = test::connect_blocking(l.addr);
    std::thread writer([&] {
      test::write_pattern(fd.get(), kSeed, kTotal);
      ::shutdown(fd.get(), SHUT_WR);
    });
    echoed = test::read_check_pattern(fd.get(), kSeed, kTotal + 1, &bad);
    writer.join();
    client_done = true;
  });

  UniqueFd conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(conn);
  EchoHandler h(kSeed);
  StreamSocket s(**loop, h);
  s.set_max_held(64);
  s.open(std::move(conn));
  s.start_recv();
  // Done when the client has read everything back up to our FIN.
  const bool finished = run_until(
      **loop, [&] { return client_done.load(); }, 60000);
  if (!finished) ::shutdown(s.fd(), SHUT_RDWR);  // unblock the client thread
  client.join();
  ASSERT_TRUE(finished) << "received " << h.received << ", echoed " << echoed.load();
  EXPECT_TRUE(h.eof);
  s.close();
  ASSERT_TRUE(run_until(**loop, [&] { return h.released; }));

  EXPECT_EQ(h.error, 0);
  EXPECT_FALSE(h.corrupt);
  EXPECT_EQ(h.received, kTotal);
  EXPECT_EQ(echoed.load(), static_cast<int64_t>(kTotal)) << "first bad byte at " << bad;
  const auto& c = (*loop)->counters();
  if (features().multishot_recv) {
    // A one-shot recv waits in poll until data and buffers meet; only the
    // multishot path reliably runs the ring dry here.
    EXPECT_GT(c.enobufs, 0u) << "the ring never ran dry: the test did not test recovery";
    EXPECT_GT(c.rearms, 0u);
  }
  EXPECT_EQ(c.stale_cqes, 0u);
  EXPECT_EQ((*loop)->buffers().in_use(), 0u);
}

TEST(StreamSocket, SocketOverItsCapStopsTakingBuffersAndOthersStillReceive) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(256, 4096));
  ASSERT_TRUE(loop);
  auto l = test::listen_loopback();
  UniqueFd slow_client = test::connect_blocking(l.addr);
  UniqueFd slow_conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  UniqueFd other_client = test::connect_blocking(l.addr);
  UniqueFd other_conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));

  // A handler that holds every buffer and never releases: a stalled consumer.
  struct Hoarder : EchoHandler {
    using EchoHandler::EchoHandler;
    std::vector<IoBuf> held;
    void on_data(StreamSocket&, const IoBuf& b) override {
      held.push_back(b);
      received += b.len;
    }
  } slow(0), other(0);
  StreamSocket s(**loop, slow);
  s.set_max_held(8);
  s.open(std::move(slow_conn));
  s.start_recv();
  StreamSocket o(**loop, other);
  o.open(std::move(other_conn));
  o.start_recv();

  // Phase 1: 64 KiB (16 buffers) exceeds the cap of 8: the multishot is
  // cancelled once the completions show it.
  std::vector<uint8_t> data(320 << 10);
  test::fill_pattern(9, 0, data.data(), data.size());
  ASSERT_EQ(::write(slow_client.get(), data.data(), 64 << 10), 64 << 10);
  ASSERT_TRUE(run_until(**loop, [&] { return slow.held.size() >= 8; }));
  run_until(
      **loop, [&] { return false; }, 100);
  const size_t held_after_cap = slow.held.size();
  const uint64_t received_at_cap = slow.received;
  // Phase 2: 256 KiB more. Over its cap the socket takes no further buffer;
  // the bytes wait in the kernel.
  ASSERT_EQ(::write(slow_client.get(), data.data() + (64 << 10), 256 << 10), 256 << 10);
  run_until(
      **loop, [&] { return false; }, 200);
  EXPECT_EQ(slow.held.size(), held_after_cap) << "kept receiving past its cap";
  EXPECT_EQ(slow.received, received_at_cap);

  // The other socket on the same ring is not starved.
  ASSERT_EQ(::write(other_client.get(), "ping", 4), 4);
  ASSERT_TRUE(run_until(**loop, [&] { return other.received == 4; }));

  // Releasing resumes delivery: the rest arrives, byte-exact and in order.
  uint64_t verified = 0;
  bool corrupt = false;
  ASSERT_TRUE(run_until(
      **loop,
      [&] {
        for (auto& b : slow.held) {
          if (test::check_pattern(9, verified, b.data, b.len) >= 0) corrupt = true;
          verified += b.len;
          StreamSocket::release(b);
        }
        slow.held.clear();
        return verified == data.size();
      },
      10000));
  EXPECT_FALSE(corrupt);
  for (auto& b : other.held)
    StreamSocket::release(b);
  other.held.clear();
  s.close();
  o.close();
  ASSERT_TRUE(run_until(**loop, [&] { return slow.released && other.released; }));
  EXPECT_EQ((*loop)->buffers().in_use(), 0u);
}

TEST(StreamSocket, CloseWithRecvInFlightWaitsForTheCancelledCompletion) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(32, 4096));
  ASSERT_TRUE(loop);
  auto l = test::listen_loopback();
  UniqueFd client = test::connect_blocking(l.addr);
  UniqueFd conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));

  // The socket lives on the heap and is freed inside on_released: any
  // completion delivered after that would be a use-after-free under ASan.
  struct Freeing : EchoHandler {
    using EchoHandler::EchoHandler;
    std::unique_ptr<StreamSocket> sock;
    void on_released(StreamSocket&) override {
      released = true;
      sock.reset();
    }
  } h(0);
  h.sock = std::make_unique<StreamSocket>(**loop, h);
  h.sock->open(std::move(conn));
  h.sock->start_recv();
  (*loop)->run_once(false);  // the multishot recv is now armed in the kernel
  EXPECT_EQ(h.sock->inflight(), 1u);
  h.sock->close();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    // Keep sending while (and after) the socket closes.
    std::vector<uint8_t> junk(4096, 'y');
    while (!stop) {
      if (::send(client.get(), junk.data(), junk.size(), MSG_NOSIGNAL) < 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  ASSERT_TRUE(run_until(**loop, [&] { return h.released; }));
  run_until(
      **loop, [&] { return false; }, 100);  // late CQEs, if any, arrive now
  stop = true;
  writer.join();
  EXPECT_EQ((*loop)->counters().stale_cqes, 0u);
  EXPECT_EQ((*loop)->buffers().in_use(), 0u);
  EXPECT_EQ((*loop)->live_owners(), 0u);
}

TEST(StreamSocket, BuffersOutlivingTheirSocketAreReleasedSafely) {
  // A response body queued toward a slow client can outlive the upstream
  // socket it came from: the socket is freed, then the slices go back. Under
  // ASan a charge to the freed socket would be a use-after-free.
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(32, 4096));
  ASSERT_TRUE(loop);
  auto l = test::listen_loopback();
  UniqueFd client = test::connect_blocking(l.addr);
  UniqueFd conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  struct Keeper : EchoHandler {
    using EchoHandler::EchoHandler;
    std::vector<IoBuf> held;
    std::unique_ptr<StreamSocket> sock;
    void on_data(StreamSocket&, const IoBuf& b) override {
      held.push_back(b);
      received += b.len;
    }
    void on_released(StreamSocket&) override {
      released = true;
      sock.reset();
    }
  } h(0);
  h.sock = std::make_unique<StreamSocket>(**loop, h);
  h.sock->set_max_held(64);
  h.sock->open(std::move(conn));
  h.sock->start_recv();
  std::vector<uint8_t> data(40 << 10);
  test::fill_pattern(3, 0, data.data(), data.size());
  ASSERT_EQ(::write(client.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_TRUE(run_until(**loop, [&] { return h.received == data.size(); }));
  ASSERT_GE(h.held.size(), 10u);
  // Share one slice, as a body split across frames would be.
  IoBuf extra = (*loop)->share(h.held.front(), 0, 16);
  h.sock->close();
  ASSERT_TRUE(run_until(**loop, [&] { return h.released; }));
  EXPECT_EQ(h.sock, nullptr);
  EXPECT_EQ((*loop)->buffers().in_use(), h.held.size());
  uint64_t verified = 0;
  for (auto& b : h.held) {
    EXPECT_LT(test::check_pattern(3, verified, b.data, b.len), 0) << "bytes changed";
    verified += b.len;
    StreamSocket::release(b);
  }
  h.held.clear();
  EXPECT_EQ((*loop)->buffers().in_use(), 1u);  // the shared slice still holds one
  StreamSocket::release(extra);
  EXPECT_EQ((*loop)->buffers().in_use(), 0u);
  // The ring still serves a new socket on the same buffers.
  UniqueFd client2 = test::connect_blocking(l.addr);
  UniqueFd conn2(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  EchoHandler echo(4);
  StreamSocket s2(**loop, echo);
  s2.open(std::move(conn2));
  s2.start_recv();
  test::fill_pattern(4, 0, data.data(), data.size());
  ASSERT_EQ(::write(client2.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_TRUE(run_until(**loop, [&] { return echo.received == data.size(); }));
  EXPECT_FALSE(echo.corrupt);
  s2.close();
  ASSERT_TRUE(run_until(**loop, [&] { return echo.released; }));
  EXPECT_EQ((*loop)->buffers().in_use(), 0u);
}

// Receivers parked on ENOBUFS wait in the loop's queue by slot and
// generation: one closed and freed while it waits is skipped (under ASan a
// call to it would be a use-after-free; in any build its slot is empty), and
// the one parked after it is still re-armed and gets its bytes.
TEST(StreamSocket, ParkedReceiverFreedWhileWaitingIsSkippedAndTheNextIsRearmed) {
  SKIP_WITHOUT_URING();
  if (!features().multishot_recv)
    GTEST_SKIP() << "kernel lacks multishot recv (no ENOBUFS parking)";
  auto loop = EventLoop::create(test::small_loop_options(8, 4096));
  ASSERT_TRUE(loop);
  EventLoop& lp = **loop;
  auto l = test::listen_loopback();
  struct Holder : EchoHandler {
    using EchoHandler::EchoHandler;
    std::vector<IoBuf> held;
    bool keep = true;
    void on_data(StreamSocket&, const IoBuf& b) override {
      received += b.len;
      if (keep) {
        held.push_back(b);
      } else {
        StreamSocket::release(b);
      }
    }
  };
  struct Side {
    UniqueFd client;
    Holder h{0};
    std::unique_ptr<StreamSocket> sock;
  };
  auto open_side = [&](Side& side) {
    side.client = test::connect_blocking(l.addr);
    UniqueFd conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    ASSERT_TRUE(conn);
    side.sock = std::make_unique<StreamSocket>(lp, side.h);
    side.sock->set_max_held(64);
    side.sock->open(std::move(conn));
    side.sock->start_recv();
  };
  Side a, b, c;
  open_side(a);
  open_side(b);
  open_side(c);
  b.h.keep = false;
  c.h.keep = false;
  // A takes every buffer of the ring and keeps them; it parks with more to read.
  std::vector<uint8_t> data(64 << 10, 'a');
  ASSERT_EQ(::write(a.client.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_TRUE(run_until(lp, [&] { return a.h.held.size() == 8 && lp.counters().enobufs >= 1; }));
  // B, then C, find the ring dry and park behind A.
  ASSERT_EQ(::write(b.client.get(), "bbbb", 4), 4);
  ASSERT_TRUE(run_until(lp, [&] { return lp.counters().enobufs >= 2; }));
  ASSERT_EQ(::write(c.client.get(), "cccccc", 6), 6);
  ASSERT_TRUE(run_until(lp, [&] { return lp.counters().enobufs >= 3; }));
  EXPECT_EQ(lp.counters().rearms, 0u);
  // B goes away while it waits.
  b.sock->close();
  ASSERT_TRUE(run_until(lp, [&] { return b.h.released; }));
  b.sock.reset();
  // A lets go: the queue runs, skips B, re-arms A and C.
  a.h.keep = false;
  for (auto& buf : a.h.held)
    StreamSocket::release(buf);
  a.h.held.clear();
  ASSERT_TRUE(run_until(lp, [&] { return c.h.received == 6 && a.h.received == data.size(); }));
  EXPECT_GE(lp.counters().rearms, 2u);
  EXPECT_EQ(b.h.received, 0u);
  EXPECT_EQ(lp.counters().stale_cqes, 0u);
  for (Side* side : {&a, &c}) {
    side->sock->close();
    ASSERT_TRUE(run_until(lp, [&] { return side->h.released; }));
  }
  EXPECT_EQ(lp.buffers().in_use(), 0u);
}

// The loop keeps each queued connect's address and timespec only until the
// kernel has taken the SQEs in. 300 connects queued in one go (more than it
// keeps at once, which forces submits on the way) to three listeners: every
// one reaches the listener it named.
TEST(StreamSocket, ManyConnectsQueuedAtOnceEachReachTheirOwnAddress) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  constexpr int kListeners = 3;
  constexpr int kPerListener = 100;
  std::vector<test::Listener> ls;
  for (int i = 0; i < kListeners; ++i)
    ls.push_back(test::listen_loopback(256));
  std::vector<std::unique_ptr<EchoHandler>> hs;
  std::vector<std::unique_ptr<StreamSocket>> socks;
  for (int i = 0; i < kListeners * kPerListener; ++i) {
    hs.push_back(std::make_unique<EchoHandler>(0));
    socks.push_back(std::make_unique<StreamSocket>(**loop, *hs.back()));
    ASSERT_TRUE(socks.back()->connect(ls[static_cast<size_t>(i % kListeners)].addr, 5000));
  }
  ASSERT_TRUE(run_until(**loop, [&] {
    for (auto& h : hs)
      if (h->connect_err == -1) return false;
    return true;
  }));
  for (auto& h : hs)
    EXPECT_EQ(h->connect_err, 0);
  // Each listener holds exactly its own hundred (the kernel completed the
  // handshakes; accept them without blocking).
  for (auto& l : ls) {
    ASSERT_EQ(::fcntl(l.fd.get(), F_SETFL, O_NONBLOCK), 0);
    int accepted = 0;
    while (UniqueFd fd{::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)})
      ++accepted;
    EXPECT_EQ(accepted, kPerListener);
  }
  for (auto& s : socks)
    s->close();
  ASSERT_TRUE(run_until(**loop, [&] {
    for (auto& h : hs)
      if (!h->released) return false;
    return true;
  }));
}

// An owner that only counts what reaches it.
class CountingOwner : public Owner {
 public:
  CountingOwner() { bind<&CountingOwner::on_cqe>(c, Op::kRecv); }
  void on_cqe(const io_uring_cqe&) { ++delivered; }
  void on_released() override { released = true; }
  Completion c;
  int delivered = 0;
  bool released = false;
};

TEST(EventLoop, StaleCompletionForRecycledSlotIsDroppedAndItsBufferReturned) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  EventLoop& lp = **loop;
  CountingOwner a;
  lp.attach(a);
  const uint64_t old_ud = a.c.user_data();
  lp.retire(a);
  lp.run_once(false);
  ASSERT_TRUE(a.released);
  CountingOwner b;
  lp.attach(b);
  ASSERT_EQ(user_data::slot(b.c.user_data()), user_data::slot(old_ud)) << "slot not recycled";
  ASSERT_NE(b.c.user_data(), old_ud);

  // A recv submitted under a's old identity completes after b took the slot.
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd x(sv[0]), y(sv[1]);
  io_uring_sqe* s = lp.sqe();
  io_uring_prep_recv(s, x.get(), nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = lp.buffers().group_id();
  s->user_data = old_ud;
  ASSERT_EQ(::write(y.get(), "late", 4), 4);
  ASSERT_TRUE(run_until(
      lp, [&] { return lp.counters().stale_cqes == 1; }, 2000));
  EXPECT_EQ(lp.counters().stale_buffers, 1u);
  EXPECT_EQ(lp.buffers().in_use(), 0u);
  EXPECT_EQ(b.delivered, 0);
  lp.retire(b);
  lp.run_once(false);
  EXPECT_TRUE(b.released);
}

TEST(StreamSocket, ConnectTimeoutFires) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  // A listener that never accepts, with its backlog filled: further SYNs are
  // dropped, so a connect can only time out.
  auto l = test::listen_loopback(1);
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 8; ++i) {
    UniqueFd f(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ::connect(f.get(), l.addr.get(), l.addr.len());
    fillers.push_back(std::move(f));
  }
  EchoHandler h(0);
  StreamSocket s(**loop, h);
  const uint64_t t0 = clock::now_ns();
  ASSERT_TRUE(s.connect(l.addr, 300));
  ASSERT_TRUE(run_until(
      **loop, [&] { return h.connect_err != -1; }, 5000));
  const uint64_t ms = (clock::now_ns() - t0) / 1'000'000;
  EXPECT_EQ(h.connect_err, ETIMEDOUT);
  EXPECT_GE(ms, 250u);
  EXPECT_LT(ms, 3000u);
  s.close();
  ASSERT_TRUE(run_until(**loop, [&] { return h.released; }));
}

TEST(StreamSocket, ConnectRefusedReportsTheError) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  SocketAddress closed_port;
  {
    auto l = test::listen_loopback();
    closed_port = l.addr;
  }
  EchoHandler h(0);
  StreamSocket s(**loop, h);
  ASSERT_TRUE(s.connect(closed_port, 1000));
  ASSERT_TRUE(run_until(
      **loop, [&] { return h.connect_err != -1; }, 5000));
  EXPECT_EQ(h.connect_err, ECONNREFUSED);
  s.close();
  ASSERT_TRUE(run_until(**loop, [&] { return h.released; }));
}

TEST(StreamSocket, HalfCloseKeepsTheOtherDirectionOpen) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(32, 4096));
  ASSERT_TRUE(loop);
  auto l = test::listen_loopback();
  UniqueFd client = test::connect_blocking(l.addr);
  UniqueFd conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  struct NoEcho : EchoHandler {
    using EchoHandler::EchoHandler;
    void on_data(StreamSocket&, const IoBuf& b) override {
      received += b.len;
      StreamSocket::release(b);
    }
    void on_eof(StreamSocket&) override { eof = true; }  // keep our side open
  } h(0);
  StreamSocket s(**loop, h);
  s.open(std::move(conn));
  s.start_recv();
  ASSERT_EQ(::write(client.get(), "hello", 5), 5);
  ::shutdown(client.get(), SHUT_WR);
  ASSERT_TRUE(run_until(**loop, [&] { return h.eof; }));
  EXPECT_EQ(h.received, 5u);
  // After the client's FIN, the server still sends 1 MiB, then its own FIN.
  std::vector<uint8_t> payload(1 << 20);
  test::fill_pattern(3, 0, payload.data(), payload.size());
  int64_t got = 0, bad = -1;
  std::atomic<bool> read_done{false};
  std::thread reader([&] {
    got = test::read_check_pattern(client.get(), 3, 2 << 20, &bad);
    read_done = true;
  });
  for (size_t off = 0; off < payload.size(); off += 65536) {
    ASSERT_TRUE(s.send(IoBuf{payload.data() + off, 65536}));
  }
  s.shutdown_write();
  const bool finished = run_until(**loop, [&] { return read_done.load(); });
  if (!finished) ::shutdown(client.get(), SHUT_RDWR);
  reader.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(got, static_cast<int64_t>(payload.size())) << "bad byte at " << bad;
  s.close();
  ASSERT_TRUE(run_until(**loop, [&] { return h.released; }));
}

}  // namespace
}  // namespace egw::uring

// Acceptors across workers, the mailbox, the buffer ring and the splice relay,
// over real loopback sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "egw/clock.h"
#include "tests/support/test_util.h"
#include "uring/acceptor.h"
#include "uring/compat.h"
#include "uring/copy_relay.h"
#include "uring/event_loop.h"
#include "uring/mailbox.h"
#include "uring/net.h"
#include "uring/pipe_pool.h"
#include "uring/probe.h"
#include "uring/splice_relay.h"

namespace egw::uring {
namespace {

using test::run_until;

#define SKIP_WITHOUT_URING()                                                        \
  do {                                                                              \
    if (!features().available) GTEST_SKIP() << features().unavailable_reason;       \
    if (!features().buf_ring) GTEST_SKIP() << "kernel lacks provided buffer rings"; \
  } while (0)

// A worker thread: its own loop, a mailbox, and whatever setup runs on it.
class TestWorker {
 public:
  template <class Setup>
  explicit TestWorker(Setup setup) {
    thread_ = std::thread([this, setup] {
      auto loop = EventLoop::create(test::small_loop_options(64, 4096));
      if (!loop) {
        failed_ = true;
        ready_ = true;
        return;
      }
      Mailbox mb(**loop);
      mailbox_ = &mb;
      loop_ = loop->get();
      setup(**loop);
      ready_ = true;
      (void)(*loop)->run();
      mailbox_ = nullptr;
    });
    while (!ready_)
      std::this_thread::yield();
  }
  ~TestWorker() { stop(); }
  void post(Mailbox::Message m) { mailbox_->post(std::move(m)); }
  void stop() {
    if (thread_.joinable()) {
      if (!failed_) post([this] { loop_->stop(); });
      thread_.join();
    }
  }
  EventLoop* loop() { return loop_; }
  int ring_fd() const { return loop_->ring_fd(); }

 private:
  std::thread thread_;
  std::atomic<bool> ready_{false};
  bool failed_ = false;
  Mailbox* mailbox_ = nullptr;
  EventLoop* loop_ = nullptr;
};

TEST(Acceptor, ReuseportListenersSpreadConnectionsAcrossTwoWorkers) {
  SKIP_WITHOUT_URING();
  if (!features().multishot_accept) GTEST_SKIP() << "kernel lacks multishot accept";
  auto first = test::listen_loopback(512, true);
  const uint16_t port = first.addr.port();
  std::atomic<int> counts[2] = {0, 0};
  std::vector<std::unique_ptr<TestWorker>> workers;
  test::Listener listeners[2] = {std::move(first), test::listen_loopback(512, true, port)};
  std::unique_ptr<Acceptor> acceptors[2];
  for (int w = 0; w < 2; ++w) {
    workers.push_back(std::make_unique<TestWorker>([&, w](EventLoop& loop) {
      acceptors[w] = std::make_unique<Acceptor>(loop, listeners[w].fd.get(),
                                                [&counts, w](UniqueFd) { ++counts[w]; });
      acceptors[w]->start();
    }));
  }
  constexpr int kConns = 400;
  for (int i = 0; i < kConns; ++i)
    test::connect_blocking(listeners[0].addr);
  for (int spin = 0; spin < 500 && counts[0] + counts[1] < kConns; ++spin) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::atomic<int> stopped{0};
  for (int w = 0; w < 2; ++w) {
    workers[w]->post([&, w] { acceptors[w]->stop([&] { ++stopped; }); });
  }
  for (int spin = 0; spin < 500 && stopped < 2; ++spin) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(stopped.load(), 2);
  workers.clear();
  EXPECT_EQ(counts[0] + counts[1], kConns);
  // The kernel hashes the 4-tuple: both workers must get a fair share.
  EXPECT_GT(counts[0].load(), kConns / 4);
  EXPECT_GT(counts[1].load(), kConns / 4);
}

TEST(Mailbox, DeliversEachSendersMessagesInOrderAcrossThreads) {
  SKIP_WITHOUT_URING();
  constexpr int kSenders = 3;
  constexpr int kPerSender = 20000;
  std::vector<int> last(kSenders + 1, -1);
  std::atomic<int> delivered{0};
  std::atomic<int> out_of_order{0};
  TestWorker target([](EventLoop&) {});
  // Senders: plain threads (a private ring rings the doorbell) and one
  // thread that has its own event loop (its ring sends the MSG_RING).
  auto record = [&](int sender, int seq) {
    if (seq != last[sender] + 1) ++out_of_order;
    last[sender] = seq;
    ++delivered;
  };
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kPerSender; ++i)
        target.post([&record, s, i] { record(s, i); });
    });
  }
  std::atomic<bool> looped_done{false};
  TestWorker looped([&](EventLoop& loop) {
    loop.defer([&] {
      for (int i = 0; i < 1000; ++i)
        target.post([&record, i] { record(kSenders, i); });
      looped_done = true;
    });
  });
  for (auto& t : senders)
    t.join();
  for (int spin = 0; spin < 1000 && delivered < kSenders * kPerSender + 1000; ++spin) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  looped.stop();
  target.stop();
  EXPECT_TRUE(looped_done);
  EXPECT_EQ(delivered.load(), kSenders * kPerSender + 1000);
  EXPECT_EQ(out_of_order.load(), 0);
}

TEST(BufferRing, BundleIsWalkedInOrderAndEveryBufferComesBack) {
  SKIP_WITHOUT_URING();
  if (!features().recv_bundle) GTEST_SKIP() << "kernel lacks recv bundles";
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  EventLoop& lp = **loop;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::vector<uint8_t> data(10000);
  test::fill_pattern(11, 0, data.data(), data.size());
  ASSERT_EQ(::write(b.get(), data.data(), data.size()), 10000);

  struct Bundler : Owner {
    Bundler() { bind<&Bundler::on_cqe>(c, Op::kRecv); }
    void on_cqe(const io_uring_cqe& cqe) {
      unsigned in_this_cqe = 0;
      loop->buffers().consume(cqe, nullptr, [&](uint16_t bid, uint8_t* p, uint32_t len) {
        bids.push_back(bid);
        got.insert(got.end(), p, p + len);
        ++in_this_cqe;
      });
      max_per_cqe = std::max(max_per_cqe, in_this_cqe);
      done = true;
    }
    void on_released() override {}
    EventLoop* loop = nullptr;
    Completion c;
    std::vector<uint16_t> bids;
    std::vector<uint8_t> got;
    unsigned max_per_cqe = 0;
    bool done = false;
  } r;
  r.loop = &lp;
  lp.attach(r);
  // One-shot bundle recvs until every byte is in: each CQE may cover several
  // buffers, which consume() must walk in ring order.
  while (r.got.size() < data.size()) {
    r.done = false;
    io_uring_sqe* s = lp.sqe();
    io_uring_prep_recv(s, a.get(), nullptr, 0, 0);
    s->ioprio |= IORING_RECVSEND_BUNDLE;
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = lp.buffers().group_id();
    lp.arm(r.c, s);
    ASSERT_TRUE(run_until(lp, [&] { return r.done; }));
  }
  EXPECT_EQ(r.got, data);
  EXPECT_GE(r.max_per_cqe, 2u) << "no CQE carried a bundle";
  EXPECT_EQ(r.bids.size(), 3u);  // 4096 + 4096 + 1808 bytes
  EXPECT_EQ(lp.buffers().in_use(), 3u);
  for (uint16_t bid : r.bids)
    lp.buffers().release(bid);
  EXPECT_EQ(lp.buffers().in_use(), 0u);
  EXPECT_EQ(lp.buffers().free_count(), lp.buffers().count());
  lp.retire(r);
  lp.run_once(false);
}

// A loop that slept with no timer armed wakes for a completion: the handler
// must see the wake-up time in now_ms(), and a timeout it arms must count
// from then (not expire at once because the wheel's time was stale).
TEST(EventLoop, HandlersSeeTheWakeUpTimeAfterALongSleep) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  EventLoop& lp = **loop;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);

  struct Waker : Owner {
    Waker() { bind<&Waker::on_cqe>(c, Op::kPoll); }
    void on_cqe(const io_uring_cqe&) {
      seen_ms = loop->now_ms();
      loop->timers().schedule_after(timeout, 200);
    }
    void on_released() override {}
    EventLoop* loop = nullptr;
    Completion c;
    uring::Timer timeout;
    uint64_t seen_ms = 0;
    uint64_t fired_ms = 0;
  } w;
  w.loop = &lp;
  w.timeout.set_callback([&w] { w.fired_ms = clock::refresh() / 1'000'000u; });
  lp.attach(w);
  lp.run_once(false);
  const uint64_t start_ms = clock::refresh() / 1'000'000u;
  io_uring_sqe* s = lp.sqe();
  io_uring_prep_poll_add(s, a.get(), POLLIN);
  lp.arm(w.c, s);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    EXPECT_EQ(::write(b.get(), "x", 1), 1);
  });
  // No timer armed (run_until's tick would keep the wheel moving): the loop
  // sleeps in the kernel until the write.
  while (w.seen_ms == 0)
    ASSERT_TRUE(lp.run_once(true));
  writer.join();
  EXPECT_GE(w.seen_ms + 5, start_ms + 400)
      << "now_ms() in the handler is the time before the sleep";
  for (int i = 0; i < 1000 && w.fired_ms == 0; ++i)
    ASSERT_TRUE(lp.run_once(true));  // the timeout bounds each wait
  ASSERT_NE(w.fired_ms, 0u);
  EXPECT_GE(w.fired_ms, w.seen_ms + 200) << "a timeout armed after the sleep expired early";
  lp.retire(w);
  lp.run_once(false);
}

// --- splice relay ------------------------------------------------------------

struct RelayWatcher : RelayHandler {
  void on_relay_done(Relay& r, int e) override {
    done = true;
    err = e;
    r.close();
  }
  void on_relay_released(Relay&) override { released = true; }
  bool done = false;
  bool released = false;
  int err = -1;
};

// Connected pair over loopback TCP: {client end, accepted end}. The end at
// index `relay_end` is made non-blocking (the relay's side); the other stays
// blocking for the test's threads.
std::pair<UniqueFd, UniqueFd> tcp_pair(int relay_end) {
  auto l = test::listen_loopback();
  UniqueFd c = test::connect_blocking(l.addr);
  UniqueFd s(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  int fd = relay_end == 0 ? c.get() : s.get();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return {std::move(c), std::move(s)};
}

// Relays 100 MiB each way through `relay` and checks every byte.
void relay_100mib_both_ways(EventLoop& loop, Relay& relay, RelayWatcher& w) {
  auto [client, relay_a] = tcp_pair(1);  // client <-> relay side a
  auto [relay_b, server] = tcp_pair(0);  // relay side b <-> server

  constexpr uint64_t kTotal = 100ull << 20;
  int64_t c_got = 0, s_got = 0, c_bad = -1, s_bad = -1;
  std::thread c_writer([&] {
    test::write_pattern(client.get(), 101, kTotal);
    ::shutdown(client.get(), SHUT_WR);
  });
  std::thread c_reader(
      [&] { c_got = test::read_check_pattern(client.get(), 202, kTotal + 1, &c_bad); });
  std::thread s_writer([&] {
    test::write_pattern(server.get(), 202, kTotal);
    ::shutdown(server.get(), SHUT_WR);
  });
  std::thread s_reader(
      [&] { s_got = test::read_check_pattern(server.get(), 101, kTotal + 1, &s_bad); });

  relay.start(std::move(relay_a), std::move(relay_b));
  const bool finished = run_until(
      loop, [&] { return w.released; }, 120000);
  if (!finished) {
    ::shutdown(client.get(), SHUT_RDWR);
    ::shutdown(server.get(), SHUT_RDWR);
  }
  c_writer.join();
  c_reader.join();
  s_writer.join();
  s_reader.join();
  ASSERT_TRUE(finished) << "moved " << relay.bytes_a_to_b() << " / " << relay.bytes_b_to_a();
  EXPECT_EQ(w.err, 0);
  EXPECT_EQ(relay.bytes_a_to_b(), kTotal);
  EXPECT_EQ(relay.bytes_b_to_a(), kTotal);
  EXPECT_EQ(s_got, static_cast<int64_t>(kTotal)) << "server: bad byte at " << s_bad;
  EXPECT_EQ(c_got, static_cast<int64_t>(kTotal)) << "client: bad byte at " << c_bad;
}

TEST(SpliceRelay, Moves100MiBBothWaysByteExact) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  PipePool pipes(8);
  RelayWatcher w;
  SpliceRelay relay(**loop, pipes, w);
  relay_100mib_both_ways(**loop, relay, w);
  EXPECT_EQ(pipes.in_use(), 0u);
  EXPECT_LE(pipes.idle(), 2u);  // drained pipes kept for reuse
}

TEST(SpliceRelay, RelaysShareOnePipeAndIdleRelaysHoldNone) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  // One pipe for three relays, six directions: they must take turns.
  PipePool pipes(1);
  constexpr int kRelays = 3;
  constexpr uint64_t kTotal = 8ull << 20;
  RelayWatcher w[kRelays];
  std::vector<std::unique_ptr<SpliceRelay>> relays;
  std::vector<UniqueFd> clients, servers;
  std::vector<std::thread> threads;
  std::atomic<int> verified{0};
  for (int i = 0; i < kRelays; ++i) {
    auto [client, relay_a] = tcp_pair(1);
    auto [relay_b, server] = tcp_pair(0);
    relays.push_back(std::make_unique<SpliceRelay>(**loop, pipes, w[i]));
    relays.back()->start(std::move(relay_a), std::move(relay_b));
    clients.push_back(std::move(client));
    servers.push_back(std::move(server));
  }
  run_until(
      **loop, [&] { return false; }, 50);
  for (auto& r : relays)
    EXPECT_EQ(r->pipes_held(), 0u) << "an idle relay holds a pipe";
  for (int i = 0; i < kRelays; ++i) {
    int c = clients[static_cast<size_t>(i)].get(), s = servers[static_cast<size_t>(i)].get();
    threads.emplace_back([c, i] {
      test::write_pattern(c, 10 + static_cast<uint64_t>(i), kTotal);
      ::shutdown(c, SHUT_WR);
    });
    threads.emplace_back([s, i, &verified] {
      // Slow readers at first: pipes fill and stay held, so the other
      // relays must wait for the single pipe.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      if (test::read_check_pattern(s, 10 + static_cast<uint64_t>(i), kTotal + 1, nullptr) ==
          static_cast<int64_t>(kTotal)) {
        ++verified;
      }
      ::shutdown(s, SHUT_WR);
    });
  }
  const bool finished = run_until(
      **loop, [&] { return w[0].released && w[1].released && w[2].released; }, 60000);
  if (!finished) {
    for (auto& c : clients)
      ::shutdown(c.get(), SHUT_RDWR);
    for (auto& s : servers)
      ::shutdown(s.get(), SHUT_RDWR);
  }
  for (auto& t : threads)
    t.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(verified.load(), kRelays);
  EXPECT_EQ(pipes.in_use(), 0u);
  EXPECT_GT(pipes.exhausted(), 0u) << "the pool never ran out: the waiting path was not tested";
}

TEST(CopyRelay, Moves100MiBBothWaysByteExact) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(64, 16384));
  ASSERT_TRUE(loop);
  RelayWatcher w;
  CopyRelay relay(**loop, w);
  relay_100mib_both_ways(**loop, relay, w);
  EXPECT_EQ((*loop)->buffers().in_use(), 0u);
  EXPECT_EQ((*loop)->counters().stale_cqes, 0u);
}

TEST(SpliceRelay, HalfCloseOneWayWhileTheOtherKeepsFlowing) {
  SKIP_WITHOUT_URING();
  auto loop = EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  PipePool pipes(8);
  auto [client, relay_a] = tcp_pair(1);
  auto [relay_b, server] = tcp_pair(0);
  RelayWatcher w;
  SpliceRelay relay(**loop, pipes, w);
  relay.start(std::move(relay_a), std::move(relay_b));

  // The client sends a request and half-closes; the server sees EOF after it.
  ASSERT_EQ(::write(client.get(), "request", 7), 7);
  ::shutdown(client.get(), SHUT_WR);
  char buf[64];
  std::string req;
  std::thread server_read([&] {
    ssize_t n;
    while ((n = ::read(server.get(), buf, sizeof(buf))) > 0)
      req.append(buf, static_cast<size_t>(n));
  });
  ASSERT_TRUE(run_until(**loop, [&] { return relay.a_eof(); }));
  // The response still flows back after the client's FIN.
  std::vector<uint8_t> resp(300000);
  test::fill_pattern(5, 0, resp.data(), resp.size());
  int64_t got = 0, bad = -1;
  std::thread client_read([&] { got = test::read_check_pattern(client.get(), 5, 1 << 20, &bad); });
  std::thread server_write([&] {
    ASSERT_EQ(::write(server.get(), resp.data(), resp.size()), static_cast<ssize_t>(resp.size()));
    ::shutdown(server.get(), SHUT_WR);
  });
  ASSERT_TRUE(run_until(**loop, [&] { return w.released; }));
  server_read.join();
  server_write.join();
  client_read.join();
  EXPECT_EQ(req, "request");
  EXPECT_EQ(got, static_cast<int64_t>(resp.size())) << "bad byte at " << bad;
  EXPECT_EQ(w.err, 0);
}

TEST(PipePool, CapsPipesAndReusesOnlyEmptyOnes) {
  PipePool pool(2, 1 << 20);
  auto a = pool.get();
  auto b = pool.get();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(pool.get(), nullptr);
  EXPECT_EQ(pool.exhausted(), 1u);
  EXPECT_GE(a->capacity, 65536u);
  Pipe* raw = a.get();
  pool.put(std::move(a), true);
  pool.put(std::move(b), false);  // may hold bytes: closed, not kept
  EXPECT_EQ(pool.idle(), 1u);
  auto again = pool.get();
  EXPECT_EQ(again.get(), raw);
  pool.put(std::move(again), true);
}

}  // namespace
}  // namespace egw::uring

// egw-test-backend: a small, fast HTTP/1.1 origin on the engine, for
// integration tests and benchmarks.
//
//   egw-test-backend [--host 127.0.0.1] [--port 0] [--threads 1] [--body-size 100]
//                    [--stall-at-ms T --stall-ms D] [--work-us W]
//
// Prints "listening on HOST:PORT" (flushed) once every thread accepts, then
// serves until SIGINT/SIGTERM, then prints "served N requests" (requests
// whose response was sent or held by the stall) and exits 0. Every request
// (any method; a body framed by Content-Length or chunked is read and
// discarded) gets 200 with a body of --body-size bytes; keep-alive unless
// the request asks to close.
// Pipelined requests are answered in order.
//
// Stall: T ms after the first request (of any thread), the backend stops
// answering for D ms, once. Responses due during the stall are held, in
// order, and sent when it ends: delayed, never dropped. Requests are still
// read meanwhile.
//
// Work: --work-us W busy-spends W us of CPU on each request before answering,
// so that the backend, not the client, limits a closed-loop run (a fixed
// capacity of about 1/W per thread for comparing load generators).
//
// Each thread has its own event loop and SO_REUSEPORT listener; the response
// bytes are built once and sent from that shared memory (no copy per
// response).
#include <pthread.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "egw/address.h"
#include "egw/clock.h"
#include "egw/intrusive_list.h"
#include "egw/slab.h"
#include "proto/h1/body.h"
#include "proto/h1/parser.h"
#include "uring/acceptor.h"
#include "uring/event_loop.h"
#include "uring/net.h"
#include "uring/probe.h"
#include "uring/stream_socket.h"

namespace {

using namespace egw;
namespace h1 = egw::proto::h1;

struct BackendOptions {
  std::string host = "127.0.0.1";
  unsigned port = 0;
  unsigned threads = 1;
  uint64_t body_size = 100;
  int64_t stall_at_ms = -1;  // < 0: no stall
  uint64_t stall_ms = 0;
  uint64_t work_us = 0;  // CPU spent per request before answering
};

// Shared, read-only once the threads start.
struct Responses {
  std::string keep_alive;  // head + body
  size_t keep_alive_head = 0;
  std::string close;  // with "Connection: close"
  size_t close_head = 0;
};

std::string make_response(uint64_t body_size, bool close, size_t& head_len) {
  std::string r = "HTTP/1.1 200 OK\r\nServer: egw-test-backend\r\nContent-Type: text/plain\r\n";
  r += "Content-Length: " + std::to_string(body_size) + "\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  head_len = r.size();
  r.reserve(r.size() + body_size);
  for (uint64_t i = 0; i < body_size; ++i)
    r += static_cast<char>('a' + i % 26);
  return r;
}

BackendOptions g_options;
Responses g_responses;
// CLOCK_MONOTONIC of the first request any thread answered; 0 until then.
std::atomic<uint64_t> g_first_request_ns{0};
// Requests answered (or held by the stall), per thread: written only by its
// thread, read by the main thread at exit.
constexpr unsigned kMaxThreads = 64;
struct alignas(64) ServedCount {
  std::atomic<uint64_t> n{0};
};
ServedCount g_served[kMaxThreads];

constexpr h1::Limits kLimits{8192, 32768, 100};

class Worker;

class ServerConnection final : public uring::StreamSocketHandler {
 public:
  explicit ServerConnection(Worker& worker);
  void open(UniqueFd fd) {
    sock_.open(std::move(fd));
    sock_.start_recv();
  }
  // Sends the responses held by the stall, in order.
  void flush_owed();

  ListNode stall_node_;

 private:
  enum class Phase : uint8_t { kHead, kBody };

  void on_connected(uring::StreamSocket&, int) override {}
  void on_data(uring::StreamSocket& s, const uring::IoBuf& buf) override;
  void on_eof(uring::StreamSocket& s) override;
  void on_error(uring::StreamSocket&, int) override { close(); }
  void on_sent(uring::StreamSocket& s) override;
  void on_released(uring::StreamSocket&) override;

  // False once the connection is closing or has answered a request that
  // asked to close.
  bool consume(std::string_view in);
  void respond(bool head_only, bool close_after);
  void send_response(bool head_only, bool close_after);
  void close();

  Worker& worker_;
  uring::StreamSocket sock_;
  std::array<h1::Header, 100> headers_{};
  h1::RequestParser parser_;
  h1::BodyDecoder body_;
  Phase phase_ = Phase::kHead;
  bool head_only_ = false;  // the request being read is HEAD
  bool keep_alive_ = true;
  bool done_reading_ = false;  // answered (or will answer) a request that closes
  bool eof_ = false;
  bool closing_ = false;
  std::unique_ptr<char[]> scratch_;
  uint32_t scratch_len_ = 0;
  // Responses held by the stall: how many, and whether each is HEAD-only is
  // not kept (tests stall GET/POST traffic); the last may close.
  uint32_t owed_ = 0;
  bool owed_head_only_ = false;
  bool owed_close_ = false;
};

class Worker {
 public:
  Worker(uring::EventLoop& loop, int listen_fd, std::atomic<uint64_t>& served)
      : served_(served),
        loop_(loop),
        acceptor_(loop, listen_fd, [this](UniqueFd fd) { on_accept(std::move(fd)); }),
        conns_(256) {
    stall_timer_.set_callback([this] { end_stall(); });
    acceptor_.start();
  }

  uring::EventLoop& loop() { return loop_; }
  SlabPool<ServerConnection>& conns() { return conns_; }
  void count_request() {
    served_.store(served_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // Holds `c`'s responses until the stall that ends at `end_ns` is over.
  void hold(ServerConnection& c, uint64_t end_ns) {
    if (!c.stall_node_.linked()) stalled_.push_back(c);
    if (!stall_timer_.armed()) {
      loop_.timers().schedule(stall_timer_, (end_ns + 999'999) / 1'000'000);
    }
  }

 private:
  void on_accept(UniqueFd fd) {
    uring::tune_tcp(fd.get());
    ServerConnection* c = conns_.create(*this);
    c->open(std::move(fd));
  }
  void end_stall() {
    while (ServerConnection* c = stalled_.pop_front())
      c->flush_owed();
  }

  std::atomic<uint64_t>& served_;
  uring::EventLoop& loop_;
  uring::Acceptor acceptor_;
  SlabPool<ServerConnection> conns_;
  IntrusiveList<ServerConnection, &ServerConnection::stall_node_> stalled_;
  uring::Timer stall_timer_;
};

ServerConnection::ServerConnection(Worker& worker)
    : worker_(worker),
      sock_(worker.loop(), *this),
      parser_(kLimits, std::span<h1::Header>(headers_)) {}

void ServerConnection::on_data(uring::StreamSocket& s, const uring::IoBuf& buf) {
  if (!closing_ && !done_reading_) {
    consume(std::string_view(reinterpret_cast<const char*>(buf.data), buf.len));
  }
  uring::StreamSocket::release(buf);
  if (!closing_ && s.send_full()) s.pause_recv();
}

bool ServerConnection::consume(std::string_view in) {
  while (!in.empty()) {
    if (phase_ == Phase::kHead) {
      h1::ParseStatus st;
      std::string_view rest;
      if (scratch_len_ == 0) {
        st = parser_.parse(in);
        if (st == h1::ParseStatus::kIncomplete) {
          if (!scratch_) scratch_ = std::make_unique<char[]>(kLimits.max_head_bytes);
          std::memcpy(scratch_.get(), in.data(), in.size());
          scratch_len_ = static_cast<uint32_t>(in.size());
          return true;
        }
        if (st == h1::ParseStatus::kComplete) rest = in.substr(parser_.head_size());
      } else {
        const uint32_t old = scratch_len_;
        const size_t n = std::min<size_t>(in.size(), kLimits.max_head_bytes - old);
        std::memcpy(scratch_.get() + old, in.data(), n);
        scratch_len_ += static_cast<uint32_t>(n);
        st = parser_.parse(std::string_view(scratch_.get(), scratch_len_));
        if (st == h1::ParseStatus::kIncomplete) {
          if (n == in.size()) return true;
          st = h1::ParseStatus::kError;
        }
        if (st == h1::ParseStatus::kComplete) {
          rest = in.substr(parser_.head_size() - old);
          scratch_len_ = 0;
        }
      }
      if (st == h1::ParseStatus::kError) {
        close();  // a test backend need not explain a 400
        return false;
      }
      const h1::RequestHead& h = parser_.head();
      head_only_ = h.method == h1::Method::kHead;
      keep_alive_ = h.keep_alive;
      body_.start(h.body, h.content_length);
      phase_ = Phase::kBody;
      in = rest;
    }
    for (;;) {
      const h1::BodyDecoder::Step step = body_.feed(in);
      if (step.kind == h1::BodyDecoder::Step::kData ||
          step.kind == h1::BodyDecoder::Step::kTrailer) {
        in.remove_prefix(step.consumed);
        continue;
      }
      if (step.kind == h1::BodyDecoder::Step::kNeedMore) return true;
      if (step.kind == h1::BodyDecoder::Step::kError) {
        close();
        return false;
      }
      in.remove_prefix(step.consumed);  // kDone
      break;
    }
    respond(head_only_, !keep_alive_);
    if (closing_) return false;
    phase_ = Phase::kHead;
    parser_.reset();
    if (!keep_alive_) {
      done_reading_ = true;
      return false;
    }
  }
  return true;
}

void ServerConnection::respond(bool head_only, bool close_after) {
  worker_.count_request();
  if (g_options.work_us > 0) {
    // Simulated application work: busy, so the thread is the bottleneck.
    const uint64_t until = clock::now_ns() + g_options.work_us * 1000;
    while (clock::now_ns() < until) {
    }
  }
  const uint64_t now = clock::cached_ns();
  uint64_t first = g_first_request_ns.load(std::memory_order_relaxed);
  if (first == 0) {
    g_first_request_ns.compare_exchange_strong(first, now);
    first = g_first_request_ns.load(std::memory_order_relaxed);
  }
  if (g_options.stall_at_ms >= 0) {
    const uint64_t start = first + static_cast<uint64_t>(g_options.stall_at_ms) * 1'000'000;
    const uint64_t end = start + g_options.stall_ms * 1'000'000;
    // Responses queue behind held ones until the stall timer flushes them,
    // so order is kept even just after the stall ends.
    if ((now >= start && now < end) || owed_ > 0) {
      ++owed_;
      owed_head_only_ = head_only;
      owed_close_ = close_after;
      worker_.hold(*this, end);
      return;
    }
  }
  send_response(head_only, close_after);
}

void ServerConnection::send_response(bool head_only, bool close_after) {
  const std::string& r = close_after ? g_responses.close : g_responses.keep_alive;
  const size_t head = close_after ? g_responses.close_head : g_responses.keep_alive_head;
  const uring::IoBuf buf{reinterpret_cast<const uint8_t*>(r.data()),
                         static_cast<uint32_t>(head_only ? head : r.size()),
                         uring::BufferRing::kNoBuffer, nullptr};
  if (!sock_.send(buf)) return;
  if (close_after) sock_.shutdown_write();
}

void ServerConnection::flush_owed() {
  const uint32_t n = owed_;
  owed_ = 0;
  if (closing_) return;
  for (uint32_t i = 0; i < n; ++i) {
    const bool last = i + 1 == n;
    send_response(last && owed_head_only_, last && owed_close_);
  }
  if (eof_ && !sock_.write_shut()) sock_.shutdown_write();
}

void ServerConnection::on_eof(uring::StreamSocket&) {
  eof_ = true;
  if (owed_ > 0) return;  // answer what the stall holds first
  if (sock_.send_idle()) {
    close();
  } else {
    sock_.shutdown_write();  // on_sent closes once it is out
  }
}

void ServerConnection::on_sent(uring::StreamSocket& s) {
  if (closing_) return;
  if (s.write_shut() && s.send_idle()) {
    if (eof_ || done_reading_) close();
    return;
  }
  if (s.recv_paused() && !s.send_full()) s.resume_recv();
}

void ServerConnection::close() {
  if (closing_) return;
  closing_ = true;
  stall_node_.unlink();
  sock_.close();
}

void ServerConnection::on_released(uring::StreamSocket&) {
  worker_.conns().destroy(this);
}

int run(int argc, char** argv) {
  CLI::App app{"egw-test-backend: a fast HTTP/1.1 origin for tests and benchmarks"};
  BackendOptions& o = g_options;
  app.add_option("--host", o.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o.port, "port (0: any free one)")->capture_default_str();
  app.add_option("--threads", o.threads, "worker threads")->capture_default_str();
  app.add_option("--body-size", o.body_size, "response body bytes")->capture_default_str();
  app.add_option("--stall-at-ms", o.stall_at_ms, "stall this long after the first request");
  app.add_option("--stall-ms", o.stall_ms, "stall length (responses are delayed, not dropped)");
  app.add_option("--work-us", o.work_us,
                 "CPU time spent per request before answering (simulated application work)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "egw-test-backend: %s\n", e.what());
    return 2;
  }
  if (o.port > 65535 || o.threads == 0 || o.threads > kMaxThreads || o.body_size > (256u << 20) ||
      o.work_us > 1'000'000) {
    std::fprintf(stderr, "egw-test-backend: invalid --port, --threads or --body-size\n");
    return 2;
  }
  if ((o.stall_at_ms >= 0) != (o.stall_ms > 0)) {
    std::fprintf(stderr, "egw-test-backend: --stall-at-ms and --stall-ms go together\n");
    return 2;
  }
  if (!uring::features().available) {
    std::fprintf(stderr, "egw-test-backend: io_uring unavailable: %s\n",
                 uring::features().unavailable_reason.c_str());
    return 3;
  }
  g_responses.keep_alive = make_response(o.body_size, false, g_responses.keep_alive_head);
  g_responses.close = make_response(o.body_size, true, g_responses.close_head);

  const std::string spec = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
                           ":" + std::to_string(o.port);
  auto addr = SocketAddress::parse(spec);
  if (!addr) {
    std::fprintf(stderr, "egw-test-backend: invalid --host '%s'\n", o.host.c_str());
    return 2;
  }
  // One SO_REUSEPORT listener per thread, all on the port the first got.
  std::vector<UniqueFd> listeners;
  for (unsigned i = 0; i < o.threads; ++i) {
    auto fd = uring::listen_tcp(*addr, uring::ListenOptions{});
    if (!fd) {
      std::fprintf(stderr, "egw-test-backend: %s\n", fd.error().message().c_str());
      return 3;
    }
    if (i == 0) *addr = *SocketAddress::local_of(fd->get());
    listeners.push_back(std::move(*fd));
  }

  // Signals go to the main thread only (sigwait below).
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::atomic<unsigned> ready{0};
  std::atomic<bool> failed{false};
  for (unsigned i = 0; i < o.threads; ++i) {
    std::thread([&, i, fd = listeners[i].get()] {
      uring::LoopOptions lo;
      lo.buffers.count = 512;
      auto loop = uring::EventLoop::create(lo);
      if (!loop) {
        std::fprintf(stderr, "egw-test-backend: %s\n", loop.error().message().c_str());
        failed = true;
        ++ready;
        return;
      }
      Worker w(**loop, fd, g_served[i].n);
      ++ready;
      (void)(*loop)->run();
    }).detach();
  }
  while (ready.load() < o.threads)
    std::this_thread::yield();
  if (failed) return 3;
  std::printf("listening on %s\n", addr->to_string().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  uint64_t served = 0;
  for (unsigned i = 0; i < o.threads; ++i)
    served += g_served[i].n.load(std::memory_order_relaxed);
  std::printf("served %llu requests\n", static_cast<unsigned long long>(served));
  // Workers never stop on their own; leave without unwinding them.
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  return run(argc, argv);
}

#include "src/load/runner.h"

#include <fmt/format.h>
#include <sys/prctl.h>

#include <atomic>
#include <barrier>
#include <bit>
#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/load/client.h"
#include "src/tls/context.h"
#include "uring/event_loop.h"

namespace egw::load {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void on_stop_signal(int) {
  g_stop.store(true, std::memory_order_relaxed);
}

// All workers start this long after the last one is ready, so that none
// begins while another is still being scheduled onto a CPU.
constexpr uint64_t kStartDelayNs = 2'000'000;

// Provided buffers per worker: a few per connection (responses are read and
// handed back at once), at least 256 and at most 8192 of 16 KiB.
unsigned buffer_count(unsigned connections) {
  const unsigned want = std::bit_ceil(std::max(256u, std::min(8192u, connections * 8)));
  return std::min(8192u, want);
}

}  // namespace

void request_stop() {
  g_stop.store(true, std::memory_order_relaxed);
}

bool stop_requested() {
  return g_stop.load(std::memory_order_relaxed);
}

void install_stop_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

std::expected<RunResult, std::string> run_load(const Options& o, double rate,
                                               std::string_view request) {
  const unsigned threads = o.threads;
  std::vector<std::unique_ptr<Stats>> stats;
  for (unsigned i = 0; i < threads; ++i)
    stats.push_back(std::make_unique<Stats>());

  std::atomic<bool> failed{false};
  std::mutex error_mu;
  std::string error;
  auto set_error = [&](std::string e) {
    std::lock_guard lock(error_mu);
    if (error.empty()) error = std::move(e);
    failed = true;
  };
  std::atomic<uint64_t> t0{0};
  std::barrier ready(static_cast<std::ptrdiff_t>(threads),
                     [&t0]() noexcept { t0 = clock::now_ns() + kStartDelayNs; });

  std::shared_ptr<tls::ClientContext> tls_context;
  if (o.target.tls) {
    tls::ClientOptions co;
    co.ca_file = o.tls.cacert;
    co.verify = !o.tls.insecure;
    co.sni = o.tls.sni;
    co.alpn = {o.tls.alpn};
    co.cipher_list = o.tls.ciphers;
    std::string detail;
    auto ctx = tls::ClientContext::create(co, &detail);
    if (!ctx) return std::unexpected("TLS: " + (detail.empty() ? ctx.error().message() : detail));
    tls_context = std::move(*ctx);
  }

  std::vector<std::thread> workers;
  for (unsigned i = 0; i < threads; ++i) {
    WorkerPlan plan;
    plan.options = &o;
    plan.tls = tls_context.get();
    plan.request = request;
    plan.method = proto::h1::parse_method(o.method);
    plan.index = i;
    plan.connections = o.connections / threads + (i < o.connections % threads ? 1 : 0);
    plan.streams = o.h2 ? o.streams : 1;
    plan.rate = rate / threads;
    plan.phase = static_cast<double>(i) / threads;
    plan.seed = o.seed * 0x9e3779b97f4a7c15ull + i;
    workers.emplace_back([&, plan, i] {
      // Sleep no longer than asked: the default 50 us timer slack would be
      // added to every wake-up at an intended send time.
      ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
      log::set_thread_tag(fmt::format("w{}", i));
      uring::LoopOptions lo;
      lo.buffers.count = buffer_count(plan.connections);
      auto loop = uring::EventLoop::create(lo);
      if (!loop) {
        set_error(fmt::format("worker {}: cannot create its io_uring event loop: {}", i,
                              loop.error().message()));
        ready.arrive_and_wait();
        return;
      }
      {
        Client client(**loop, plan, *stats[i]);
        client.setup();
        ready.arrive_and_wait();
        if (failed) {
          client.close();
        } else if (!client.run(t0.load())) {
          set_error(fmt::format("worker {}: the io_uring event loop failed", i));
        }
      }
      tls::release_thread_state();
    });
  }
  for (auto& t : workers)
    t.join();
  if (failed) return std::unexpected(error);

  RunResult r;
  for (auto& s : stats)
    r.stats.merge(*s);
  const Stats& st = r.stats;
  r.target_rate = o.open_loop() ? rate : 0;
  r.interrupted = stop_requested();
  const uint64_t end = std::max(st.window_end_ns, st.last_completion_ns);
  r.elapsed_s = end > st.window_start_ns ? static_cast<double>(end - st.window_start_ns) / 1e9 : 0;
  r.achieved_rate = r.elapsed_s > 0 ? static_cast<double>(st.requests) / r.elapsed_s : 0;

  if (o.open_loop() && r.achieved_rate < 0.9 * r.target_rate && !r.interrupted &&
      st.transport_errors() > 0) {
    r.warnings.push_back(
        fmt::format("achieved {:.0f} req/s of the {:.0f} req/s target: {} measured requests failed "
                    "(see Errors)",
                    r.achieved_rate, r.target_rate, st.transport_errors()));
  } else if (o.open_loop() && r.achieved_rate < 0.9 * r.target_rate && !r.interrupted) {
    r.warnings.push_back(fmt::format(
        "achieved {:.0f} req/s, {:.0f}% of the {:.0f} req/s target: the server (or the generator) "
        "fell behind; the latencies include the backlog that built up",
        r.achieved_rate, 100 * r.achieved_rate / r.target_rate, r.target_rate));
  }
  const uint64_t lag_p99 = st.lag.value_at_percentile(99);
  if (o.open_loop() && lag_p99 > 1000) {
    r.warnings.push_back(fmt::format(
        "the generator itself sent requests late (p99 {} us after their intended time while a "
        "connection was free): it is short of CPU; try more --threads, fewer --connections or "
        "a lower --rate (the latencies still include this lag)",
        lag_p99));
  }
  if (st.setup_failures > 0) {
    r.warnings.push_back(fmt::format(
        "{} of {} connections could not be opened at start-up ({}); requests assigned to them "
        "connect again",
        st.setup_failures, o.connections, std::strerror(st.setup_errno)));
  }
  if (const uint64_t u = st.error(ErrorKind::kUnfinished); u > 0) {
    r.warnings.push_back(fmt::format(
        "{} measured requests were still unsent or unanswered when the drain deadline (the end "
        "of the run plus --timeout) passed; they are counted as errors, not latencies",
        u));
  }
  if (r.interrupted) r.warnings.push_back("interrupted: the measured window was cut short");
  return r;
}

}  // namespace egw::load

// Server::render_metrics: the Prometheus exposition of the running process.
// Counters that are atomics (worker stats, endpoint state) are read from
// here; what only a worker may read (its latency histograms, its ring's
// counters) each worker publishes itself, reduced to the exported buckets,
// every kMetricsPublishMs while it is busy; the scrape copies the last
// publication under the worker's metrics lock and never waits for it.
#include <sys/resource.h>
#include <unistd.h>

#include <dirent.h>
#include <fmt/format.h>
#include <chrono>
#include <cstdio>

#include "egw/clock.h"
#include "src/server/server.h"
#include "src/server/worker.h"
#include "uring/completion.h"

namespace egw::server {

namespace {

uint64_t open_fds() {
  uint64_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    if (n) --n;  // the directory's own descriptor
  }
  return n;
}

uint64_t rss_bytes() {
  unsigned long size = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

void Server::publish_runtime() {
  std::lock_guard<std::mutex> lock(published_mu_);
  published_ = runtime_;
  published_generation_ = generation_;
}

std::string Server::render_metrics() {
  RuntimePtr rt;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(published_mu_);
    rt = published_;
    generation = published_generation_;
  }
  // What each worker published last (every 250 ms while it is busy): the
  // scrape copies it and never waits for a worker.
  const uint64_t now_ms = clock::now_ns() / 1'000'000u;
  std::vector<WorkerMetrics> published(workers_.size());
  std::vector<bool> fresh(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    const uint64_t at = workers_[i]->published_metrics(published[i]);
    fresh[i] = at != 0 && now_ms - at < 4 * kMetricsPublishMs + 1000;
  }

  stats::Exposition x;
  x.family("egw_build_info", "gauge", "The running version.");
  x.sample("egw_build_info", {{"version", EGW_VERSION}}, uint64_t{1});
  x.family("egw_config_generation", "gauge",
           "Configuration generation (1 at start, +1 per reload).");
  x.sample("egw_config_generation", {}, generation);
  x.family("egw_workers", "gauge", "Worker threads.");
  x.sample("egw_workers", {}, static_cast<uint64_t>(workers_.size()));
  x.family("egw_worker_responsive", "gauge",
           "1 when the worker's event loop published its figures within the last 2 s (they "
           "are its last ones otherwise).");
  for (size_t i = 0; i < workers_.size(); ++i)
    x.sample("egw_worker_responsive", {{"worker", std::to_string(i)}},
             uint64_t{fresh[i] ? 1u : 0u});

  // Worker counters (atomics), summed.
  auto sum = [&](auto member) {
    uint64_t n = 0;
    for (const auto& w : workers_)
      n += (w->stats().*member).load(std::memory_order_relaxed);
    return n;
  };
  using S = stats::WorkerStats;
  struct Counter {
    const char* name;
    const char* help;
    std::atomic<uint64_t> S::*member;
  };
  static const Counter kCounters[] = {
      {"egw_sessions_accepted_total", "Connections accepted (every listener).", &S::accepted},
      {"egw_connect_failures_total", "Upstream connects that failed.", &S::connect_failures},
      {"egw_retries_total", "Upstream connects retried.", &S::retries},
      {"egw_queued_total", "Sessions and requests that waited for maxconn.", &S::queued},
      {"egw_queue_timeouts_total", "Waits for maxconn that timed out.", &S::queue_timeouts},
      {"egw_idle_timeouts_total", "L4 sessions closed idle.", &S::idle_timeouts},
      {"egw_http_requests_total", "HTTP requests (every version).", &S::http_requests},
      {"egw_http_proxy_errors_total", "Requests the proxy answered with an error status itself.",
       &S::http_errors},
      {"egw_http_tunnels_total", "WebSocket and CONNECT tunnels opened.", &S::tunnels},
      {"egw_http_request_timeouts_total", "Request heads not complete in time (408).",
       &S::request_timeouts},
      {"egw_http_response_timeouts_total", "Endpoints that did not answer in time (504).",
       &S::response_timeouts},
      {"egw_http_slow_bodies_total", "Request bodies below min_request_body_rate.",
       &S::slow_bodies},
      {"egw_upstream_connects_total", "New HTTP connections to endpoints.", &S::upstream_connects},
      {"egw_upstream_reused_total", "Requests sent on a kept-alive endpoint connection.",
       &S::upstream_reused},
      {"egw_upstream_refused_streams_total", "HTTP/2 streams refused unprocessed and sent again.",
       &S::upstream_refused},
      {"egw_tls_handshakes_total", "TLS handshakes completed with clients.", &S::tls_handshakes},
      {"egw_tls_resumed_total", "... of which resumed.", &S::tls_resumed},
      {"egw_tls_failures_total", "Failed TLS handshakes with clients.", &S::tls_failures},
      {"egw_tls_timeouts_total", "TLS handshakes with clients past handshake_timeout_ms.",
       &S::tls_timeouts},
      {"egw_tls_upstream_handshakes_total", "TLS handshakes completed with endpoints.",
       &S::tls_upstream_handshakes},
      {"egw_tls_upstream_failures_total", "Failed TLS handshakes with endpoints.",
       &S::tls_upstream_failures},
      {"egw_proxy_protocol_headers_total", "PROXY protocol headers accepted.", &S::proxy_headers},
      {"egw_proxy_protocol_untrusted_total", "Connections closed: source not in trusted.",
       &S::proxy_untrusted},
      {"egw_proxy_protocol_invalid_total", "Connections closed: bad or cut PROXY header.",
       &S::proxy_invalid},
      {"egw_proxy_protocol_timeouts_total", "Connections closed: no whole PROXY header in time.",
       &S::proxy_timeouts},
      {"egw_access_log_lines_total", "Access log lines written into a buffer.",
       &S::access_log_lines},
      {"egw_access_log_dropped_total",
       "Access log lines lost: the buffer was full, or their write failed.",
       &S::access_log_dropped},
      {"egw_access_log_write_errors_total", "Access log writes that failed.",
       &S::access_log_write_errors},
  };
  for (const Counter& c : kCounters) {
    x.family(c.name, "counter", c.help);
    x.sample(c.name, {}, sum(c.member));
  }
  x.family("egw_sessions_active", "gauge", "Sessions open now (every listener).");
  x.sample("egw_sessions_active", {}, sum(&S::active));
  x.family("egw_refused_total", "counter", "Sessions and requests refused at once.");
  x.sample("egw_refused_total", {{"reason", "no_endpoint"}}, sum(&S::refused_no_endpoint));
  x.sample("egw_refused_total", {{"reason", "queue_full"}}, sum(&S::refused_queue_full));
  x.family("egw_bytes_total", "counter", "L4 bytes relayed.");
  x.sample("egw_bytes_total", {{"direction", "in"}}, sum(&S::bytes_in));
  x.sample("egw_bytes_total", {{"direction", "out"}}, sum(&S::bytes_out));
  x.family("egw_http_responses_total", "counter", "HTTP responses by status class.");
  for (int c = 1; c <= 5; ++c) {
    uint64_t n = 0;
    for (const auto& w : workers_)
      n += w->stats().http_status[c].load(std::memory_order_relaxed);
    x.sample("egw_http_responses_total", {{"class", fmt::format("{}xx", c)}}, n);
  }

  // Endpoints (shared state: atomics).
  x.family("egw_endpoint_up", "gauge", "1 when the endpoint is up (health checks, passive marks).");
  for (const auto& c : rt->clusters)
    for (size_t i = 0; i < c->size(); ++i)
      x.sample("egw_endpoint_up",
               {{"cluster", c->name()}, {"endpoint", c->endpoint_config(i).address_text}},
               uint64_t{c->endpoint(i).up() ? 1u : 0u});
  x.family("egw_endpoint_active", "gauge",
           "Sessions and requests holding a slot of the endpoint now (what maxconn counts).");
  for (const auto& c : rt->clusters)
    for (size_t i = 0; i < c->size(); ++i)
      x.sample("egw_endpoint_active",
               {{"cluster", c->name()}, {"endpoint", c->endpoint_config(i).address_text}},
               uint64_t{c->endpoint(i).active()});
  x.family("egw_endpoint_sessions_total", "counter", "Sessions and requests sent to the endpoint.");
  for (const auto& c : rt->clusters)
    for (size_t i = 0; i < c->size(); ++i)
      x.sample("egw_endpoint_sessions_total",
               {{"cluster", c->name()}, {"endpoint", c->endpoint_config(i).address_text}},
               c->endpoint(i).sessions.load(std::memory_order_relaxed));
  x.family("egw_endpoint_connect_failures_total", "counter",
           "Connects to the endpoint that failed.");
  for (const auto& c : rt->clusters)
    for (size_t i = 0; i < c->size(); ++i)
      x.sample("egw_endpoint_connect_failures_total",
               {{"cluster", c->name()}, {"endpoint", c->endpoint_config(i).address_text}},
               c->endpoint(i).connect_failures.load(std::memory_order_relaxed));
  x.family("egw_endpoint_bytes_total", "counter", "L4 bytes to and from the endpoint.");
  for (const auto& c : rt->clusters) {
    for (size_t i = 0; i < c->size(); ++i) {
      const std::string& addr = c->endpoint_config(i).address_text;
      x.sample("egw_endpoint_bytes_total",
               {{"cluster", c->name()}, {"endpoint", addr}, {"direction", "to"}},
               c->endpoint(i).bytes_to.load(std::memory_order_relaxed));
      x.sample("egw_endpoint_bytes_total",
               {{"cluster", c->name()}, {"endpoint", addr}, {"direction", "from"}},
               c->endpoint(i).bytes_from.load(std::memory_order_relaxed));
    }
  }

  // Latency by phase, merged over every worker's last publication.
  std::map<std::string, WorkerMetrics::Phases> listeners, clusters;
  std::map<std::string, WorkerMetrics::Responses> listener_responses, cluster_responses;
  uring::LoopCounters loop;
  uint64_t buffers_in_use = 0, buffers = 0, chunks = 0;
  for (size_t i = 0; i < published.size(); ++i) {
    const WorkerMetrics& w = published[i];
    for (const auto& [name, p] : w.listeners)
      for (size_t k = 0; k < p.size(); ++k)
        listeners[name][k].add(p[k]);
    for (const auto& [name, p] : w.clusters)
      for (size_t k = 0; k < p.size(); ++k)
        clusters[name][k].add(p[k]);
    auto add = [](std::map<std::string, WorkerMetrics::Responses>& to,
                  const std::map<std::string, WorkerMetrics::Responses>& from) {
      for (const auto& [name, r] : from)
        for (size_t p = 0; p < 2; ++p)
          for (size_t c = 0; c < 6; ++c)
            to[name][p][c] += r[p][c];
    };
    add(listener_responses, w.listener_responses);
    add(cluster_responses, w.cluster_responses);
    for (size_t k = 0; k < loop.sqes.size(); ++k)
      loop.sqes[k] += w.loop.sqes[k];
    loop.enters += w.loop.enters;
    loop.cqes += w.loop.cqes;
    loop.cq_overflows += w.loop.cq_overflows;
    loop.enobufs += w.loop.enobufs;
    buffers_in_use += w.buffers_in_use;
    buffers += w.buffers;
    chunks += w.chunks_in_use;
  }
  auto responses = [&](const char* family, const char* key, const char* help,
                       const std::map<std::string, WorkerMetrics::Responses>& by_name) {
    x.family(family, "counter", help);
    for (const auto& [name, r] : by_name)
      for (size_t p = 0; p < 2; ++p)
        for (size_t c = 1; c <= 5; ++c)
          x.sample(
              family,
              {{key, name}, {"protocol", p ? "h2" : "http1"}, {"class", fmt::format("{}xx", c)}},
              r[p][c]);
  };
  responses("egw_listener_responses_total", "listener",
            "Responses to clients by their protocol and status class.", listener_responses);
  responses("egw_cluster_responses_total", "cluster",
            "Final responses for requests routed to the cluster (the endpoints' and the proxy's "
            "own errors), by the protocol spoken to its endpoints and status class.",
            cluster_responses);
  x.family("egw_listener_phase_seconds", "histogram",
           "Latency by phase per listener: accept_to_headers, tls_handshake, queue_wait, "
           "connect, ttfb, total.");
  for (const auto& [name, p] : listeners)
    for (size_t k = 0; k < p.size(); ++k)
      x.histogram("egw_listener_phase_seconds",
                  {{"listener", name}, {"phase", stats::to_string(static_cast<stats::Phase>(k))}},
                  p[k]);
  x.family("egw_cluster_phase_seconds", "histogram",
           "Latency by phase per cluster: queue_wait, connect, ttfb, total.");
  for (const auto& [name, p] : clusters)
    for (size_t k = 0; k < p.size(); ++k)
      x.histogram("egw_cluster_phase_seconds",
                  {{"cluster", name}, {"phase", stats::to_string(static_cast<stats::Phase>(k))}},
                  p[k]);

  // io_uring.
  x.family("egw_uring_sqes_total", "counter", "Submission queue entries by operation.");
  for (size_t k = 1; k < loop.sqes.size(); ++k)
    x.sample("egw_uring_sqes_total", {{"op", uring::to_string(static_cast<uring::Op>(k))}},
             loop.sqes[k]);
  x.family("egw_uring_enters_total", "counter", "io_uring_enter system calls.");
  x.sample("egw_uring_enters_total", {}, loop.enters);
  x.family("egw_uring_cqes_total", "counter", "Completions handled.");
  x.sample("egw_uring_cqes_total", {}, loop.cqes);
  x.family("egw_uring_cq_overflows_total", "counter", "Completion queue overflows (stays 0).");
  x.sample("egw_uring_cq_overflows_total", {}, loop.cq_overflows);
  x.family("egw_uring_receivers_parked_total", "counter",
           "Receivers that waited for a free receive buffer.");
  x.sample("egw_uring_receivers_parked_total", {}, loop.enobufs);
  x.family("egw_receive_buffers", "gauge", "Provided receive buffers (all workers).");
  x.sample("egw_receive_buffers", {{"state", "in_use"}}, buffers_in_use);
  x.sample("egw_receive_buffers", {{"state", "total"}}, buffers);
  x.family("egw_chunks_in_use", "gauge", "Worker output chunks in use.");
  x.sample("egw_chunks_in_use", {}, chunks);

  // The process, by Prometheus' own names.
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  x.family("process_cpu_seconds_total", "counter", "User and system CPU time.");
  x.sample("process_cpu_seconds_total", {}, cpu);
  x.family("process_resident_memory_bytes", "gauge", "Resident memory.");
  x.sample("process_resident_memory_bytes", {}, rss_bytes());
  x.family("process_open_fds", "gauge", "Open file descriptors.");
  x.sample("process_open_fds", {}, open_fds());
  x.family("process_max_fds", "gauge", "The descriptor limit.");
  x.sample("process_max_fds", {}, static_cast<uint64_t>(nofile.rlim_cur));
  x.family("process_start_time_seconds", "gauge", "Start time, seconds since the epoch.");
  x.sample("process_start_time_seconds", {}, start_time_s_);
  return x.text();
}

}  // namespace egw::server

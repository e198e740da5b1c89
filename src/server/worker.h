// Worker: one thread, one io_uring event loop, its own listeners (one
// SO_REUSEPORT socket per bind address), sessions, pipes, timers and
// counters. Other threads reach it only through its mailbox.
//
// A worker runs on the runtime snapshot it was last given; sessions keep the
// snapshot they started on (WorkerSnapshot, counted) until they end, so a
// reload never changes a session in flight.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "egw/intrusive_list.h"
#include "egw/slab.h"
#include "src/accesslog/writer.h"
#include "src/downstream/connection.h"
#include "src/downstream/h1_session.h"
#include "src/downstream/h2_session.h"
#include "src/downstream/proxy_reader.h"
#include "src/downstream/tcp_session.h"
#include "src/proxy/exchange.h"
#include "src/route/router.h"
#include "src/server/runtime.h"
#include "src/stats/counters.h"
#include "src/stats/latency.h"
#include "src/stats/prometheus.h"
#include "src/upstream/cluster.h"
#include "src/upstream/context.h"
#include "src/upstream/h2_connection.h"
#include "src/upstream/health_check.h"
#include "src/upstream/http_connection.h"
#include "src/upstream/pool.h"
#include "src/upstream/worker_cluster.h"
#include "uring/acceptor.h"
#include "uring/event_loop.h"
#include "uring/mailbox.h"
#include "uring/pipe_pool.h"

namespace egw::server {

class Server;

using stats::WorkerStats;
using upstream::WorkerCluster;

struct WorkerSnapshot {
  RuntimePtr runtime;
  std::vector<std::unique_ptr<WorkerCluster>> clusters;  // parallel to runtime->clusters
  std::vector<std::unique_ptr<route::Router>> routers;   // parallel to config->listeners
  std::vector<stats::PhaseLatency*> listener_latency;    // parallel to config->listeners
  // Parallel to config->listeners: what an HTTP exchange sees of its
  // listener (null for tcp listeners).
  std::vector<std::unique_ptr<proxy::ListenerView>> http_listeners;
  // Parallel to config->listeners: this worker's writer of the listener's
  // access log, and its format (null: none).
  std::vector<accesslog::Writer*> access_logs;
  uint32_t sessions = 0;
};

// What a worker publishes for metrics scrapes (computed on its own thread
// every kMetricsPublishMs when it did anything; a scrape copies it and never
// waits for the worker).
inline constexpr uint64_t kMetricsPublishMs = 250;
struct WorkerMetrics {
  using Phases = std::array<stats::LatencyBuckets, static_cast<size_t>(stats::Phase::kCount)>;
  std::map<std::string, Phases> listeners, clusters;         // by name
  using Responses = std::array<std::array<uint64_t, 6>, 2>;  // protocol, status class
  std::map<std::string, Responses> listener_responses, cluster_responses;
  uring::LoopCounters loop;
  uint64_t buffers_in_use = 0, buffers = 0, chunks_in_use = 0;
};

// What a worker hands the admin API's `show stats`: its counters by
// listener and cluster name (kept across reloads), and its sessions open now
// per listener.
struct WorkerCounts {
  struct Named {
    std::array<std::array<uint64_t, 6>, 2> responses{};  // protocol, status class
    uint64_t accepted = 0, connect_failures = 0, retries = 0, refused = 0, queue_timeouts = 0;
    uint64_t active = 0;  // listeners: sessions open now
  };
  std::map<std::string, Named> listeners, clusters;
};

// `show sessions`: counts by protocol and state, and (verbose) up to a limit
// of sessions listed one by one.
struct WorkerSessions {
  struct Row {
    std::string listener;
    const char* protocol;
    const char* state;
    SocketAddress peer;
    uint64_t age_ms;
    uint32_t streams;
  };
  std::map<std::pair<std::string, std::string>, uint64_t> by_state;  // (protocol, state)
  std::map<std::string, uint64_t> by_listener;
  std::vector<Row> rows;
  uint64_t total = 0;
};

class Worker final : public upstream::Context {
 public:
  Worker(Server& server, unsigned index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // -- control thread ----------------------------------------------------------
  // Starts the thread on `rt`; returns once it runs (false if its event loop
  // could not be created: the error is logged).
  bool start(RuntimePtr rt);
  bool post(uring::Mailbox::Message m);
  void join();
  unsigned index() const { return index_; }
  const WorkerStats& stats() const { return stats_; }
  bool finished() const { return finished_.load(); }
  // What the worker published last for metrics (copied under its lock),
  // and when (CLOCK_MONOTONIC ms; 0: never). Any thread.
  uint64_t published_metrics(WorkerMetrics& out) const;

  // -- worker thread (through post) ---------------------------------------------
  void apply(RuntimePtr rt);
  // Stops accepting and lets sessions finish; after `grace_ms` the rest are
  // closed. The thread ends when no session is left. Connections accepted
  // while it stops are served as draining ones; a second drain with 0
  // closes every session at once.
  void drain(uint32_t grace_ms);
  // A slot on one of `c`'s endpoints freed on another worker and this one
  // has sessions waiting.
  void kick(const upstream::Cluster* c);
  // Logs this worker's counters (SIGUSR1, and at exit).
  void log_stats();
  // Fills `out` for a metrics scrape. Runs on the worker thread.
  void collect_metrics(WorkerMetrics& out);
  // The admin API (worker thread): counters, and the sessions open now
  // (a walk over them: about a microsecond per hundred).
  void collect_counts(WorkerCounts& out);
  void collect_sessions(WorkerSessions& out, uint32_t limit);
  // An operator raised a limit or readied an endpoint of cluster `name`:
  // whoever waits for a slot of it tries again now.
  void wake_waiters(const std::string& name);
  // Adds this worker's latency histograms into `listeners` / `clusters` (by
  // name). Runs on the worker thread; the caller serialises the merging.
  void merge_latency(std::map<std::string, stats::PhaseLatency>& listeners,
                     std::map<std::string, stats::PhaseLatency>& clusters);

  // -- for sessions (worker thread) -----------------------------------------------
  uring::EventLoop& loop() override { return *loop_; }
  uring::PipePool& pipes() { return *pipes_; }
  WorkerStats& stats() override { return stats_; }
  unsigned worker_index() const override { return index_; }
  void session_ended(downstream::TcpSession& s, WorkerSnapshot& snap);
  void session_ended(downstream::Connection& c, WorkerSnapshot& snap);
  // A PROXY protocol header was read (or not): the session starts, or the
  // connection closes. Destroys `r`.
  void proxy_read(downstream::ProxyReader& r);
  SlabPool<downstream::H1Session>& http_sessions() { return *http_sessions_; }
  SlabPool<downstream::H2Session>& h2_sessions() { return *h2_sessions_; }
  SlabPool<downstream::H2Stream>& h2_streams() { return *h2_streams_; }
  // Field storage of closed HTTP/2 streams, handed to new ones: vectors that
  // keep their room, so warm streams allocate nothing (capacity: the cap).
  std::vector<proto::h2::Stream>& h2_spare_streams() { return h2_spare_streams_; }
  SlabPool<upstream::HeaderBlock>& header_blocks() { return *header_blocks_; }
  SlabPool<proxy::Exchange>& exchanges() { return *exchanges_; }
  SlabPool<downstream::H1Request>& h1_requests() { return *h1_requests_; }
  upstream::Pool& http_pool(const std::shared_ptr<upstream::EndpointState>& ep,
                            const tls::ClientContext* tls) override;
  upstream::H2Pool& h2_pool(const std::shared_ptr<upstream::EndpointState>& ep,
                            tls::ClientContext* tls) override;
  upstream::HttpConnection* new_http_connection(std::shared_ptr<upstream::EndpointState> ep,
                                                upstream::Pool* pool) override;
  void slot_freed(WorkerCluster& wc) override;
  bool draining() const { return draining_; }
  // While draining: how long an idle keep-alive connection (or one that has
  // sent nothing yet) is kept for a last request, which is answered with
  // Connection: close: [global] drain_idle_ms, at most half the grace period.
  uint64_t drain_idle_ms() const { return drain_idle_ms_; }

 private:
  struct ListenerEntry {
    std::shared_ptr<BindSockets> sockets;
    std::unique_ptr<uring::Acceptor> acceptor;
    size_t listener = 0;  // index into the snapshot's config->listeners
    bool stopping = false;
  };

  void run(RuntimePtr rt);
  void on_accept(ListenerEntry& e, UniqueFd fd);
  // Creates and starts the session of listener `l` on `fd`; null when none
  // could be had (fd closed).
  downstream::Session* start_session(WorkerSnapshot& snap, size_t l, UniqueFd fd,
                                     const downstream::Proxied* proxied);
  void session_destroyed(WorkerSnapshot& snap);
  void reconcile_listeners();
  void reconcile_health_checks();
  // Writers for the access logs of `snap` (made on first use of a file);
  // closes those no snapshot names any more.
  void attach_access_logs(WorkerSnapshot& snap);
  void close_unused_access_logs(bool all = false);
  void stop_listener(ListenerEntry& e, bool close_socket);
  void pause_accepting(bool pause);
  void release_snapshots();
  void maybe_finish();
  // The metrics timer: publishes what changed since the last time.
  void publish_metrics();

  Server& server_;
  const unsigned index_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> finished_{false};
  uring::Mailbox* mailbox_ = nullptr;

  // Worker-thread state.
  std::unique_ptr<uring::EventLoop> loop_;
  std::unique_ptr<uring::PipePool> pipes_;
  std::unique_ptr<SlabPool<downstream::TcpSession>> sessions_;
  std::unique_ptr<SlabPool<downstream::Connection>> connections_;
  std::unique_ptr<SlabPool<downstream::ProxyReader>> proxy_readers_;
  std::unique_ptr<SlabPool<downstream::H1Session>> http_sessions_;
  std::unique_ptr<SlabPool<downstream::H2Session>> h2_sessions_;
  std::unique_ptr<SlabPool<downstream::H2Stream>> h2_streams_;
  std::vector<proto::h2::Stream> h2_spare_streams_;
  std::unique_ptr<SlabPool<proxy::Exchange>> exchanges_;
  std::unique_ptr<SlabPool<downstream::H1Request>> h1_requests_;
  std::unique_ptr<SlabPool<upstream::HeaderBlock>> header_blocks_;
  std::unique_ptr<SlabPool<upstream::HttpConnection>> http_connections_;
  // By endpoint and TLS client context. Keys never go stale while a pool
  // holds connections: each holds its endpoint and its TLS session holds
  // its context.
  std::map<std::pair<const upstream::EndpointState*, const tls::ClientContext*>,
           std::unique_ptr<upstream::Pool>>
      http_pools_;
  std::map<std::pair<const upstream::EndpointState*, const tls::ClientContext*>,
           std::unique_ptr<upstream::H2Pool>>
      h2_pools_;
  std::map<std::string, std::unique_ptr<stats::PhaseLatency>> listener_latency_;
  std::map<std::string, std::unique_ptr<stats::PhaseLatency>> cluster_latency_;
  IntrusiveList<downstream::Session, &downstream::Session::worker_node_> live_;
  std::unique_ptr<WorkerSnapshot> current_;
  std::vector<std::unique_ptr<WorkerSnapshot>> retired_;
  std::vector<std::unique_ptr<ListenerEntry>> listeners_;
  std::map<const upstream::EndpointState*, std::unique_ptr<upstream::HealthChecker>> checkers_;
  std::map<const accesslog::File*, std::unique_ptr<accesslog::Writer>> log_writers_;
  std::vector<std::unique_ptr<accesslog::Writer>> closing_writers_;
  std::vector<std::unique_ptr<upstream::HealthChecker>> stopping_checkers_;
  uring::Timer grace_timer_;
  uring::Timer metrics_timer_;
  uint64_t metrics_cqes_ = ~uint64_t{0};  // the loop's CQE count at the last publication
  mutable std::mutex metrics_mu_;
  WorkerMetrics metrics_;                // under metrics_mu_
  std::atomic<uint64_t> metrics_ms_{0};  // when the worker last published (or found nothing new)
  bool draining_ = false;
  uint64_t drain_idle_ms_ = 0;
  bool accept_paused_ = false;
  WorkerStats stats_;
};

}  // namespace egw::server

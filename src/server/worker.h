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
#include <thread>
#include <vector>

#include "egw/intrusive_list.h"
#include "egw/slab.h"
#include "src/downstream/http_session.h"
#include "src/downstream/tcp_session.h"
#include "src/route/router.h"
#include "src/server/runtime.h"
#include "src/stats/latency.h"
#include "src/upstream/cluster.h"
#include "src/upstream/health_check.h"
#include "src/upstream/http_connection.h"
#include "uring/acceptor.h"
#include "uring/event_loop.h"
#include "uring/mailbox.h"
#include "uring/pipe_pool.h"

namespace egw::server {

class Server;

// Counters of one worker (read by the control thread at exit and by the
// admin API; relaxed atomics so reads from other threads are defined).
struct WorkerStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> refused_no_endpoint{0};
  std::atomic<uint64_t> refused_queue_full{0};
  std::atomic<uint64_t> queued{0};
  std::atomic<uint64_t> queue_timeouts{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> relays_splice{0};
  std::atomic<uint64_t> relays_copy{0};
  std::atomic<uint64_t> bytes_in{0};   // client -> upstream
  std::atomic<uint64_t> bytes_out{0};  // upstream -> client
  // HTTP
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> http_errors{0};       // answered by the proxy with an error status
  std::atomic<uint64_t> http_status[6] = {};  // by class: [2] = 2xx ... [5] = 5xx
  std::atomic<uint64_t> tunnels{0};
  std::atomic<uint64_t> request_timeouts{0};
  std::atomic<uint64_t> response_timeouts{0};
  std::atomic<uint64_t> slow_bodies{0};
  std::atomic<uint64_t> upstream_reused{0};
  std::atomic<uint64_t> upstream_connects{0};
  // TLS
  std::atomic<uint64_t> tls_handshakes{0};  // completed downstream (full + resumed)
  std::atomic<uint64_t> tls_resumed{0};
  std::atomic<uint64_t> tls_failures{0};  // bad, garbage or refused handshakes
  std::atomic<uint64_t> tls_timeouts{0};  // handshakes past handshake_timeout_ms
  std::atomic<uint64_t> tls_ktls{0};      // sessions handed to kernel TLS
  std::atomic<uint64_t> tls_upstream_handshakes{0};
  std::atomic<uint64_t> tls_upstream_resumed{0};
  std::atomic<uint64_t> tls_upstream_failures{0};  // including failed verification
  std::atomic<uint64_t> sni_routed{0};             // tcp passthrough sessions routed by SNI
  std::atomic<uint64_t> sni_missing{0};            // ... that had no (parsable) SNI
};

// One cluster as one worker serves it on one snapshot: its balancer state
// and its queue of sessions waiting for a slot.
struct WorkerCluster {
  WorkerCluster(upstream::Cluster& c, uint64_t seed, stats::PhaseLatency* lat)
      : cluster(c), picker(c, seed), latency(lat) {}
  upstream::Cluster& cluster;
  upstream::Picker picker;
  stats::PhaseLatency* latency;       // this worker's histograms for the cluster (by name)
  tls::ClientContext* tls = nullptr;  // TLS to the endpoints, or null
  IntrusiveList<downstream::Session, &downstream::Session::queue_node_> queue;
  uint32_t queued = 0;

  // The queue and its two counts change together: `queued` (this snapshot's
  // waiters; a retired snapshot lives while it is not 0) and the cluster's
  // waiting count for `worker` (read by other workers to hand over a slot).
  void enqueue(downstream::Session& s, unsigned worker, bool front = false) {
    front ? queue.push_front(s) : queue.push_back(s);
    ++queued;
    cluster.waiting(worker).fetch_add(1, std::memory_order_relaxed);
  }
  void leave(downstream::Session& s, unsigned worker) {
    queue.erase(s);
    left(worker);
  }
  // The first waiter, taken off the queue; null when none.
  downstream::Session* pop(unsigned worker) {
    downstream::Session* s = queue.pop_front();
    if (s) left(worker);
    return s;
  }

 private:
  void left(unsigned worker) {
    --queued;
    cluster.waiting(worker).fetch_sub(1, std::memory_order_relaxed);
  }
};

struct WorkerSnapshot {
  RuntimePtr runtime;
  std::vector<std::unique_ptr<WorkerCluster>> clusters;  // parallel to runtime->clusters
  std::vector<std::unique_ptr<route::Router>> routers;   // parallel to config->listeners
  std::vector<stats::PhaseLatency*> listener_latency;    // parallel to config->listeners
  uint32_t sessions = 0;
};

class Worker {
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

  // -- worker thread (through post) ---------------------------------------------
  void apply(RuntimePtr rt);
  // Stops accepting and lets sessions finish; after `grace_ms` the rest are
  // closed. The thread ends when no session is left.
  void drain(uint32_t grace_ms);
  // A slot on one of `c`'s endpoints freed on another worker and this one
  // has sessions waiting.
  void kick(const upstream::Cluster* c);
  // Logs this worker's counters (SIGUSR1, and at exit).
  void log_stats();
  // Adds this worker's latency histograms into `listeners` / `clusters` (by
  // name). Runs on the worker thread; the caller serialises the merging.
  void merge_latency(std::map<std::string, stats::PhaseLatency>& listeners,
                     std::map<std::string, stats::PhaseLatency>& clusters);

  // -- for sessions (worker thread) -----------------------------------------------
  uring::EventLoop& loop() { return *loop_; }
  uring::PipePool& pipes() { return *pipes_; }
  WorkerStats& stats() { return stats_; }
  void session_ended(downstream::TcpSession& s, WorkerSnapshot& snap);
  void session_ended(downstream::HttpSession& s, WorkerSnapshot& snap);
  SlabPool<upstream::HeaderBlock>& header_blocks() { return *header_blocks_; }
  // The idle-connection pool of an endpoint on this worker.
  upstream::Pool& http_pool(const std::shared_ptr<upstream::EndpointState>& ep);
  // A new upstream HTTP connection (not yet connected), or nullptr at the cap.
  upstream::HttpConnection* new_http_connection(std::shared_ptr<upstream::EndpointState> ep,
                                                upstream::Pool* pool);
  // A connection slot of `wc`'s cluster freed: serve a waiting session here,
  // or wake a worker that has one.
  void slot_freed(WorkerCluster& wc);
  bool draining() const { return draining_; }

 private:
  struct ListenerEntry {
    std::shared_ptr<BindSockets> sockets;
    std::unique_ptr<uring::Acceptor> acceptor;
    size_t listener = 0;  // index into the snapshot's config->listeners
    bool stopping = false;
  };

  void run(RuntimePtr rt);
  void on_accept(ListenerEntry& e, UniqueFd fd);
  void session_destroyed(WorkerSnapshot& snap);
  void reconcile_listeners();
  void reconcile_health_checks();
  void stop_listener(ListenerEntry& e, bool close_socket);
  void pause_accepting(bool pause);
  void release_snapshots();
  void maybe_finish();

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
  std::unique_ptr<SlabPool<downstream::HttpSession>> http_sessions_;
  std::unique_ptr<SlabPool<upstream::HeaderBlock>> header_blocks_;
  std::unique_ptr<SlabPool<upstream::HttpConnection>> http_connections_;
  std::map<const upstream::EndpointState*, std::unique_ptr<upstream::Pool>> http_pools_;
  std::map<std::string, std::unique_ptr<stats::PhaseLatency>> listener_latency_;
  std::map<std::string, std::unique_ptr<stats::PhaseLatency>> cluster_latency_;
  IntrusiveList<downstream::Session, &downstream::Session::worker_node_> live_;
  std::unique_ptr<WorkerSnapshot> current_;
  std::vector<std::unique_ptr<WorkerSnapshot>> retired_;
  std::vector<std::unique_ptr<ListenerEntry>> listeners_;
  std::map<const upstream::EndpointState*, std::unique_ptr<upstream::HealthChecker>> checkers_;
  std::vector<std::unique_ptr<upstream::HealthChecker>> stopping_checkers_;
  uring::Timer grace_timer_;
  bool draining_ = false;
  bool accept_paused_ = false;
  WorkerStats stats_;
};

}  // namespace egw::server

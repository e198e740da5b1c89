// WorkerCluster: one cluster as one worker serves it on one snapshot (its
// balancer state and its queue of waiters for a connection slot), and
// Waiter, what sits in that queue (an HTTP exchange, an L4 session).
#pragma once

#include <cstdint>

#include "egw/intrusive_list.h"
#include "src/stats/latency.h"
#include "src/upstream/cluster.h"

namespace egw::tls {
class ClientContext;
}

namespace egw::upstream {

class Waiter {
 public:
  // Taken off a cluster queue because a slot freed: try again.
  virtual void dequeued() = 0;
  ListNode queue_node_;  // in WorkerCluster::queue while waiting

 protected:
  ~Waiter() = default;
};

struct WorkerCluster {
  WorkerCluster(Cluster& c, uint64_t seed, stats::PhaseLatency* lat)
      : cluster(c), picker(c, seed), latency(lat) {}
  Cluster& cluster;
  Picker picker;
  stats::PhaseLatency* latency;       // this worker's histograms for the cluster (by name)
  tls::ClientContext* tls = nullptr;  // TLS to the endpoints, or null
  IntrusiveList<Waiter, &Waiter::queue_node_> queue;
  uint32_t queued = 0;

  // The queue and its two counts change together: `queued` (this snapshot's
  // waiters; a retired snapshot lives while it is not 0) and the cluster's
  // waiting count for `worker` (read by other workers to hand over a slot).
  void enqueue(Waiter& s, unsigned worker, bool front = false) {
    front ? queue.push_front(s) : queue.push_back(s);
    ++queued;
    cluster.waiting(worker).fetch_add(1, std::memory_order_relaxed);
  }
  void leave(Waiter& s, unsigned worker) {
    queue.erase(s);
    left(worker);
  }
  // The first waiter, taken off the queue; null when none.
  Waiter* pop(unsigned worker) {
    Waiter* s = queue.pop_front();
    if (s) left(worker);
    return s;
  }

 private:
  void left(unsigned worker) {
    --queued;
    cluster.waiting(worker).fetch_sub(1, std::memory_order_relaxed);
  }
};

}  // namespace egw::upstream

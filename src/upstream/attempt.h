// Attempt: getting a connection slot on an endpoint of a cluster, and trying
// again when the connect fails. The one implementation behind both the L4
// session and the HTTP exchange:
//
//   pick()  -> picked (holds a slot: on_picked)
//           -> full: queued (WorkerCluster queue, FIFO) until a slot frees
//              (on_picked) or the owner's queue timer fires (leave_queue())
//           -> refused: queue full, no endpoint up (on_refused)
//   connect_failed(err) -> passive health (one rule: after `fall` consecutive
//              failures the endpoint is down for the health-check interval,
//              at least 1 s when no active check will bring it back), the
//              slot released; true when another try is allowed (redispatch
//              avoids the endpoint that failed)
//
// The slot is released exactly once (release(), or the destructor), and its
// release is reported to the worker so that a waiter gets it. Latency: queue
// wait and connect time go to the cluster's histograms and, when given, the
// listener's.
#pragma once

#include <cstdint>

#include "src/stats/latency.h"
#include "src/upstream/context.h"
#include "src/upstream/worker_cluster.h"

namespace egw::upstream {

class Attempt final : private Waiter {
 public:
  enum class Refusal : uint8_t { kQueueFull, kNoneUp };
  static const char* to_string(Refusal r);

  class Handler {
   public:
    // A slot on endpoint `index` of the cluster is held.
    virtual void on_picked(int index) = 0;
    virtual void on_refused(Refusal why) = 0;
    // The attempt went into the cluster's queue: arm the queue timeout.
    virtual void on_queued() = 0;

   protected:
    ~Handler() = default;
  };

  Attempt(Context& ctx, Handler& handler) : ctx_(ctx), handler_(handler) {}
  ~Attempt() {
    leave_queue();
    release();
  }
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;

  // Starts over on `wc` for a client whose hash is `hash` (source-hash
  // balancing); `listener` (may be null) also gets the latency records.
  void begin(WorkerCluster& wc, uint64_t hash, stats::PhaseLatency* listener);
  // Picks an endpoint; reports through the handler (maybe at once).
  void pick();
  bool queued() const { return queue_node_.linked(); }
  // The queue timer fired (or the owner gave up): out of the queue, without
  // a call to the handler.
  void leave_queue();
  // The wait for a slot timed out: out of the queue, counted.
  void queue_timed_out();

  // The connect to the picked endpoint starts / succeeded / failed.
  void connect_started(uint64_t now_ns) { connect_ns_ = now_ns; }
  void connect_succeeded();
  // Records the failure, releases the slot; true when a retry is allowed
  // (counted: call pick() again).
  bool connect_failed(int err);
  // A retry that is not a new attempt (a reused keep-alive connection the
  // server had closed) or one within the budget: releases the slot; true
  // when allowed.
  bool retry(bool counts);

  // Gives the slot back (if one is held) and tells the worker.
  void release();

  int endpoint() const { return endpoint_; }
  // The last queue wait and connect, in microseconds (-1: none), for
  // access logs.
  int32_t queue_wait_us() const { return queue_us_; }
  int32_t connect_us() const { return connect_us_; }
  WorkerCluster* cluster() const { return wc_; }
  uint32_t attempts() const { return attempts_; }

 private:
  void dequeued() override;
  void record(stats::Phase p, uint64_t from_ns);

  Context& ctx_;
  Handler& handler_;
  WorkerCluster* wc_ = nullptr;
  stats::PhaseLatency* listener_ = nullptr;
  uint64_t hash_ = 0;
  int endpoint_ = -1;  // holds a slot while >= 0
  int avoid_ = -1;     // the endpoint that failed last (redispatch)
  uint32_t attempts_ = 0;
  uint64_t queued_ns_ = 0;
  int32_t queue_us_ = -1, connect_us_ = -1;
  uint64_t connect_ns_ = 0;
};

}  // namespace egw::upstream

// Client: one worker thread's share of a run: its event loop, its
// connections, its slice of the rate and its own Stats (merged by the Runner
// when every worker is done; workers share nothing while they run).
//
// Open loop: the Schedule says when each request is due. Whenever a
// connection is available and the next intended time has come, the request
// goes out on it; when none is available the request waits, which costs no
// memory (the schedule itself is the backlog) and is counted in its latency
// because latency runs from the intended time. Between requests the loop
// sleeps in io_uring_enter until shortly before the next intended time
// (wake_at_ns, --early-wake) or the next completion, whichever comes first,
// and then polls the ring until that time has come.
//
// Closed loop: every connection sends its next request as soon as the last
// one completes; the intended time is simply when it was sent.
//
// Window: [t0, t0+warmup) is sent but not recorded; requests intended in
// [t0+warmup, end) are recorded, including the ones the backlog pushes past
// `end` (the drain), until everything has finished or the drain deadline
// (end + --timeout) passes; what is left then is counted as unfinished.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "egw/slab.h"
#include "proto/h1/parser.h"
#include "src/load/connection.h"
#include "src/load/h2_link.h"
#include "src/load/lane.h"
#include "src/load/options.h"
#include "src/load/schedule.h"
#include "src/load/stats.h"
#include "src/tls/session.h"
#include "uring/event_loop.h"
#include "uring/stream_socket.h"

namespace egw::load {

// One worker's part of the plan.
struct WorkerPlan {
  const Options* options = nullptr;
  std::string_view request;  // the shared request bytes
  proto::h1::Method method = proto::h1::Method::kGet;
  unsigned index = 0;
  unsigned connections = 1;
  unsigned streams = 1;               // --h2: concurrent streams per connection
  double rate = 0;                    // this worker's requests/s (open loop)
  double phase = 0;                   // of a period, for constant schedules
  uint64_t seed = 1;                  // for Poisson schedules
  tls::ClientContext* tls = nullptr;  // https: shared by every worker (read-only)
};

class Client {
 public:
  // `loop` belongs to the calling thread; `stats` receives the results.
  Client(uring::EventLoop& loop, const WorkerPlan& plan, Stats& stats);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Keep-alive: opens every connection and returns once each has connected
  // or failed (failures are counted in Stats::setup_failures and retried
  // lazily by the first request that lands on them).
  void setup();
  // Runs the schedule from `t0_ns` (shared by all workers), drains, closes
  // every connection and returns once nothing is in flight. False when the
  // ring itself failed.
  bool run(uint64_t t0_ns);
  // Closes every connection and waits (bounded) until their sockets are
  // released. run() ends with it; call it directly when a run is called off
  // after setup().
  void close();

  // -- for Connection ---------------------------------------------------------
  uring::EventLoop& loop() { return loop_; }
  SlabPool<net::ByteStream>& sockets() { return sockets_; }
  const WorkerPlan& plan() const { return plan_; }
  const Options& options() const { return *plan_.options; }
  Stats& stats() { return stats_; }
  // https: the session the next new connection offers (the last one saved
  // by any connection of this worker), when resumption is on.
  std::shared_ptr<tls::SavedSession>& tls_resume() { return tls_resume_; }
  // After a whole response on `s`, once per connection (`saved` is the
  // connection's flag; TLS 1.3 tickets come after the handshake): its
  // session becomes the one the next new connection offers.
  void keep_tls_session(net::ByteStream* s, bool& saved);
  // A lane (an HTTP/1.1 connection, or one stream of an HTTP/2 one) can
  // take a request (after set-up, a response, an error, a back-off). May
  // hand it the next request at once.
  void on_available(Lane& c, bool connect_failed);
  // A request assigned by this client finished, one way or another.
  void request_ended() { --in_flight_; }

 private:
  enum class Phase : uint8_t { kSetup, kRunning, kDraining, kDone };

  // Open loop: sends every request that is due while connections are free.
  void pump();
  void start_on(Lane& c, uint64_t intended_ns);
  // Drain deadline: everything unsent or in flight becomes kUnfinished.
  void abandon_rest();
  uint64_t next_wake(uint64_t now) const;

  // FIFO of available lanes: round-robin keeps every connection warm, and
  // each appears at most once, so a ring of their count suffices.
  void push_available(Lane& c);
  Lane* pop_available();

  uring::EventLoop& loop_;
  WorkerPlan plan_;
  Stats& stats_;
  SlabPool<net::ByteStream> sockets_;
  std::shared_ptr<tls::SavedSession> tls_resume_;
  std::vector<std::unique_ptr<Connection>> connections_;  // HTTP/1.1
  std::vector<std::unique_ptr<H2Link>> links_;            // --h2
  std::vector<Lane*> lanes_;                              // all of them
  std::vector<Lane*> available_;
  size_t available_head_ = 0;
  size_t available_count_ = 0;

  Phase phase_ = Phase::kSetup;
  Schedule schedule_;
  uint64_t measure_start_ns_ = 0;
  uint64_t end_ns_ = 0;
  uint64_t drain_deadline_ns_ = 0;
  uint64_t in_flight_ = 0;  // requests assigned and not yet ended
  unsigned setup_pending_ = 0;
  bool pumping_ = false;
};

}  // namespace egw::load

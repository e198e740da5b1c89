// TcpSession: one downstream TCP connection proxied at L4 to an endpoint of
// the listener's cluster.
//
//   kPicking -> (kQueued ->) kConnecting -> kRelaying -> kClosing
//
//  - picking: the worker's balancer chooses an endpoint with a free slot
//    (maxconn); all full -> wait in the cluster queue (queue_timeout_ms); no
//    endpoint usable -> close at once.
//  - connecting: connect with a linked timeout; a failure marks the endpoint
//    (passive health) and retries up to `retries` times, on another endpoint
//    when `redispatch` is on. Only connects are retried: no byte has been
//    read from the client yet, so nothing is replayed.
//  - relaying: splice through the worker's pipes (copy when none is free),
//    half-close passed through; closed after the idle timeout without a byte
//    either way (the smaller of the listener's and the cluster's).
#pragma once

#include <cstdint>
#include <memory>

#include "egw/address.h"
#include "egw/intrusive_list.h"
#include "egw/unique_fd.h"
#include "src/downstream/session.h"
#include "uring/connector.h"
#include "uring/relay.h"
#include "uring/timer_wheel.h"

namespace egw::server {
class Worker;
struct WorkerSnapshot;
struct WorkerCluster;
}  // namespace egw::server

namespace egw::config {
struct ListenerConfig;
}

namespace egw::downstream {

class TcpSession final : public Session,
                         private uring::ConnectorHandler,
                         private uring::RelayHandler {
 public:
  enum class State : uint8_t { kPicking, kQueued, kConnecting, kRelaying, kClosing };

  TcpSession(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
             UniqueFd client);
  ~TcpSession();
  TcpSession(const TcpSession&) = delete;
  TcpSession& operator=(const TcpSession&) = delete;

  void start();
  void dequeued() override;
  void abort() override;

  State state() const { return state_; }

 private:
  void pick();
  void connect();
  void fail(const char* why);
  void close();
  void release_slot();
  void arm_idle_timer();
  void on_timer();
  void maybe_destroy();

  void on_connect_done(uring::Connector& c, int err) override;
  void on_connector_released(uring::Connector& c) override;
  void on_relay_done(uring::Relay& r, int err) override;
  void on_relay_released(uring::Relay& r) override;

  server::Worker& worker_;
  server::WorkerSnapshot& snap_;
  server::WorkerCluster& cluster_;
  const config::ListenerConfig& listener_;
  UniqueFd client_;
  SocketAddress peer_;
  uint64_t hash_ = 0;
  int endpoint_ = -1;  // holds a slot on it while >= 0
  int avoid_ = -1;     // endpoint that failed last (redispatch)
  uint32_t attempts_ = 0;
  uint64_t idle_timeout_ms_ = 0;
  uring::Connector connector_;
  std::unique_ptr<uring::Relay> relay_;
  uring::Timer timer_;
  State state_ = State::kPicking;
  bool connector_live_ = false;
  uint64_t queued_ns_ = 0;
  uint64_t connect_ns_ = 0;
  bool relay_live_ = false;
};

}  // namespace egw::downstream

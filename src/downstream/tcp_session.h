// TcpSession: one downstream TCP connection proxied at L4 to an endpoint of
// the listener's cluster (or of the cluster its routes pick).
//
//   (kSniffing | kHandshake ->) kPicking -> (kQueued ->) kConnecting -> kRelaying -> kClosing
//
//  - sniffing (routes, no tls table: TLS passthrough): peek at the client's
//    ClientHello (MSG_PEEK: the bytes stay in the socket and are relayed
//    untouched), route on its server name; SO_RCVLOWAT makes the poll wake
//    only once the rest of the hello can have arrived.
//  - handshake (tls table: termination): the TLS handshake with the client
//    runs before any endpoint is chosen; routes then see its server name.
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
#include "src/net/proxy_header.h"
#include "src/net/tls_relay.h"
#include "src/upstream/attempt.h"
#include "uring/connector.h"
#include "uring/poll_waiter.h"
#include "uring/relay.h"
#include "uring/timer_wheel.h"

namespace egw::server {
class Worker;
struct WorkerSnapshot;
}  // namespace egw::server

namespace egw::config {
struct ListenerConfig;
}

namespace egw::downstream {

struct Proxied;

class TcpSession final : public Session,
                         private upstream::Attempt::Handler,
                         private uring::ConnectorHandler,
                         private net::TlsRelayHandler,
                         private uring::PollWaiterHandler {
 public:
  enum class State : uint8_t {
    kSniffing,
    kHandshake,
    kPicking,
    kQueued,
    kConnecting,
    kRelaying,
    kClosing
  };

  // `proxied`: the addresses of the connection's PROXY header, if it had one.
  TcpSession(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener, UniqueFd client,
             const Proxied* proxied = nullptr);
  ~TcpSession();
  TcpSession(const TcpSession&) = delete;
  TcpSession& operator=(const TcpSession&) = delete;

  void start();
  void abort() override;
  void describe(SessionInfo& out) const override;

  State state() const { return state_; }

 private:
  // One access log line for the session (at its close).
  void log_access();
  void sniff();
  // Chooses the cluster from the routes (server name `sni`), then picks.
  void route(std::string_view sni);
  void start_relay(UniqueFd upstream);
  // send_proxy: the header on the new upstream socket; false when it failed.
  bool send_proxy_header(int fd);
  void fail(const char* why);
  void close();
  void arm_idle_timer();
  void on_timer();
  void maybe_destroy();

  void on_picked(int index) override;
  void on_refused(upstream::Attempt::Refusal why) override;
  void on_queued() override;
  void on_connect_done(uring::Connector& c, int err) override;
  void on_connector_released(uring::Connector& c) override;
  void on_relay_done(uring::Relay& r, int err) override;
  void on_relay_released(uring::Relay& r) override;
  void on_tls_ready(net::TlsRelay& r, int side) override;
  void on_poll_ready(uring::PollWaiter& w, int result) override;
  void on_poll_released(uring::PollWaiter& w) override;

  server::Worker& worker_;
  server::WorkerSnapshot& snap_;
  upstream::WorkerCluster* cluster_ = nullptr;  // set once routed
  const config::ListenerConfig& listener_;
  const size_t listener_index_;
  UniqueFd client_;
  SocketAddress peer_;
  net::Destination dst_;  // for send_proxy
  uint64_t hash_ = 0;
  uint64_t idle_timeout_ms_ = 0;
  upstream::Attempt attempt_;  // holds the endpoint's slot while relaying
  uring::Connector connector_;
  std::unique_ptr<uring::Relay> relay_;
  net::TlsRelay* tls_relay_ = nullptr;  // relay_, when it is one
  uring::PollWaiter poller_;
  bool poller_live_ = false;
  int rcvlowat_ = 0;        // SO_RCVLOWAT set while sniffing (0: untouched)
  bool peer_done_ = false;  // sniffing: the client sent FIN (or failed)
  uint64_t accept_ns_ = 0;
  // For the access log: the TLS handshake (-1: none) and how it ended.
  int32_t tls_us_ = -1;
  const char* termination_ = nullptr;
  uring::Timer timer_;
  State state_ = State::kPicking;
  bool connector_live_ = false;
  bool relay_live_ = false;
};

}  // namespace egw::downstream

// Exchange: one request and its response (the glossary's stream), whatever
// the codec on either side. A downstream codec (H1Session today; HTTP/2 and
// HTTP/3 sessions next) turns bytes into a neutral request head, body slices
// and an end, and hands them here; the exchange does everything else once:
// route match, CONNECT policy, the pick with its cluster queue, the connect
// with retries and redispatch (upstream::Attempt, shared with L4), the
// upstream connection from the pool, timeouts, latency phases, and it turns
// what the upstream answers back into calls on the codec's Downstream.
//
//   kIdle -> start() -> kQueued? -> kConnecting -> kExchange -> kTunnel?
//                    \-> a local answer (respond route, 404, 405, 503...)
//
// Contract with the codec:
//  - every call into Downstream is the last thing the exchange does in that
//    step: the codec may destroy the exchange inside the call;
//  - the request head's views stay valid until the exchange is destroyed (a
//    retry re-encodes the head on a new connection);
//  - body slices go in only while body_room() is true; when room appears
//    again the exchange calls Downstream::resume_request_body();
//  - the codec destroys the exchange once it is done with it (response sent,
//    or the client gone); the destructor gives the upstream connection back
//    to its pool when the exchange ended cleanly, and closes it otherwise.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "egw/address.h"
#include "proto/http/message.h"
#include "src/config/config.h"
#include "src/http/forwarding.h"
#include "src/net/byte_stream.h"
#include "src/net/proxy_header.h"
#include "src/stats/latency.h"
#include "src/upstream/attempt.h"
#include "src/upstream/stream.h"
#include "uring/timer_wheel.h"

namespace egw::route {
class Router;
}
namespace egw::accesslog {
class Writer;
class Format;
struct Record;
}  // namespace egw::accesslog

namespace egw::proxy {

namespace ph = proto::http;

// One listener as one worker serves it on one snapshot.
struct ListenerView {
  const config::ListenerConfig* config = nullptr;
  const route::Router* router = nullptr;
  // By route index: the cluster, or null for a `respond` route.
  std::vector<upstream::WorkerCluster*> route_clusters;
  upstream::WorkerCluster* default_cluster = nullptr;
  stats::PhaseLatency* latency = nullptr;
  // This worker's writer of the listener's access log and its format (null: none).
  accesslog::Writer* access_log = nullptr;
  const accesslog::Format* access_format = nullptr;
};

// The client side, as the exchange sees it.
struct Client {
  const SocketAddress* peer = nullptr;
  uint64_t hash = 0;         // for source-hash balancing
  bool tls = false;          // the client connection is TLS (X-Forwarded-Proto)
  std::string_view subject;  // verified client certificate subject (mTLS), if any
  // For PROXY headers toward endpoints (send_proxy): the client's stream
  // (its TLS) and where it connected to.
  net::ByteStream* stream = nullptr;
  net::Destination* dst = nullptr;
  uint32_t tls_handshake_us = 0;  // the connection's TLS handshake (0: none), for access logs
};

// The client's TLS (version, cipher, SNI) into an access log record; `t`
// may be null (cleartext). For every writer of access log lines.
void set_tls(accesslog::Record& r, tls::Session* t);

// What an exchange asks of its downstream codec.
class Downstream {
 public:
  // A response head (1xx, 101 and final). False when it cannot be sent
  // (does not fit, invalid for the client's protocol): the exchange then
  // answers 502 itself. Views are valid during the call.
  virtual bool response_head(const ph::ResponseHead& head, const http::ResponseContext& ctx) = 0;
  // Body bytes (de-framed), or raw bytes in a tunnel; the codec owns `data`.
  virtual void response_data(const uring::IoBuf& data) = 0;
  virtual void response_trailers(std::span<const ph::Field> trailers) = 0;
  virtual void response_end() = 0;
  // The exchange answers by itself (no response head went out yet).
  virtual void respond_error(uint16_t status) = 0;
  virtual void respond_local(const config::RouteConfig& route) = 0;
  // It failed after the response began: the codec ends the stream abruptly
  // (HTTP/1.1 closes the connection; HTTP/2 resets the stream).
  virtual void reset() = 0;
  // Room for request body (or tunnel) bytes again.
  virtual void resume_request_body() = 0;
  // After a 101, or a 2xx to CONNECT: bytes now flow raw both ways
  // (tunnel_data / response_data).
  virtual void tunnel_open() = 0;
  // In a tunnel: the upstream finished sending.
  virtual void tunnel_eof() = 0;

 protected:
  ~Downstream() = default;
};

class Exchange final : private upstream::Attempt::Handler, private upstream::StreamUser {
 public:
  enum class State : uint8_t {
    kIdle,        // not started
    kQueued,      // waiting for a slot on the cluster
    kConnecting,  // waiting for an upstream connection
    kExchange,    // request and response in flight
    kTunnel,      // raw bytes after an upgrade or CONNECT
    kDone,        // the response ended, or it was answered locally
  };
  static const char* to_string(State s);

  Exchange(upstream::Context& ctx, const ListenerView& listener, Downstream& down,
           const Client& client);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // The request head; `head_start_ns` is when its first byte (or the
  // connection) arrived and `headers_ns` when it was complete, for the
  // latency phases. Routes, then picks (or answers locally).
  void start(const ph::RequestHead& req, uint64_t head_start_ns, uint64_t headers_ns);
  // Request body bytes (owned; only while body_room()), and their end.
  void request_data(const uring::IoBuf& b);
  void request_end(std::span<const ph::Field> trailers);
  bool body_room() const;
  // Tunnel: client bytes (while body_room()) and the client's FIN.
  void tunnel_data(const uring::IoBuf& b);
  void tunnel_eof();
  // The codec's socket toward the client is full / has room again.
  void pause_response();
  void resume_response();

  State state() const { return state_; }
  bool request_done() const { return req_done_; }
  bool response_started() const { return resp_started_; }
  const config::RouteConfig* route() const { return route_; }

 private:
  // Attempt::Handler
  void on_picked(int index) override;
  void on_refused(upstream::Attempt::Refusal why) override;
  void on_queued() override;
  // StreamUser
  void on_upstream_connected(upstream::Stream& c, int err) override;
  void on_response_head(upstream::Stream& c, const ph::ResponseHead& h) override;
  void on_response_data(upstream::Stream& c, const uring::IoBuf& data) override;
  void on_response_trailers(upstream::Stream& c, std::span<const ph::Field> trailers) override;
  void on_response_end(upstream::Stream& c) override;
  void on_tunnel_eof(upstream::Stream& c) override;
  void on_upstream_error(upstream::Stream& c, upstream::HttpError e, int err) override;
  void on_upstream_sent(upstream::Stream& c) override;

  void set_state(State s);
  void connect_to(int endpoint);
  void send_request();
  // Before the response: close upstream, answer `status` (`why`: the
  // termination the access log gives; null: one named after the status).
  void fail(uint16_t status, const char* why = nullptr);
  // Answers `status` itself (nothing went upstream).
  void answer(uint16_t status);
  // One access log line for this exchange (at its end).
  void log_access();
  // A final status answered for a request routed to a cluster.
  void count_cluster_response(uint16_t status);
  void close_upstream();
  void release_upstream();
  void arm_timer(uint64_t delay_ms);
  void arm_exchange_timer();
  void on_timer();
  void record(stats::Phase p, uint64_t from_ns, bool listener, bool cluster);
  const config::ClusterConfig& cluster_config() const;

  upstream::Context& ctx_;
  const ListenerView& listener_;
  Downstream& down_;
  Client client_;
  upstream::Attempt attempt_;
  ph::RequestHead req_;
  const config::RouteConfig* route_ = nullptr;
  upstream::WorkerCluster* cluster_ = nullptr;
  upstream::Stream* up_ = nullptr;
  uring::Timer timer_;
  State state_ = State::kIdle;
  bool req_done_ = false;       // the whole request (body and end) went upstream
  bool req_body_sent_ = false;  // some request body byte went upstream
  bool resp_started_ = false;   // a final response head went to the client
  bool resp_done_ = false;
  uint64_t req_body_bytes_ = 0;
  uint64_t window_start_ms_ = 0;  // body rate window
  uint64_t window_bytes_ = 0;
  uint64_t last_activity_ms_ = 0;
  uint64_t head_start_ns_ = 0;
  uint64_t headers_ns_ = 0;
  // For the access log.
  uint64_t resp_bytes_ = 0;          // response body bytes from the endpoint
  std::array<int64_t, 6> phase_us_;  // by stats::Phase; -1: not measured
  const char* termination_ = nullptr;
  int endpoint_ = -1;    // the endpoint picked last
  uint16_t status_ = 0;  // the final status answered
};

}  // namespace egw::proxy

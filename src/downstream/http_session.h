// HttpSession: one downstream HTTP/1.1 connection. It reads requests one at
// a time (pipelined ones wait their turn, in order), routes each, forwards it
// to an endpoint of the chosen cluster over a pooled keep-alive connection
// (or answers it itself), streams both bodies buffer by buffer with
// back-pressure, and switches to a byte relay after an accepted Upgrade or
// CONNECT.
//
//   kIdle -> kHead -> (kQueued ->) kConnecting -> kExchange -> kIdle ...
//                  \-> kLocal (respond route or error) -> kIdle | close
//   kExchange -> kTunnel (101, or 2xx to CONNECT)
//
// Every limit a client controls is bounded: head bytes, header count, request
// line, body size, body rate, time to send the head, idle time. Errors are
// answered with short, generic bodies (400, 408, 413, 414, 431, 501, 502,
// 503, 504) and counted.
#pragma once

#include <cstdint>
#include <optional>

#include "egw/address.h"
#include "egw/unique_fd.h"
#include "proto/h1/body.h"
#include "proto/h1/parser.h"
#include "src/downstream/session.h"
#include "src/http/head_buffer.h"
#include "src/http/message.h"
#include "src/stats/latency.h"
#include "src/tls/transport.h"
#include "src/upstream/http_connection.h"
#include "uring/io_queue.h"
#include "uring/stream_socket.h"
#include "uring/timer_wheel.h"

namespace egw::server {
class Worker;
struct WorkerSnapshot;
struct WorkerCluster;
}  // namespace egw::server

namespace egw::config {
struct ListenerConfig;
struct RouteConfig;
}  // namespace egw::config

namespace egw::downstream {

class HttpSession final : public Session,
                          private uring::StreamSocketHandler,
                          private upstream::HttpConnectionUser {
 public:
  enum class State : uint8_t {
    kIdle,        // between requests
    kHead,        // reading a request head
    kQueued,      // waiting for a slot on the cluster
    kConnecting,  // waiting for an upstream connection
    kExchange,    // request and response in flight
    kLocal,       // answering by itself (route respond, or an error)
    kTunnel,      // byte relay after an upgrade
    kClosing,
  };
  static const char* to_string(State s);

  HttpSession(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
              UniqueFd client);
  ~HttpSession() override;

  void start();
  void dequeued() override;
  void abort() override;
  void drain() override;
  State state() const { return state_; }

 private:
  // -- client socket
  void on_connected(uring::StreamSocket& s, int err) override;
  void on_data(uring::StreamSocket& s, const uring::IoBuf& buf) override;
  void on_eof(uring::StreamSocket& s) override;
  void on_error(uring::StreamSocket& s, int err) override;
  void on_sent(uring::StreamSocket& s) override;
  void on_released(uring::StreamSocket& s) override;
  // -- upstream connection
  void on_upstream_connected(upstream::HttpConnection& c, int err) override;
  void on_response_head(upstream::HttpConnection& c, const proto::h1::ResponseHead& h) override;
  void on_response_data(upstream::HttpConnection& c, const uring::IoBuf& data) override;
  void on_response_trailers(upstream::HttpConnection& c, const uring::IoBuf& raw) override;
  void on_response_end(upstream::HttpConnection& c) override;
  void on_tunnel_eof(upstream::HttpConnection& c) override;
  void on_upstream_error(upstream::HttpConnection& c, upstream::HttpError e, int err) override;
  void on_upstream_sent(upstream::HttpConnection& c) override;

  // Plaintext from the client (straight from the socket, or decrypted).
  void on_plain(const uring::IoBuf& buf);
  void on_tls_handshake();
  void on_tls_status(tls::Session::Status st);
  // close_notify (TLS), then FIN once the queue drains.
  void shutdown_client();
  // Gives back what one request holds: its connection slot, encoded and
  // raw head, parser and header block.
  void drop_request_state();
  void fail_tls();
  void process_input();
  void parse_head();
  void begin_exchange();
  void pick();
  void connect_to(int endpoint);
  void start_upstream_exchange();
  void pump_request_body();
  void discard_request_body();
  void send_local(uint16_t status, const config::RouteConfig* route);
  void send_error(uint16_t status, bool close_after);
  void finish_exchange();
  void release_upstream(bool reusable);
  void release_slot();
  void start_tunnel();
  bool retry_upstream(bool count_attempt);
  void fail_upstream(uint16_t status);
  void arm_timer(uint64_t delay_ms);
  void arm_exchange_timer();
  void on_timer();
  void send_client(const uring::IoBuf& b);
  void send_client_static(std::string_view s);
  void apply_backpressure();
  void close(bool reset = false);
  void maybe_destroy();
  void count_status(uint16_t status);
  size_t listener_index() const;

  server::Worker& worker_;
  server::WorkerSnapshot& snap_;
  const config::ListenerConfig& listener_;
  uring::StreamSocket client_;
  std::unique_ptr<tls::Transport> tls_;  // TLS listeners: between client_ and the session
  SocketAddress peer_;
  uint64_t hash_ = 0;
  uring::IoQueue in_;
  http::HeadBuffer head_buf_;
  upstream::HeaderBlock* header_block_ = nullptr;
  std::optional<proto::h1::RequestParser> parser_;
  uring::IoBuf head_mem_;      // keeps the parsed head's views alive
  uring::IoBuf encoded_head_;  // the upstream request head (kept for a retry)
  uring::Timer timer_;
  State state_ = State::kIdle;

  // The current exchange.
  const config::RouteConfig* route_ = nullptr;
  server::WorkerCluster* cluster_ = nullptr;
  int endpoint_ = -1;  // holds a slot while >= 0
  int avoid_ = -1;
  uint32_t attempts_ = 0;
  upstream::HttpConnection* up_ = nullptr;
  proto::h1::BodyDecoder req_body_;
  proto::h1::Method method_ = proto::h1::Method::kGet;
  proto::h1::BodyKind req_body_kind_ = proto::h1::BodyKind::kNone;
  http::Framing resp_framing_ = http::Framing::kNone;
  uint8_t client_minor_ = 1;
  bool client_keep_alive_ = true;
  bool close_after_ = false;      // close the client once this response is out
  bool close_when_sent_ = false;  // closing: no lingering once the FIN is out
  bool req_done_ = false;         // the whole request body was read
  bool req_body_sent_ = false;    // some request body byte went upstream
  bool resp_started_ = false;     // a response head went to the client
  bool resp_done_ = false;
  bool upgrade_ = false;
  bool trailers_sent_ = false;
  bool client_eof_ = false;
  bool first_request_ = true;
  uint64_t req_body_bytes_ = 0;
  uint64_t window_start_ms_ = 0;  // body rate window
  uint64_t window_bytes_ = 0;
  uint64_t last_activity_ms_ = 0;
  uint64_t head_deadline_ms_ = 0;
  uint32_t requests_ = 0;
  // Phase timestamps (ns, the loop's clock) for the latency histograms.
  uint64_t head_start_ns_ = 0;
  uint64_t headers_ns_ = 0;
  uint64_t queued_ns_ = 0;
  uint64_t connect_ns_ = 0;
  void record(stats::Phase p, uint64_t from_ns, bool listener, bool cluster);
  bool client_live_ = true;
  bool tls_failed_ = false;  // encrypting failed: close at the next timer tick
};

}  // namespace egw::downstream

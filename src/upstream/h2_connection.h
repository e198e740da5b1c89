// HTTP/2 toward an endpoint (a cluster with protocol = "h2"): H2Pool hands
// out H2Streams on its H2Connections, one per exchange.
//
// H2Connection puts proto::h2::ClientSession (nghttp2, sans I/O) on a
// ByteStream: cleartext with prior knowledge, or TLS where ALPN must agree
// on "h2". Streams submitted while the connection is still being made wait
// and hear on_upstream_connected() when it is ready (or failed). As on the
// downstream side every step only queues and one flush per loop iteration
// serialises frames; request body bytes go out as the IoBufs the exchange
// handed over (NO_COPY), never copied.
//
// Flow control is coupled to the client: response DATA is delivered to the
// exchange as shared slices of the receive buffer and credited back
// (WINDOW_UPDATE) as it is delivered; a stream the exchange paused keeps
// what arrives (copied out of the receive ring, bounded by the stream
// window we granted) and is credited only once it goes on.
//
// The pool: per endpoint, TLS settings and worker. A new exchange takes the
// least-loaded connection that accepts streams and is under
// min(the endpoint's MAX_CONCURRENT_STREAMS, h2_max_streams); else a new
// connection is opened, up to h2_max_connections; past that, the least
// loaded one takes it anyway (nghttp2 holds the request until a stream
// slot frees). A connection stops taking streams after GOAWAY (either way),
// after h2_max_requests streams or h2_max_age_ms; it is closed once its last
// stream is done, or after the cluster's keep-alive timeout without one. A
// connection that received nothing for h2_ping_idle_ms is PINGed before a
// new stream goes on it: the stream waits for the answer, and a dead
// connection is found before a request is lost on it.
//
// Failure: streams above a GOAWAY's last_stream_id and those refused with
// REFUSED_STREAM report HttpError::kRefused (never processed: the exchange
// sends them again on another connection); a connection that fails reports
// kReset to streams without a response head, kTruncated to the others.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "egw/intrusive_list.h"
#include "proto/h2/client.h"
#include "src/net/byte_stream.h"
#include "src/net/chunk_writer.h"
#include "src/stats/counters.h"
#include "src/upstream/stream.h"
#include "uring/event_loop.h"
#include "uring/io_queue.h"
#include "uring/timer_wheel.h"

namespace egw::tls {
class ClientContext;
struct SavedSession;
}  // namespace egw::tls

namespace egw::upstream {

class H2Connection;
class H2Pool;

// A cluster's HTTP/2 settings, as the pool applies them.
struct H2Options {
  uint32_t max_streams = 100;     // per connection (and at most the endpoint's own limit)
  uint32_t max_connections = 4;   // per endpoint and worker
  uint32_t max_requests = 0;      // streams per connection over its life (0: no limit)
  uint32_t max_age_ms = 0;        // (0: no limit)
  uint32_t ping_idle_ms = 10000;  // PING before reuse after this long without input (0: never)
  uint32_t connect_timeout_ms = 2000;
  uint32_t idle_timeout_ms = 30000;        // a connection without streams is closed after this
  uint32_t initial_window = 1u << 20;      // the windows we grant the endpoint: per stream
  uint32_t connection_window = 16u << 20;  // and per connection
};

class H2Stream final : public Stream {
 public:
  explicit H2Stream(H2Connection& conn);
  ~H2Stream();

  // -- Stream
  bool send_request(const proto::http::RequestHead& req, const http::RequestContext& ctx) override;
  bool send_body(const uring::IoBuf& b) override;
  bool end_body(std::span<const proto::http::Field> trailers) override;
  bool send(const uring::IoBuf& b) override;
  bool send_full() const override;
  void pause_recv() override;
  void resume_recv() override;
  void shutdown_write() override {}
  void set_tunnel() override {}
  tls::Session* tls_session() override;
  const std::string& tls_error() const override;
  bool reused() const override;
  EndpointState& endpoint() const override;
  void release(bool clean, uint32_t max_idle, uint32_t idle_timeout_ms) override;

  // The connection is being made (or checked): on_upstream_connected() follows.
  bool waiting() const { return waiting_; }

 private:
  friend class H2Connection;

  // Request body bytes queued before this many count as full.
  static constexpr size_t kMaxQueued = 64 * 1024;

  void deliver(const uring::IoBuf& data);
  void deliver_held();

  H2Connection& conn_;
  proto::h2::ClientStream st_;
  uring::IoQueue body_;  // request body not yet framed
  uring::IoQueue held_;  // response body that arrived while paused (copies)
  std::string trailer_mem_;
  std::vector<proto::http::Field> trailers_;       // request trailers (names lower case)
  std::vector<proto::http::Field> resp_trailers_;  // response trailers held while paused
  std::string resp_trailer_mem_;
  bool waiting_ = true;
  bool submitted_ = false;  // HEADERS queued: st_.id is the stream's
  bool req_end_ = false;
  bool deferred_ = false;  // the codec waits for body_ (resume when it grows)
  bool paused_ = false;
  bool head_seen_ = false;  // a final response head arrived
  bool resp_end_ = false;   // END_STREAM arrived (delivered unless held)
  bool end_held_ = false;   // ... and waits behind held_
  bool closed_ = false;     // the codec closed the stream
  bool released_ = false;   // the user let go
  bool owe_sent_ = false;   // send_full() was true: on_upstream_sent() is owed
  bool notify_ = false;     // the connection's walk over its streams has this one to tell
  bool reused_ = false;     // the connection had completed a stream when this one opened
  ListNode node_;
};

class H2Connection final : private net::ByteStreamHandler,
                           private proto::h2::ClientHandler,
                           private proto::h2::Sink,
                           private uring::Flushable {
 public:
  H2Connection(H2Pool& pool, uint64_t id);
  ~H2Connection();

  Status connect(uint32_t timeout_ms, tls::ClientContext* tls);
  // A stream for a new exchange (waiting when the connection is not ready
  // yet, or is being checked). Null when out of memory.
  H2Stream* open_stream(StreamUser* user);
  // Whether it takes one more stream under `opt` (`hard`: ignoring the
  // stream limit, as a last resort).
  bool accepts(const H2Options& opt, bool hard) const;
  size_t load() const { return streams_count_; }
  // Stops taking streams; GOAWAY and close once the last one is done.
  void retire();
  // Closes at once: every stream fails.
  void close();

  ListNode pool_node_;

 private:
  friend class H2Stream;
  friend class H2Pool;
  enum class Phase : uint8_t {
    kConnecting,  // TCP (and TLS) being made
    kReady,
    kChecking,  // a PING is out after a quiet spell: new streams wait for its answer
    kClosing,   // our GOAWAY: no new streams, FIN once it is out
    kClosed,
  };

  // -- net::ByteStreamHandler
  void on_ready(net::ByteStream& s) override;
  void on_data(net::ByteStream& s, const uring::IoBuf& buf) override;
  void on_eof(net::ByteStream& s) override;
  void on_error(net::ByteStream& s, int err) override;
  void on_sent(net::ByteStream& s) override;
  void on_released(net::ByteStream& s) override;
  // -- proto::h2::ClientHandler
  void on_response_head(proto::h2::ClientStream& s, const proto::http::ResponseHead& head,
                        bool end) override;
  void on_response_data(proto::h2::ClientStream& s, const uint8_t* data, size_t len) override;
  void on_response_end(proto::h2::ClientStream& s,
                       std::span<const proto::http::Field> trailers) override;
  void on_stream_closed(proto::h2::ClientStream& s, uint32_t error_code) override;
  size_t body_ready(proto::h2::ClientStream& s, size_t max, bool* eof, bool* trailers) override;
  void write_data(proto::h2::ClientStream& s, const uint8_t* frame_header, size_t len) override;
  std::span<const proto::http::Field> request_trailers(proto::h2::ClientStream& s) override;
  void on_goaway(int32_t last_stream_id, uint32_t error_code) override;
  void on_ping_ack() override;
  // -- proto::h2::Sink
  void write(const uint8_t* data, size_t len) override;
  // -- uring::Flushable
  void flush() override;

  static H2Stream& of(proto::h2::ClientStream& s) { return *static_cast<H2Stream*>(s.user); }
  void schedule() { loop_.schedule_flush(*this); }
  // Tells waiting streams the connection is ready (err 0) or failed.
  void wake_waiting(int err);
  // The connection failed: every stream hears it; then it closes.
  void fail(int err);
  void shutdown();
  // Calls f(H2Stream&) for each stream marked notify_, one at a time and
  // looked up again after each call (a user's call may free other streams).
  template <class F>
  void for_marked(F&& f);
  void free_stream(H2Stream& s);
  void arm_idle();
  void on_timer();
  void save_tls();

  H2Pool* pool_;  // null once the pool is gone (the connection is closing)
  uring::EventLoop& loop_;
  std::shared_ptr<EndpointState> ep_;
  H2Options opt_;
  net::ByteStream sock_;
  proto::h2::ClientSession cs_;
  IntrusiveList<H2Stream, &H2Stream::node_> streams_;
  std::vector<std::unique_ptr<H2Stream>> spare_;  // stream storage for reuse
  uring::Timer timer_;
  const uring::IoBuf* in_ = nullptr;                   // the buffer being fed to the codec
  net::ChunkWriter out_;                               // frame bytes being written
  std::vector<std::pair<int32_t, uint32_t>> credits_;  // WINDOW_UPDATEs to give
  std::string tls_error_;
  std::string nv_mem_;  // request heads being built (names lower case)
  std::vector<proto::h2::ClientSession::Nv> nv_;
  uint64_t id_;
  uint64_t created_ms_ = 0;
  uint64_t last_input_ms_ = 0;
  uint64_t check_started_ms_ = 0;
  uint64_t streams_opened_ = 0;
  uint64_t completed_ = 0;  // streams that ended cleanly
  size_t streams_count_ = 0;
  Phase phase_ = Phase::kConnecting;
  bool retired_ = false;
  bool released_ = false;  // the socket is released
  bool tls_saved_ = false;
  bool out_of_memory_ = false;
};

class H2Pool {
 public:
  H2Pool(uring::EventLoop& loop, stats::WorkerStats& stats, std::shared_ptr<EndpointState> ep);
  ~H2Pool();
  H2Pool(const H2Pool&) = delete;
  H2Pool& operator=(const H2Pool&) = delete;

  // A stream toward the endpoint for `user`; `*fresh` is set when it waits
  // for a new connection (the connect time is the exchange's to measure).
  // Null when no connection could be had (memory, descriptors).
  // New connections are made with `tls` (null: cleartext), the context the
  // pool is keyed by.
  H2Stream* open_stream(StreamUser* user, const H2Options& opt, tls::ClientContext* tls,
                        bool* fresh);
  size_t connections() const { return count_; }

  EndpointState& endpoint() const { return *ep_; }
  // TLS: the latest resumption state from a connection to this endpoint.
  std::shared_ptr<tls::SavedSession> tls_resume;

 private:
  friend class H2Connection;
  void closed(H2Connection& c);  // c's socket is released: it is freed

  uring::EventLoop& loop_;
  stats::WorkerStats& stats_;
  std::shared_ptr<EndpointState> ep_;
  H2Options opt_;
  IntrusiveList<H2Connection, &H2Connection::pool_node_> conns_;
  size_t count_ = 0;
  uint64_t next_id_ = 1;
  bool deleting_ = false;
};

}  // namespace egw::upstream

// H2Session: the HTTP/2 server codec for one downstream connection. The
// protocol is proto::h2::ServerSession's (nghttp2, sans I/O); this class puts
// it on the connection's byte stream and makes every stream an Exchange,
// exactly as H1Session does for each HTTP/1.1 request.
//
// Input: client bytes go to the codec as they arrive; a request head becomes
// a neutral head for a new Exchange, DATA becomes body slices. A slice goes
// to the exchange as a shared reference to the receive buffer when the
// exchange has room at once; otherwise it is copied into chunks held by the
// stream (receive buffers are never pinned by a waiting stream). Flow
// control follows the upstream: a stream's window is credited back
// (WINDOW_UPDATE) only as its bytes go to the exchange, so the request body
// the proxy holds for one connection never exceeds the connection window.
//
// Output: every step only queues; one flush per loop iteration (before the
// loop enters the kernel) serialises frames. Frame headers and HPACK blocks
// are written into a chunk; response body bytes go to the socket as the
// references the exchange handed over (nghttp2's NO_COPY), never copied. A
// stream that buffers more than kMaxStreamBuffered of response, or adds to a
// connection that buffers more than kMaxConnBuffered, pauses its upstream
// until the client's windows let the queues drain.
//
// Connection life: SETTINGS ACK timeout, idle timeout (no open stream),
// header-block timeout, a cap on streams per connection, graceful drain
// (GOAWAY notice, then GOAWAY with the last stream), GOAWAY with the error on
// a connection error; then close_notify/FIN and a short linger.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "egw/intrusive_list.h"
#include "proto/h2/server.h"
#include "src/downstream/connection.h"
#include "src/net/chunk_writer.h"
#include "src/proxy/exchange.h"
#include "uring/event_loop.h"
#include "uring/io_queue.h"

namespace egw::downstream {

class H2Session;

// One HTTP/2 stream: its codec state, its exchange and its queues.
class H2Stream final : private proxy::Downstream {
 public:
  H2Stream(H2Session& session, uring::EventLoop& loop);
  ~H2Stream();

 private:
  friend class H2Session;

  bool response_head(const proto::http::ResponseHead& head,
                     const http::ResponseContext& ctx) override;
  void response_data(const uring::IoBuf& data) override;
  void response_trailers(std::span<const proto::http::Field> trailers) override;
  void response_end() override;
  void respond_error(uint16_t status) override;
  void respond_local(const config::RouteConfig& route) override;
  void reset() override;
  void resume_request_body() override;
  void tunnel_open() override;
  void tunnel_eof() override;

  H2Session& session_;
  proto::h2::Stream st_;
  proxy::Exchange* ex_ = nullptr;
  uring::IoQueue body_;      // response body not yet framed
  uring::IoQueue req_body_;  // request body the exchange had no room for (copies)
  std::string trailer_mem_;  // response trailers (names lower-cased)
  std::vector<proto::http::Field> resp_trailers_;
  uint64_t head_ns_ = 0;      // the request head's first frame
  uint64_t progress_ms_ = 0;  // the last time its response moved (or began to wait)
  uint32_t fill_used_ = 0;    // bytes used in fill_ (request body copies)
  uring::Chunk* fill_ = nullptr;
  proto::http::Method method_ = proto::http::Method::kGet;
  bool req_end_ = false;         // END_STREAM from the client (maybe not yet delivered)
  bool req_end_sent_ = false;    // ... and delivered to the exchange
  bool resp_head_sent_ = false;  // a final response head was submitted
  bool resp_end_ = false;        // the body's end is known (the queue is all of it)
  bool resp_done_ = false;       // the last frame went out
  bool deferred_ = false;        // the codec waits for body_ (resume when it grows)
  bool paused_ = false;          // the upstream is paused for our queue
  bool tunnel_ = false;
  bool tunnel_end_sent_ = false;  // the client's END_STREAM went to the tunnel
  bool upgrade_ = false;          // RFC 8441 WebSocket: a GET + Upgrade upstream, 200 on its 101
  std::string ws_key_;            // the Sec-WebSocket-Key sent upstream for it
  bool discard_ = false;          // the exchange is done: request bytes are dropped
  bool closed_ = false;           // the codec closed the stream (on_stream_closed ran)
  ListNode node_;
};

class H2Session final : public Codec,
                        private proto::h2::Handler,
                        private proto::h2::Sink,
                        private uring::Flushable {
 public:
  // Response body a stream queues before its upstream is paused.
  static constexpr size_t kMaxStreamBuffered = 256 * 1024;
  static constexpr size_t kResumeBuffered = 64 * 1024;
  // Response body all streams of a connection queue before every stream
  // that adds to it is paused too (resumed below half of it).
  static constexpr size_t kMaxConnBuffered = 1024 * 1024;

  H2Session(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
            const ClientConn& conn);
  ~H2Session() override;

  void start();
  // -- Codec
  void on_data(const uring::IoBuf& buf) override;
  void on_eof() override;
  void on_error(int err) override;
  void on_sent() override;
  void abort() override;
  void drain() override;
  void describe(SessionInfo& out) const override {
    out.protocol = "h2";
    out.state = closing_ ? "closing" : fatal_ ? "goaway_error" : draining_ ? "draining" : "open";
    out.streams = static_cast<uint32_t>(streams_.size());
  }

 private:
  friend class H2Stream;

  // -- proto::h2::Handler
  proto::h2::Stream* begin_stream(int32_t id) override;
  void on_request(proto::h2::Stream& s, const proto::http::RequestHead& head, bool end) override;
  void on_request_rejected(proto::h2::Stream& s, uint16_t status) override;
  void on_request_data(proto::h2::Stream& s, const uint8_t* data, size_t len) override;
  void on_request_end(proto::h2::Stream& s, std::span<const proto::http::Field> trailers) override;
  void on_stream_closed(proto::h2::Stream& s, uint32_t error_code) override;
  size_t body_ready(proto::h2::Stream& s, size_t max, bool* eof, bool* trailers) override;
  bool write_data(proto::h2::Stream& s, const uint8_t* frame_header, size_t len) override;
  std::span<const proto::http::Field> response_trailers(proto::h2::Stream& s) override;
  // -- proto::h2::Sink
  void write(const uint8_t* data, size_t len) override;
  // -- uring::Flushable: serialise what is queued
  void flush() override;

  static H2Stream& of(proto::h2::Stream& s) { return *static_cast<H2Stream*>(s.user); }
  void schedule() { loop_.schedule_flush(*this); }
  // Request body toward the exchange, as far as it has room.
  void pump_request(H2Stream& hs);
  void copy_request_data(H2Stream& hs, const uint8_t* data, size_t len);
  void credit(int32_t id, size_t n);
  // A response of the proxy's own: status, fields, body (owned).
  void respond(H2Stream& hs, uint16_t status, std::span<const proto::h2::ServerSession::Nv> fields,
               const uring::IoBuf& body);
  void send_error(H2Stream& hs, uint16_t status);
  void finish_exchange(H2Stream& hs);
  void free_stream(H2Stream& hs);
  void arm_timer();
  void on_timer();
  void check_stalls();
  void set_fatal();
  void close();
  void count_status(uint16_t status);

  server::Worker& worker_;
  server::WorkerSnapshot& snap_;
  const proxy::ListenerView& listener_;
  uring::EventLoop& loop_;
  net::ByteStream& client_;
  uring::Timer& timer_;
  const SocketAddress& peer_;
  net::Destination& dst_;
  const uint32_t* handshake_us_;
  uint64_t hash_ = 0;
  proto::h2::ServerSession ss_;
  IntrusiveList<H2Stream, &H2Stream::node_> streams_;
  const uring::IoBuf* in_ = nullptr;                   // the buffer being fed to the codec
  net::ChunkWriter out_;                               // frame bytes being written
  std::vector<std::pair<int32_t, uint32_t>> credits_;  // WINDOW_UPDATEs to give
  std::vector<int32_t> finish_rst_;   // streams to reset (NO_ERROR) once their response is out
  std::vector<H2Stream*> to_resume_;  // upstreams being resumed (null: freed meanwhile)
  size_t buffered_ = 0;               // response body queued over all streams
  size_t paused_ = 0;                 // streams whose upstream is paused
  std::vector<proto::h2::ServerSession::Nv> nv_;  // reused for every head
  uint64_t idle_since_ms_ = 0;
  uint64_t drain_ms_ = 0;  // when the GOAWAY notice went out
  uint64_t stall_check_ms_ = 0;
  uint64_t fatal_ms_ = 0;  // the next look for stalled streams (0: none due)
  uint64_t requests_ = 0;
  bool draining_ = false;
  bool fatal_ = false;    // a connection error: GOAWAY, then close
  bool closing_ = false;  // FIN sent; lingering
  bool closed_ = false;
};

}  // namespace egw::downstream

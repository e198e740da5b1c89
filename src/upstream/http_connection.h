// HttpConnection: one HTTP/1.1 connection to an upstream endpoint, the client
// codec of the proxy's upstream side. It writes the request its user hands it
// (a neutral head, body slices, an end with trailers) with HTTP/1.1 framing of
// its own choosing (Content-Length for a known length, chunked otherwise),
// and parses what comes back into neutral response events: head (1xx
// included), body bytes (de-framed, as slices of the receive buffers),
// trailers (as fields), end. Between
// exchanges it sits idle in its endpoint's Pool with its receive armed, so a
// connection the server closes (or that sends anything unasked) is noticed
// and never reused.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "egw/address.h"
#include "egw/intrusive_list.h"
#include "egw/result.h"
#include "proto/h1/body.h"
#include "proto/h1/parser.h"
#include "proto/http/message.h"
#include "src/http/forwarding.h"
#include "src/http/h1_trailers.h"
#include "src/http/head_buffer.h"
#include "src/net/byte_stream.h"
#include "src/upstream/stream.h"
#include "uring/io_queue.h"
#include "uring/stream_socket.h"
#include "uring/timer_wheel.h"

namespace egw::upstream {

class HttpConnection;
class Pool;
class EndpointState;

// Per-worker resources parsers borrow while a head is in progress.
struct HeaderBlock {
  static constexpr uint32_t kCapacity = 256;
  HeaderBlock() {}  // user-provided: a slab's T() must not zero the storage
  proto::http::FieldStorage<kCapacity> headers;
};

class HttpConnection final : public Stream, private net::ByteStreamHandler {
 public:
  // The largest response head an endpoint may send.
  static constexpr uint32_t kMaxResponseHeadBytes = 24576;

  // `home` is the slab the connection came from: it returns there once its
  // socket is released.
  HttpConnection(uring::EventLoop& loop, SlabPool<HeaderBlock>& headers,
                 SlabPool<HttpConnection>& home, std::shared_ptr<EndpointState> endpoint,
                 Pool* pool);
  ~HttpConnection();

  // Connects; with `tls` (kept alive by the connection's session) the TLS
  // handshake follows, and on_upstream_connected() reports once it is done
  // (EPROTO when it failed: tls_error() says why).
  Status connect(uint32_t timeout_ms, tls::ClientContext* tls = nullptr);
  // The TLS session, or null on a plain connection.
  tls::Session* tls_session() override { return sock_.tls_session(); }
  const std::string& tls_error() const override { return tls_error_; }
  // Whether a saved TLS session was offered (resumption attempt).
  bool tls_resume_offered() const { return resume_offered_; }

  // A new exchange: writes the request head for `req` (the forwarding
  // policy with `ctx`, then HTTP/1.1 framing). False when it does not fit
  // (or memory ran out): nothing was sent.
  bool send_request(const proto::http::RequestHead& req, const http::RequestContext& ctx) override;
  // Request body bytes (owned), framed as the head announced. False when
  // out of memory for the framing: the connection is broken (nothing is
  // reported through the user; the caller treats it as a failed exchange).
  bool send_body(const uring::IoBuf& b) override;
  // The end of the request body (the last chunk and `trailers` when chunked;
  // trailers are dropped on a Content-Length body). False as send_body().
  bool end_body(std::span<const proto::http::Field> trailers) override;
  // Raw bytes (a tunnel). False when the connection cannot send any more.
  bool send(const uring::IoBuf& b) override;
  bool send_full() const override { return sock_.send_full(); }
  // Back-pressure from the user: nothing more is delivered (what already
  // arrived waits, still charged to this socket's receive cap) until
  // resume_recv(), which delivers it first.
  void pause_recv() override;
  void resume_recv() override;
  void shutdown_write() override;
  // From now on bytes are relayed raw (after a 101 or a 2xx to CONNECT).
  void set_tunnel() override;

  // The exchange ended cleanly and the connection can carry another one.
  bool reusable() const;
  // Exchanges this connection completed (0: it never served one).
  uint32_t exchanges() const { return exchanges_; }
  bool response_started() const { return response_started_; }
  bool reused() const override { return exchanges_ > 0; }
  EndpointState& endpoint() const override { return *endpoint_; }
  const std::shared_ptr<EndpointState>& endpoint_ptr() const { return endpoint_; }
  Pool* pool() const { return pool_; }
  // send_proxy: the PROXY header written when the connection connects (set
  // before connect(); the pool reuses the connection only for exchanges
  // whose header is the same).
  void set_proxy_header(std::string_view h) { proxy_header_.assign(h); }
  std::string_view proxy_header() const { return proxy_header_; }

  // Stream: back to the pool after a clean exchange, closed otherwise.
  void release(bool clean, uint32_t max_idle, uint32_t idle_timeout_ms) override;
  // Closes (reset when `abortive`); the pool or the user is told nothing
  // more; the object frees itself once the socket is released.
  void close(bool abortive = false);
  bool closing() const { return closing_; }

  // -- while idle in the pool ----------------------------------------------------
  ListNode pool_node_;
  uring::Timer idle_timer_;
  uint64_t idle_since_ms_ = 0;

 private:
  enum class Phase : uint8_t { kConnecting, kIdle, kHead, kBody, kDone, kTunnel };

  void on_connected(net::ByteStream& s) override;
  void on_ready(net::ByteStream& s) override;
  void on_data(net::ByteStream& s, const uring::IoBuf& buf) override;
  void on_eof(net::ByteStream& s) override;
  void on_error(net::ByteStream& s, int err) override;
  void on_sent(net::ByteStream& s) override;
  void on_released(net::ByteStream& s) override;

  void process();
  void handle_eof();
  void save_tls();
  void fail(HttpError e, int err);
  void release_head_storage();
  void begin(proto::h1::Method method);
  void end_response();

  uring::EventLoop& loop_;
  SlabPool<HeaderBlock>& header_pool_;
  SlabPool<HttpConnection>& home_;
  std::shared_ptr<EndpointState> endpoint_;
  Pool* pool_;
  net::ByteStream sock_;
  std::string tls_error_;
  std::string proxy_header_;
  bool resume_offered_ = false;
  bool tls_saved_ = false;  // this connection's resumption state went to the pool
  uring::IoQueue in_;
  http::TrailerCollector trailers_;
  Phase phase_ = Phase::kConnecting;
  bool chunked_request_ = false;
  proto::h1::Method method_ = proto::h1::Method::kGet;
  HeaderBlock* header_block_ = nullptr;
  std::optional<proto::h1::ResponseParser> parser_;
  http::HeadBuffer head_buf_;
  proto::h1::BodyDecoder body_;
  bool response_started_ = false;
  bool keep_alive_ = false;
  bool eof_ = false;
  bool eof_waiting_ = false;  // the peer's EOF came while paused with input queued
  bool paused_ = false;
  bool closing_ = false;
  bool broken_ = false;  // never reuse
  uint32_t exchanges_ = 0;
};

}  // namespace egw::upstream

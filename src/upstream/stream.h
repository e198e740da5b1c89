// Stream: one exchange's request and response toward an endpoint, whatever
// the protocol the cluster speaks. An HTTP/1.1 connection (HttpConnection)
// is a stream for one exchange at a time and goes back to its Pool between
// them; an HTTP/2 connection (H2Connection) carries many H2Streams at once.
// The exchange (src/proxy/exchange.h) sees only this interface: it writes the
// request as a neutral head, body slices and an end, and hears the response
// as neutral events through StreamUser.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "proto/http/message.h"
#include "src/http/forwarding.h"
#include "uring/event_loop.h"

namespace egw::tls {
class Session;
}

namespace egw::upstream {

class EndpointState;
class Stream;

enum class HttpError : uint8_t {
  kConnect,      // connect failed or timed out
  kReset,        // the connection (or stream) failed before any response byte
  kBadResponse,  // the response violates HTTP
  kTruncated,    // the connection (or stream) ended inside a response
  kRefused,      // HTTP/2: the endpoint refused the stream unprocessed (safe to resend)
};
const char* to_string(HttpError e);

class StreamUser {
 public:
  // The connection the stream runs on is ready (err 0), or failed to be
  // made (the errno; EPROTO for TLS: tls_error() says why).
  virtual void on_upstream_connected(Stream& c, int err) = 0;
  // A response head, informational (1xx) ones included; views are valid
  // during the call only.
  virtual void on_response_head(Stream& c, const proto::http::ResponseHead& head) = 0;
  // Body bytes (de-framed) or, after set_tunnel(), raw bytes; the user owns
  // the IoBuf and releases it.
  virtual void on_response_data(Stream& c, const uring::IoBuf& data) = 0;
  // Trailer fields (valid during the call), just before on_response_end().
  virtual void on_response_trailers(Stream& c, std::span<const proto::http::Field> trailers) = 0;
  virtual void on_response_end(Stream& c) = 0;
  // Tunnel mode: the server finished sending.
  virtual void on_tunnel_eof(Stream& c) = 0;
  virtual void on_upstream_error(Stream& c, HttpError e, int err) = 0;
  // The stream can take request bytes again (send_full() went false).
  virtual void on_upstream_sent(Stream& c) = 0;

 protected:
  ~StreamUser() = default;
};

class Stream {
 public:
  void set_user(StreamUser* user) { user_ = user; }
  StreamUser* user() const { return user_; }

  // Writes the request head for `req` (the forwarding policy with `ctx`,
  // then the protocol's framing). False when it does not fit (or memory ran
  // out): nothing was sent.
  virtual bool send_request(const proto::http::RequestHead& req,
                            const http::RequestContext& ctx) = 0;
  // Request body bytes (owned). False when out of memory: the stream is
  // broken (nothing is reported through the user).
  virtual bool send_body(const uring::IoBuf& b) = 0;
  // The end of the request body, with its trailers (dropped where the
  // framing cannot carry them). False as send_body().
  virtual bool end_body(std::span<const proto::http::Field> trailers) = 0;
  // Raw bytes (a tunnel). False when the stream cannot send any more.
  virtual bool send(const uring::IoBuf& b) = 0;
  virtual bool send_full() const = 0;
  // Back-pressure from the user: nothing more is delivered until
  // resume_recv(), which delivers what waited first.
  virtual void pause_recv() = 0;
  virtual void resume_recv() = 0;
  virtual void shutdown_write() = 0;
  // From now on bytes are relayed raw (after a 101 or a 2xx to CONNECT).
  virtual void set_tunnel() = 0;

  virtual tls::Session* tls_session() = 0;
  virtual const std::string& tls_error() const = 0;
  // The connection carried an exchange before this one (a failure may be a
  // stale keep-alive connection rather than the endpoint's fault).
  virtual bool reused() const = 0;
  virtual EndpointState& endpoint() const = 0;

  // The user is done with the stream: nothing more is reported. `clean`:
  // the request and the response both ended, so the connection may carry
  // another exchange (HTTP/1.1: back to its pool, kept `max_idle` at most,
  // for `idle_timeout_ms`). Otherwise the stream is abandoned (HTTP/1.1:
  // the connection is closed; HTTP/2: the stream is reset).
  virtual void release(bool clean, uint32_t max_idle, uint32_t idle_timeout_ms) = 0;

 protected:
  ~Stream() = default;
  StreamUser* user_ = nullptr;
};

}  // namespace egw::upstream

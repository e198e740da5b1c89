// H1Session: the HTTP/1.1 server codec for one downstream connection. It
// reads requests one at a time (pipelined ones wait their turn, in order),
// turns each into a neutral head for a proxy::Exchange (which routes, picks,
// connects and retries), feeds it the de-framed request body with
// back-pressure, and writes what the exchange hands back as HTTP/1.1: the
// response head with its framing (re-chunked for an HTTP/1.1 client, read
// until close for HTTP/1.0), body, trailers; the proxy's own answers; a raw
// relay after an accepted Upgrade or CONNECT.
//
//   kIdle -> kHead -> kExchange -> kIdle ...        (keep-alive)
//                  \-> kLocal (an answer of the proxy's own) -> kIdle | close
//   kExchange -> kTunnel (101, or 2xx to CONNECT)
//   any -> kClosing (FIN sent; reading and dropping until the peer's FIN or
//                    the linger time)
//
// An idle keep-alive connection holds its socket, this object and its timer;
// a request's parser, header storage and exchange are taken when its first
// byte arrives and given back when its response is out.
//
// Every limit a client controls is bounded: head bytes, header count, request
// line, body size, body rate, time to send the head, idle time. Errors are
// answered with short, generic bodies (400, 404, 405, 408, 413, 414, 431, 501,
// 502, 503, 504) and counted.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

#include "egw/address.h"
#include "egw/unique_fd.h"
#include "proto/h1/body.h"
#include "proto/h1/parser.h"
#include "src/downstream/connection.h"
#include "src/http/h1_heads.h"
#include "src/http/h1_trailers.h"
#include "src/http/head_buffer.h"
#include "src/net/byte_stream.h"
#include "src/proxy/exchange.h"
#include "uring/io_queue.h"
#include "uring/stream_socket.h"
#include "uring/timer_wheel.h"

namespace egw::server {
class Worker;
struct WorkerSnapshot;
}  // namespace egw::server

namespace egw::downstream {

// What one request holds while it is read and forwarded: header storage, the
// parser, the body decoder. Taken from a worker slab when the request's
// first byte arrives, given back when its response is out: an idle
// connection holds none.
struct H1Request {
  static constexpr uint32_t kMaxHeaders = 256;
  explicit H1Request(uring::EventLoop& loop) : head_buf(loop) {}
  proto::http::FieldStorage<kMaxHeaders> headers;
  std::optional<proto::h1::RequestParser> parser;
  proto::h1::BodyDecoder body;
  http::TrailerCollector trailers;
  http::HeadBuffer head_buf;  // a head that spans receive buffers, made contiguous
  uring::IoBuf head_mem;      // keeps the parsed head's views alive
};

class H1Session final : public Codec, private proxy::Downstream {
 public:
  enum class State : uint8_t {
    kIdle,      // between requests
    kHead,      // reading a request head
    kExchange,  // an exchange is under way (queued, connecting or forwarding)
    kLocal,     // answering by itself (route respond, or an error)
    kTunnel,    // byte relay after an upgrade
    kClosing,
  };
  static const char* to_string(State s);

  // Takes over `conn` (ready: TLS done) once its first byte arrived.
  H1Session(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
            const ClientConn& conn);
  ~H1Session() override;

  void start();
  // -- Codec: the client's byte stream
  void on_data(const uring::IoBuf& buf) override;
  void on_eof() override;
  void on_error(int err) override;
  void on_sent() override;
  void abort() override;
  void drain() override;
  void describe(SessionInfo& out) const override {
    out.protocol = "http1";
    out.state = to_string(state_);
  }
  State state() const { return state_; }

 private:
  // -- proxy::Downstream
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

  // Gives back what one request holds: its exchange (and with it the
  // upstream connection and the slot), raw head, parser, header block.
  void drop_request_state();
  void process_input();
  void parse_head();
  void begin_exchange();
  void pump_request_body();
  void discard_request_body();
  void send_error(uint16_t status, bool close_after);
  void log_refused(uint16_t status);
  void finish_exchange();
  void set_state(State s);
  void arm_timer(uint64_t delay_ms);
  void on_timer();
  void send_client(const uring::IoBuf& b);
  void send_client_static(std::string_view s);
  void update_client_recv();
  void close(bool reset = false);
  void count_status(uint16_t status);
  void record(stats::Phase p, uint64_t from_ns);

  server::Worker& worker_;
  server::WorkerSnapshot& snap_;
  const proxy::ListenerView& listener_;
  net::ByteStream& client_;
  const SocketAddress& peer_;
  net::Destination& dst_;
  const uint32_t* handshake_us_;
  uint64_t hash_ = 0;
  uring::IoQueue in_;
  uring::Timer& timer_;
  H1Request* rq_ = nullptr;  // the current request
  proxy::Exchange* ex_ = nullptr;
  State state_ = State::kIdle;
  proto::h1::Method method_ = proto::h1::Method::kGet;
  http::Framing resp_framing_ = http::Framing::kNone;
  uint8_t client_minor_ = 1;
  bool client_keep_alive_ = true;
  bool close_after_ = false;      // close the client once this response is out
  bool close_when_sent_ = false;  // closing: no lingering once the FIN is out
  bool req_done_ = false;         // the whole request body was read
  bool resp_started_ = false;     // a final response head went to the client
  bool resp_done_ = false;
  bool trailers_sent_ = false;
  bool client_eof_ = false;
  bool first_request_ = true;
  // Phase timestamps (ns, the loop's clock) for the latency histograms.
  uint64_t head_start_ns_ = 0;
};

}  // namespace egw::downstream

// Connection: one client connection slot of a worker. It carries at most one
// request at a time (no pipelining) and reads its response with the strict
// HTTP/1.1 parser; it outlives the TCP connections it opens: a keep-alive
// slot reconnects lazily when its connection was closed, and with
// --new-connection-per-request each request opens a fresh one.
//
// Timestamps (CLOCK_MONOTONIC):
//   intended  given by the Client (the schedule, or "now" in a closed loop);
//   sent      read when the request is handed to the socket (the send itself
//             goes out in the same loop iteration, before the next wait);
//   first/last response byte: the time the loop reaped the completion that
//             carried it (the loop's cached clock, read right after
//             io_uring_enter returns), so time spent handling other
//             completions of that batch is not charged to this response.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "proto/h1/body.h"
#include "proto/h1/parser.h"
#include "src/load/lane.h"
#include "src/load/stats.h"
#include "src/net/byte_stream.h"
#include "uring/stream_socket.h"
#include "uring/timer_wheel.h"

namespace egw::load {

class Client;

class Connection final : public Lane, public net::ByteStreamHandler {
 public:
  enum class State : uint8_t {
    kDisconnected,  // no socket; a request assigned now connects first
    kConnecting,
    kReady,  // connected, no request
    kBusy,   // a request is on the wire or its response is arriving
  };

  explicit Connection(Client& client);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens the connection before the run (keep-alive). Reports to
  // Client::on_available() when connected or failed.
  void preconnect() override;
  // Assigns a request. The connection must be available (not carrying a
  // request). `measured`: its intended time falls in the measured window.
  // The outcome reaches Stats, then Client::request_ended() and
  // Client::on_available(); either may happen before this returns.
  void start(uint64_t intended_ns, bool measured) override;
  // Gives up the request in flight, if any, counting it as `kind`.
  void abandon(ErrorKind kind) override;
  // Comes back through Client::on_available() after `ms` (closed loop, after
  // a failed connect: a refused port must not become a busy loop).
  void backoff(uint64_t ms) override;
  // Closes the socket (FIN); the connection must carry no request.
  void close() override;

  State state() const { return state_; }
  bool carrying_request() const { return has_request_; }
  bool backing_off() const { return backing_off_; }
  // When it last became available (for the generator-lag measurement).
  uint64_t idle_since_ns() const override { return idle_since_ns_; }

 private:
  enum class Phase : uint8_t { kHead, kBody };
  static constexpr uint32_t kMaxHeaders = 100;

  // ByteStreamHandler. A stream this connection already let go of only
  // ever reports on_released() (and data it still had, which is dropped).
  void on_connected(net::ByteStream& s) override;
  void on_ready(net::ByteStream& s) override;
  void on_data(net::ByteStream& s, const uring::IoBuf& buf) override;
  void on_eof(net::ByteStream& s) override;
  void on_error(net::ByteStream& s, int err) override;
  void on_sent(net::ByteStream&) override {}
  void on_released(net::ByteStream& s) override;

  void connect();
  void connect_failed(int err);
  // https: the handshake finished (the connection is ready), or failed.
  void tls_ready();
  void tls_failed();
  // Response bytes (plaintext), as on_data() gets them on a plain connection.
  void on_plain(const uring::IoBuf& buf);
  void peer_closed();
  void send_request();
  // Feeds response bytes; may finish or fail the request (and so start the
  // next one on this connection before it returns).
  void consume(std::string_view in);
  void finish();
  void fail(ErrorKind kind);
  // Lets go of the socket: reset (no TIME_WAIT) or orderly close.
  void drop_socket(bool reset);
  void make_available(bool connect_failed);
  void on_timer();

  Client& client_;
  net::ByteStream* sock_ = nullptr;
  State state_ = State::kDisconnected;
  Phase phase_ = Phase::kHead;
  bool has_request_ = false;
  bool measured_ = false;
  bool setup_connect_ = false;
  bool backing_off_ = false;
  bool keep_alive_ = false;
  uint16_t status_ = 0;
  uint64_t intended_ns_ = 0;
  uint64_t sent_ns_ = 0;
  uint64_t first_byte_ns_ = 0;
  uint64_t connect_start_ns_ = 0;
  uint64_t idle_since_ns_ = 0;
  uint64_t response_bytes_ = 0;

  std::array<proto::h1::Header, kMaxHeaders> headers_{};
  proto::h1::ResponseParser parser_;
  proto::h1::BodyDecoder body_;
  // A head split over receive buffers is copied here and re-parsed
  // (allocated the first time it happens on this connection).
  std::unique_ptr<char[]> scratch_;
  uint32_t scratch_len_ = 0;
  uring::Timer timer_;  // request timeout, TLS handshake timeout, or the closed-loop back-off
  uint64_t handshake_start_ns_ = 0;
  bool tls_saved_ = false;
};

}  // namespace egw::load

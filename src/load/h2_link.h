// H2Link: one HTTP/2 connection of a worker (--h2), with --streams lanes
// (H2Lane), each carrying one request at a time as one stream. The codec
// is proto::h2::ClientSession, the proxy's own; the socket (and TLS, with
// ALPN h2) is a net::ByteStream. Timestamps are taken as for HTTP/1.1
// (connection.h): `sent` when the HEADERS are queued (they go out in the
// same loop iteration), first and last response byte when the loop reaped
// the completion that carried them.
//
// The link connects lazily (or before the run, keep-alive set-up) and
// reconnects when a request needs it after the connection was lost or the
// server sent GOAWAY. A lane is available again only once its stream is
// closed in the codec (a response that ended, a reset), so its stream
// storage is never reused while nghttp2 still refers to it. Response bodies
// are credited back (WINDOW_UPDATE) as they arrive.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proto/h2/client.h"
#include "src/load/lane.h"
#include "src/load/stats.h"
#include "src/net/byte_stream.h"
#include "src/net/chunk_writer.h"
#include "uring/event_loop.h"
#include "uring/timer_wheel.h"

namespace egw::load {

class Client;
class H2Link;

class H2Lane final : public Lane {
 public:
  explicit H2Lane(H2Link& link);
  ~H2Lane() override;

  void preconnect() override;
  void start(uint64_t intended_ns, bool measured) override;
  void abandon(ErrorKind kind) override;
  void backoff(uint64_t ms) override;
  void close() override;
  uint64_t idle_since_ns() const override { return idle_since_ns_; }

 private:
  friend class H2Link;

  // The request's outcome: a response (finish) or an error.
  void finish(uint64_t now_ns);
  void fail(ErrorKind kind);
  // Back to the Client once nothing of the stream is left in the codec.
  void make_available(bool connect_failed);
  void on_timer();

  H2Link& link_;
  proto::h2::ClientStream st_;
  uring::Timer timer_;
  uint64_t intended_ns_ = 0;
  uint64_t sent_ns_ = 0;
  uint64_t first_byte_ns_ = 0;
  uint64_t idle_since_ns_ = 0;
  uint64_t response_bytes_ = 0;
  size_t body_sent_ = 0;
  uint16_t status_ = 0;
  bool has_request_ = false;  // assigned and not yet ended (counted)
  bool measured_ = false;
  bool waiting_ = false;     // assigned, waiting for the connection
  bool in_stream_ = false;   // its stream is open in the codec
  bool preconnect_ = false;  // set-up: report when the connection is made
  bool backing_off_ = false;
  bool resent_ = false;  // the request goes again after a refusal
};

class H2Link final : private net::ByteStreamHandler,
                     private proto::h2::ClientHandler,
                     private proto::h2::Sink,
                     private uring::Flushable {
 public:
  H2Link(Client& client, unsigned streams);
  ~H2Link();

  std::vector<std::unique_ptr<H2Lane>>& lanes() { return lanes_; }

 private:
  friend class H2Lane;
  enum class State : uint8_t { kDisconnected, kConnecting, kReady };

  void connect();
  // A lane wants to send: now, or once connected.
  // (`again`: a stream the server refused unprocessed, sent once more.)
  void request(H2Lane& lane, bool again);
  void submit(H2Lane& lane);
  // The connection failed or closed: every lane with a request fails with
  // `kind`, lanes waiting in set-up are told.
  void lost(ErrorKind kind, int err);
  void drop_socket(bool reset);
  void maybe_reconnect();
  void schedule();
  void flush() override;
  bool idle() const;

  // -- net::ByteStreamHandler
  void on_connected(net::ByteStream& s) override;
  void on_ready(net::ByteStream& s) override;
  void on_data(net::ByteStream& s, const uring::IoBuf& buf) override;
  void on_eof(net::ByteStream& s) override;
  void on_error(net::ByteStream& s, int err) override;
  void on_sent(net::ByteStream&) override { schedule(); }
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
  std::span<const proto::http::Field> request_trailers(proto::h2::ClientStream&) override {
    return {};
  }
  void on_goaway(int32_t last_stream_id, uint32_t error_code) override;
  // -- proto::h2::Sink
  void write(const uint8_t* data, size_t len) override;

  static H2Lane& of(proto::h2::ClientStream& s) { return *static_cast<H2Lane*>(s.user); }

  Client& client_;
  std::vector<std::unique_ptr<H2Lane>> lanes_;
  net::ByteStream* sock_ = nullptr;
  std::unique_ptr<proto::h2::ClientSession> cs_;
  std::unique_ptr<net::ChunkWriter> out_;
  std::vector<std::pair<int32_t, uint32_t>> credits_;
  std::vector<proto::h2::ClientSession::Nv> fields_;  // the request's fields (built once)
  std::string field_mem_;
  uint64_t connect_start_ns_ = 0;
  uint64_t handshake_start_ns_ = 0;
  uring::Timer timer_;  // the TLS handshake timeout
  State state_ = State::kDisconnected;
  bool tls_saved_ = false;
  bool out_of_memory_ = false;
  bool measured_connect_ = false;  // the connect is timed (set-up, or a measured request waits)
};

}  // namespace egw::load

// HTTP/2 client codec over nghttp2, sans I/O: the proxy's side of a
// connection to an HTTP/2 endpoint (a cluster with protocol = "h2"). Bytes in
// (recv), bytes out (send, through a Sink), requests submitted as name-value
// lists, responses as neutral heads (proto/http/message.h). Nothing here
// touches a socket.
//
// What nghttp2 checks of responses (HTTP messaging on): `:status` present
// and alone among pseudo-fields, field names and values, connection-specific
// fields, content-length against the DATA received; a response that fails
// is a stream reset with PROTOCOL_ERROR, reported through on_stream_closed.
// What this codec adds: a cap on the size and count of a response's header
// list (past it the stream is reset, the connection goes on), 1xx heads told
// apart from the final one and from trailers, and push refused in SETTINGS.
//
// Flow control is the caller's, as on the server side: automatic
// WINDOW_UPDATE is off, and response body bytes are credited back with
// consume() once they have gone on toward the client. Request bodies are
// read through the Handler without copying (NGHTTP2_DATA_FLAG_NO_COPY).
//
// GOAWAY from the server: on_goaway() first; then nghttp2 closes every
// stream above its last_stream_id with REFUSED_STREAM (never processed, safe
// to send again elsewhere), and no new stream can be opened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/h2/server.h"
#include "proto/http/message.h"

struct nghttp2_session;
struct nghttp2_rcbuf;

namespace egw::proto::h2 {

struct ClientSettings {
  uint32_t initial_window = 1u << 20;      // per stream (response bodies)
  uint32_t connection_window = 16u << 20;  // all streams together
  uint32_t max_header_list = 65536;        // response header list bytes (RFC 9113 count)
  uint32_t max_headers = 256;              // fields per response header block
  uint32_t max_continuations = 8;          // where the library has the limit
};

// What the codec keeps of one request stream: the response's fields as
// decoded (reference-counted by nghttp2, never copied) until it closes. The
// caller provides it to submit_request() and gets it back in
// on_stream_closed().
struct ClientStream {
  int32_t id = 0;
  void* user = nullptr;  // the Handler's
  std::vector<ph::Field> fields;
  std::vector<ph::Field> trailers;
  std::vector<nghttp2_rcbuf*> refs;
  uint16_t status = 0;
  uint32_t header_bytes = 0;
  bool final_head = false;  // the final response head arrived (later HEADERS are trailers)
  bool in_trailers = false;
  bool too_large = false;  // the header list went past the caps: the stream is reset
  bool malformed = false;  // ... or a head lacked :status
  bool ended = false;      // END_STREAM received

  // Back to a fresh stream, keeping the vectors' capacity.
  void reset();
};

class ClientHandler {
 public:
  // A response head: a 1xx one, or the final one (`end`: END_STREAM came
  // with it, no body or trailers follow). Views are valid during the call.
  virtual void on_response_head(ClientStream& s, const ph::ResponseHead& head, bool end) = 0;
  // Body bytes (valid during the call); credit them with consume() later.
  virtual void on_response_data(ClientStream& s, const uint8_t* data, size_t len) = 0;
  // END_STREAM after a body (with trailers, or none).
  virtual void on_response_end(ClientStream& s, std::span<const ph::Field> trailers) = 0;
  // The stream is gone: the last call for `s`. `error_code` is kNoError for
  // a clean end, the code of the RST_STREAM otherwise (REFUSED_STREAM also
  // for a stream a GOAWAY left unprocessed).
  virtual void on_stream_closed(ClientStream& s, uint32_t error_code) = 0;
  // Request body: how many bytes are ready for `s` (up to `max`), and
  // whether they are the last; `trailers` is set when trailers follow.
  virtual size_t body_ready(ClientStream& s, size_t max, bool* eof, bool* trailers) = 0;
  // Write the DATA frame: `frame_header` (9 bytes) then `len` body bytes
  // taken from what body_ready() announced.
  virtual void write_data(ClientStream& s, const uint8_t* frame_header, size_t len) = 0;
  // The request trailers for `s`, asked once at the end of its body.
  virtual std::span<const ph::Field> request_trailers(ClientStream& s) = 0;
  // The server sent GOAWAY (before the streams it did not process close).
  virtual void on_goaway(int32_t last_stream_id, uint32_t error_code) = 0;
  // The server's SETTINGS arrived (its stream limit is known now).
  virtual void on_settings() {}
  // Our PING came back.
  virtual void on_ping_ack() {}

 protected:
  ~ClientHandler() = default;
};

class ClientSession {
 public:
  enum class Status : uint8_t {
    kOk,
    kClosed,  // a connection error (GOAWAY queued where one applies): send, then close
  };
  using Nv = ServerSession::Nv;

  ClientSession(ClientHandler& handler, const ClientSettings& settings);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // The connection preface and our SETTINGS, queued for the first send().
  bool start();
  Status recv(const uint8_t* data, size_t len);
  void send(Sink& out, size_t budget);
  bool want_write() const;
  bool want_read() const;

  // A new stream: `pseudo` are :method, :scheme, :authority, :path (and
  // :protocol) in that order, `fields` the rest (names lower case). `end`:
  // no body follows; otherwise body_ready() is asked. Returns the stream id,
  // or 0 when no stream can be opened (GOAWAY, ids exhausted, bad field).
  int32_t submit_request(ClientStream& s, std::span<const Nv> pseudo, std::span<const Nv> fields,
                         bool end);
  // The request body has more bytes (after body_ready() said none).
  void resume(int32_t id);
  void reset_stream(int32_t id, uint32_t error_code);
  // Credits `n` response-body bytes of stream `id` back to the server.
  void consume(int32_t id, size_t n);
  // A PING (the liveness check of an idle connection).
  void ping();
  // GOAWAY from our side (the pool retires the connection): streams open
  // finish, no new ones.
  void goaway(uint32_t error_code);
  // Detaches `s` from the session without a callback (teardown), and lets
  // go of its field buffers.
  void detach(ClientStream& s);
  static void release(ClientStream& s);

  // The server's limit on concurrent streams (unlimited until its SETTINGS).
  uint32_t peer_max_streams() const;
  // Remote window left for a request body on stream `id`.
  int32_t stream_window(int32_t id) const;
  size_t open_streams() const { return open_; }
  bool goaway_received() const { return goaway_received_; }
  // Whether a new stream may be opened at all (no GOAWAY either way, ids left).
  bool accepts_streams() const;
  bool settings_received() const { return settings_received_; }
  std::string_view error() const { return error_; }

 private:
  struct Callbacks;
  friend struct Callbacks;

  void fail(const char* why);

  ClientHandler& handler_;
  ClientSettings settings_;
  struct NvScratch;
  std::unique_ptr<NvScratch> nv_;
  nghttp2_session* session_ = nullptr;
  size_t open_ = 0;
  std::string error_;
  bool failed_ = false;
  bool goaway_received_ = false;
  bool goaway_sent_ = false;
  bool settings_received_ = false;
  bool deleting_ = false;
};

}  // namespace egw::proto::h2

// HTTP/2 server codec over nghttp2, sans I/O: bytes in (recv), bytes out
// (send, through a Sink), requests as neutral heads (proto/http/message.h)
// and responses submitted by stream id. Nothing here touches a socket.
//
// What nghttp2 checks (RFC 9113 §8, with its HTTP messaging on): pseudo-
// fields (presence, order, duplicates, unknown ones), field names and values
// (upper case, CR/LF/NUL, leading or trailing whitespace), connection-
// specific fields, `te` other than "trailers", content-length against the
// DATA received, the CONTINUATION count and incoming RST_STREAM rate (the
// backported limits, where the library has them). What this codec adds:
//  - `:authority` and `host` must agree; cookies are joined for HTTP/1.1;
//  - the header list size (name + value + 32 per field) and field count:
//    past either, the request is answered 431 and the connection goes on;
//  - a budget of "glitches": frames that cost work and move nothing (PING,
//    SETTINGS, PRIORITY, WINDOW_UPDATE beyond the two that may answer
//    each DATA frame sent, RST_STREAM, unknown types, empty
//    DATA without END_STREAM, streams refused or reset for being
//    malformed). Every DATA frame the server sends and every second that
//    passes earns some back; an empty budget ends the connection with
//    GOAWAY ENHANCE_YOUR_CALM;
//  - the premature-reset rule: after kPrematureMinStreams streams, a client
//    that reset more than half of them within a second of opening gets
//    GOAWAY ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487);
//  - a cap on the library's outbound queue (it has none of its own).
//
// Flow control is the caller's: automatic WINDOW_UPDATE is off, and request
// body bytes are credited back with consume() once they have gone on.
// Response bodies are read through the Handler without copying: the codec
// asks how much is ready and the Handler writes the frame header and the
// bytes itself (NGHTTP2_DATA_FLAG_NO_COPY).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http/message.h"

struct nghttp2_session;
struct nghttp2_rcbuf;

namespace egw::proto::h2 {

namespace ph = proto::http;

// RFC 9113 §7 error codes used here.
enum ErrorCode : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kFlowControlError = 0x3,
  kSettingsTimeout = 0x4,
  kStreamClosed = 0x5,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kCompressionError = 0x9,
  kEnhanceYourCalm = 0xb,
};
const char* to_string(uint32_t error_code);

struct Settings {
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_window = 1u << 20;     // per stream (request bodies)
  uint32_t connection_window = 4u << 20;  // all streams together
  uint32_t max_header_list = 16384;       // bytes, as RFC 9113 counts them: 431 past it
  uint32_t max_headers = 100;             // fields per header block: 431 past it
  uint32_t max_continuations = 8;         // where the library has the limit
  // Incoming RST_STREAM: a token bucket (where the library has it).
  uint32_t reset_burst = 1000;
  uint32_t reset_rate = 33;  // per second
  // Glitch budget (see above).
  uint32_t glitch_burst = 1000;
  uint32_t glitch_rate = 100;          // earned back per second
  uint32_t max_outbound_queue = 5000;  // frames nghttp2 may hold for us
  // RFC 8441 extended CONNECT (:protocol), announced in our SETTINGS.
  bool enable_connect_protocol = true;
};

// The premature-reset rule's constants.
inline constexpr uint32_t kPrematureMinStreams = 100;
inline constexpr uint64_t kPrematureWindowMs = 1000;

// What the codec keeps of one request stream until it closes: the fields as
// decoded (reference-counted by nghttp2, never copied), the pseudo-fields,
// the joined cookie, the trailers. The Handler provides it (begin_stream)
// and gets it back in stream_closed.
struct Stream {
  int32_t id = 0;
  void* user = nullptr;  // the Handler's
  std::string_view method, scheme, authority, path, protocol;
  std::vector<ph::Field> fields;
  std::vector<ph::Field> trailers;
  std::vector<nghttp2_rcbuf*> refs;  // keep the views alive
  std::string cookie;                // the cookie fields, joined
  uint64_t opened_ms = 0;
  uint32_t header_bytes = 0;
  uint16_t reject = 0;  // a status the request gets instead of going on (431)
  bool in_trailers = false;
  bool headers_done = false;
  bool request_ended = false;  // END_STREAM received
  bool reset_by_peer = false;

  // Back to a fresh stream, keeping the vectors' capacity (a Handler that
  // reuses storage allocates nothing per stream once warm). Call after
  // ServerSession::release().
  void reset();
};

class Handler {
 public:
  // A client opened stream `id`: storage for it, or null to refuse it
  // (REFUSED_STREAM).
  virtual Stream* begin_stream(int32_t id) = 0;
  // The request head is complete and valid; `end` when no body follows.
  virtual void on_request(Stream& s, const ph::RequestHead& head, bool end) = 0;
  // The head was well-formed but is refused (431): answer `status`.
  virtual void on_request_rejected(Stream& s, uint16_t status) = 0;
  // Body bytes (valid during the call); credit them with consume() later.
  virtual void on_request_data(Stream& s, const uint8_t* data, size_t len) = 0;
  // END_STREAM (after the body, or with trailers).
  virtual void on_request_end(Stream& s, std::span<const ph::Field> trailers) = 0;
  // The stream is gone (either side ended it, or the connection): the last
  // call for `s`; `error_code` is kNoError for a clean end.
  virtual void on_stream_closed(Stream& s, uint32_t error_code) = 0;
  // Response body: how many bytes are ready for `s` (up to `max`), and
  // whether they are the last; `trailers` is set when trailers follow.
  virtual size_t body_ready(Stream& s, size_t max, bool* eof, bool* trailers) = 0;
  // Write the DATA frame: `frame_header` (9 bytes) then `len` body bytes
  // taken from what body_ready() announced. False: no room (retry later).
  virtual bool write_data(Stream& s, const uint8_t* frame_header, size_t len) = 0;
  // The trailers for `s`, asked once at the end of its body.
  virtual std::span<const ph::Field> response_trailers(Stream& s) = 0;
  // A DATA frame went out (flow-control credit of the glitch budget).
  virtual void on_data_sent(Stream&, size_t) {}

 protected:
  ~Handler() = default;
};

// Bytes the codec produced; valid during the call (copy them).
class Sink {
 public:
  virtual void write(const uint8_t* data, size_t len) = 0;

 protected:
  ~Sink() = default;
};

class ServerSession {
 public:
  enum class Status : uint8_t {
    kOk,
    kClosed,  // GOAWAY queued (or the peer's protocol error): send, then close
  };

  ServerSession(Handler& handler, const Settings& settings);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // The server's SETTINGS, queued for the first send().
  bool start(uint64_t now_ms);
  // Feeds client bytes (the preface first). kClosed: the connection is over
  // (the reason is in error()); what send() still produces should go out.
  Status recv(const uint8_t* data, size_t len, uint64_t now_ms);
  // Writes every frame that is ready into `out` (frame bodies through the
  // Handler) until nothing is left or `budget` bytes were produced.
  void send(Sink& out, size_t budget);
  bool want_write() const;
  bool want_read() const;
  // Nothing left to do on either side (close the connection).
  bool finished() const { return !want_read() && !want_write(); }

  // Idle before its first request, a session holds no nghttp2 state. When
  // no stream was ever opened and nothing is left to send, send() or recv()
  // frees the nghttp2 session (about 20 KB: its 16 KiB frame buffer, HPACK
  // tables, stream map) and keeps what made it: the bytes fed to it and
  // where our sends came between them (at most Record::kBytes; a client
  // that sends more before its first request keeps its session).
  //
  // The next recv() builds a new session, feeds it the same bytes and sends
  // in the same order, checks that it produced byte for byte what went out
  // the first time (which it then drops), and goes on; a mismatch ends the
  // connection with INTERNAL_ERROR. HPACK has no state yet at that point,
  // so nothing else has to come back. goaway() needs no session: it names
  // stream 0, send() writes it, and what the client sends after it is
  // dropped; shutdown_notice() does nothing. Any other call on the session
  // (a submit, a consume) ends the recording: that session stays.
  bool hibernated() const { return hibernated_; }
  // No stream yet, and still recording: a send() may hibernate.
  bool may_hibernate() const { return record_ != nullptr; }
  uint64_t hibernations() const { return hibernations_; }

  // Responses.
  struct Nv {
    std::string_view name;  // lower case
    std::string_view value;
  };
  // A final response head (`end`: no body follows; otherwise body_ready() is
  // asked), or a 1xx head. `fields` exclude :status.
  bool submit_response(int32_t id, uint16_t status, std::span<const Nv> fields, bool end);
  bool submit_informational(int32_t id, uint16_t status, std::span<const Nv> fields);
  // The body has more bytes (after body_ready() said none).
  void resume(int32_t id);
  void reset_stream(int32_t id, uint32_t error_code);
  // Credits `n` request-body bytes of stream `id` back to the client
  // (stream and connection windows); for a closed stream, the connection's.
  void consume(int32_t id, size_t n);
  void consume_connection(size_t n);

  // Graceful end: GOAWAY with the last stream processed; streams after it
  // are refused, those before it finish.
  void shutdown_notice();
  void goaway(uint32_t error_code);
  bool goaway_sent() const { return goaway_; }

  // Teardown: lets go of what `s` holds of the session (its field buffers)
  // and of the session's pointer to it. Every open stream is detached before
  // the ServerSession is destroyed; no callback reports it.
  void detach(Stream& s);
  static void release(Stream& s);

  // Remote window left for stream `id` (how much of its body may go now).
  int32_t stream_window(int32_t id) const;
  size_t open_streams() const { return open_; }
  uint32_t last_stream_id() const;
  bool settings_acked() const { return settings_acked_; }
  uint64_t settings_sent_ms() const { return settings_sent_ms_; }
  // A header block is being received (the header timeout runs).
  bool in_header_block() const { return in_headers_; }
  uint64_t header_block_started_ms() const { return headers_started_ms_; }
  std::string_view error() const { return error_; }
  // Counters for the connection's life.
  uint64_t streams_opened() const { return streams_opened_; }
  uint64_t glitches() const { return glitch_total_; }

 private:
  struct Callbacks;
  friend struct Callbacks;
  struct Record;
  class RecordingSink;

  bool create_session();
  bool feed(const uint8_t* data, size_t len);
  void record_input(const uint8_t* data, size_t len);
  void stop_recording();
  bool can_hibernate() const;
  void hibernate();
  bool wake();
  uint32_t track_stream(bool headers, int32_t id);
  void mark_reset(int32_t id);
  bool glitch(uint32_t cost, const char* why);
  void refill(uint64_t now_ms);
  void finish_head(Stream& s);
  void fail(uint32_t error_code, const char* why);

  // What became of the last kIdWindow client stream ids (track_stream()).
  static constexpr uint32_t kIdWindow = 256;
  enum : uint8_t { kIdUnused = 0, kIdOpened = 1, kIdReset = 2 };

  Handler& handler_;
  Settings settings_;
  std::array<uint8_t, kIdWindow> ids_{};
  struct NvScratch;  // heads being submitted (reused)
  std::unique_ptr<NvScratch> nv_;
  uint32_t max_id_ = 0;
  // The frame scanner of recv(): where the next frame header starts.
  uint8_t hdr_[9];
  uint8_t hdr_len_ = 0;
  uint8_t scan_pri_ = 0;
  uint32_t scan_skip_ = 24;  // the client preface first
  uint32_t pri_dep_ = 0, pri_stream_ = 0;
  nghttp2_session* session_ = nullptr;
  std::unique_ptr<Record> record_;  // until the first stream (see hibernated())
  uint64_t now_ms_ = 0;
  uint64_t refill_ms_ = 0;
  uint64_t settings_sent_ms_ = 0;
  uint64_t headers_started_ms_ = 0;
  uint64_t streams_opened_ = 0;
  uint64_t premature_resets_ = 0;
  uint64_t glitch_total_ = 0;
  uint64_t hibernations_ = 0;
  // WINDOW_UPDATEs that cost nothing: two per DATA frame sent (gRPC clients
  // credit every message they receive, on the stream and the connection).
  static constexpr uint32_t kMaxWindowUpdateAllowance = 1u << 16;
  uint32_t window_update_allowance_ = 0;
  size_t open_ = 0;
  double glitch_tokens_ = 0;
  std::string error_;
  bool settings_acked_ = false;
  bool in_headers_ = false;
  bool goaway_ = false;
  bool failed_ = false;
  bool deleting_ = false;
  bool hibernated_ = false;
  bool raw_goaway_ = false;  // goaway() on a hibernated session: send() writes it
  uint32_t raw_goaway_code_ = 0;
  bool replaying_ = false;  // wake(): our callbacks count nothing twice
};

}  // namespace egw::proto::h2

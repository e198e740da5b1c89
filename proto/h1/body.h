// Sans-I/O decoder of an HTTP/1.1 message body (RFC 9112 §6 and §7): a
// Content-Length body, a chunked body with its trailer section, or a body
// delimited by the end of the connection.
//
// It reads one receive buffer at a time: fragments may split the framing
// anywhere (inside a chunk-size line, between CR and LF) and need not be
// contiguous with each other. It returns views into the fragment it was given
// and keeps no pointers between calls.
//
// Strictness (see also proto/h1/parser.h):
//   Chunk size: 1 to 16 hex digits, at most 2^63-1 (leading zeros count
//     toward the 16). Anything after the digits other than a chunk extension
//     or CRLF is an error.
//   Chunk extensions: `;name[=token|quoted-string]`, repeated, at most
//     kMaxChunkExtensionBytes per line. Whitespace around `;` and `=` is
//     rejected although RFC 9112 §7.1.1 lists it as BWS: no sender we know
//     emits it and it has been used for smuggling. Extensions are validated
//     and dropped; a proxy re-frames the chunks it forwards.
//   Line endings: CRLF only, also in chunk-size lines and trailers; chunk data
//     must be followed by exactly CRLF.
//   Trailer fields: the rules of header fields, at most kMaxTrailerBytes in
//     all, and none of the fields that frame, route or describe the connection
//     (Content-Length, Transfer-Encoding, Host, Trailer, and the hop-by-hop
//     fields): RFC 9110 §6.5.1 forbids their use in trailers, and a next hop
//     that merged them into the head would be open to smuggling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/h1/parser.h"

namespace egw::proto::h1 {

inline constexpr uint32_t kMaxChunkExtensionBytes = 1024;
inline constexpr uint32_t kMaxTrailerBytes = 16384;

class BodyDecoder {
 public:
  enum class State : uint8_t {
    kDone,
    kFixed,       // Content-Length: remaining_ bytes to go
    kUntilClose,  // everything until end_of_input()
    kChunkSize,
    kExtNameStart,  // after ';'
    kExtName,
    kExtValueStart,  // after '='
    kExtToken,
    kExtQuoted,
    kExtQuotedPair,  // after '\' in a quoted-string
    kExtAfterQuoted,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kTrailerLineStart,
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kTrailerEndLf,
    kError,
  };

  struct Step {
    size_t consumed;  // bytes of `in` used by this step (framing and data)
    enum Kind : uint8_t { kData, kTrailer, kNeedMore, kDone, kError } kind;
    std::string_view data;  // kData and kTrailer: a view into `in`
  };

  // A decoder starts done (no body); start() arms it for a message.
  BodyDecoder() = default;

  // Arms the decoder for a body framed as the parsed head said. kNone and
  // kContentLength with 0 are done at once.
  void start(BodyKind kind, uint64_t content_length);

  // Consumes a prefix of `in` and says what it was:
  //   kData     body bytes to forward (`data`, inside the consumed prefix,
  //             after any framing bytes that preceded it);
  //   kTrailer  validated bytes of the trailer section, to forward verbatim.
  //             Concatenated, the kTrailer views of one body are its trailer
  //             field lines with their CRLFs, without the final empty line: a
  //             proxy writes kLastChunk, these bytes, then kCrlf at kDone. A
  //             view may end inside a field line when the fragment does; if a
  //             later step fails, the caller must abort the message (never end
  //             it), so the partial line is never seen as complete;
  //   kNeedMore all of `in` was consumed (framing only) and more is needed;
  //   kDone     the body ended; the bytes of `in` after `consumed` belong to
  //             the next message (or, for a CONNECT/upgrade, to the tunnel);
  //   kError    the framing is invalid: error() says why; `consumed` is 0
  //             and the connection cannot be reused.
  // Call until a step is kNeedMore, kDone or kError, passing what is left of
  // `in` each time (feed() with empty input is fine: kDone if done, else
  // kNeedMore). A kData step that delivers the last body byte is followed by
  // a kDone step with `consumed` 0 for Content-Length bodies.
  Step feed(std::string_view in);

  // The connection ended (read EOF). Returns true when that ends the body
  // (until-close bodies, or a body already done); otherwise the body is
  // truncated: the decoder fails with kTruncatedBody and returns false.
  bool end_of_input();

  State state() const { return state_; }
  ParseError error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }  // data bytes delivered
  bool done() const { return state_ == State::kDone; }

 private:
  Step fail(ParseError e);
  bool forbidden_trailer_name() const;

  State state_ = State::kDone;
  ParseError error_ = ParseError::kNone;
  uint64_t remaining_ = 0;  // of the fixed body or the current chunk; the size being read
  uint64_t body_bytes_ = 0;
  uint32_t line_bytes_ = 0;     // hex digits or extension bytes of the chunk-size line
  uint32_t trailer_bytes_ = 0;  // of the whole trailer section
  // The current trailer field name, lowercased, while it may still be one of
  // the forbidden names (the longest is "transfer-encoding").
  char name_[17] = {};
  uint8_t name_len_ = 0;
  bool name_long_ = false;
};

const char* to_string(BodyDecoder::State s);

}  // namespace egw::proto::h1

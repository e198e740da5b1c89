// Strict, sans-I/O HTTP/1.1 message head parser (RFC 9110, RFC 9112).
//
// The parsers read the start line and the header section of one message and
// decide its body framing; proto/h1/body.h decodes the body that follows.
// Anything outside the grammar is rejected with a distinct ParseError: a
// gateway that forwards what it did not fully understand is how request
// smuggling happens. The deliberate choices are:
//
//   Line endings: only CRLF. A bare LF (without CR) and a bare CR (not
//     followed by LF) are errors, anywhere in the head.
//   Empty lines: up to kMaxLeadingEmptyLines CRLFs before a request line are
//     skipped (RFC 9112 §2.2; some clients send one after a POST body). None
//     are allowed before a status line.
//   Start line: exactly one SP between elements; versions HTTP/1.0 and
//     HTTP/1.1 only (HTTP/1.2 and HTTP/2.0 are 505 although RFC 9110 §2.5 would
//     let us treat 1.2 as 1.1); a request line without a version (HTTP/0.9) is
//     400. A status line may omit the SP before an empty reason ("HTTP/1.1
//     204\r\n"): RFC 9112 requires it, but common servers leave it out and the
//     omission cannot change the framing.
//   Request target: only the characters RFC 3986 allows (so no `"<>\^`{|}`,
//     no `#`, no space, CTL or non-ASCII byte), well-formed %HH escapes, and
//     the form must suit the method: origin-form (`/...`) for everything but
//     CONNECT, authority-form (`host:port`) only with CONNECT, asterisk-form
//     (`*`) only with OPTIONS, absolute-form (`scheme://authority...`, no
//     userinfo) with anything but CONNECT.
//   Field lines: the name is a non-empty token followed directly by `:`; no
//     obs-fold; a value holds HTAB, SP, VCHAR and obs-text (0x80-0xFF) only.
//     Values are trimmed of leading and trailing SP/HTAB.
//   Content-Length: 1 to 19 decimal digits, at most 2^63-1. The same value
//     repeated in several field lines is accepted (RFC 9110 §8.6 allows it and
//     the framing is unambiguous); differing values, and a comma list inside
//     one field ("42, 42"), are rejected.
//   Transfer-Encoding: the only coding we accept is a single, final `chunked`
//     (in one field or spread over several). Other codings in front of it are
//     501 (we do not implement them); chunked not last (or absent) is 400;
//     chunked twice is 400; empty list elements and parameters are 400 (RFC
//     9110 §5.6.1 would tolerate empty elements; this field decides framing,
//     so we do not). Transfer-Encoding in an HTTP/1.0 message is 400, and so
//     is Transfer-Encoding with Content-Length, in requests and responses
//     alike (RFC 9112 §6.3 lets a response's Transfer-Encoding win, and a
//     response whose chunked is not final would be read until close: we reject
//     both, because an upstream that sends them is broken or hostile).
//   Host: HTTP/1.1 requests need exactly one; more than one is 400 in any
//     version; the value must be empty or `host[:port]` per RFC 3986 (no
//     userinfo).
//   Expect: `100-continue` (any case) is the only expectation; anything else
//     is 417 (RFC 9110 §10.1.1 allows that). In an HTTP/1.0 request the
//     expectation is ignored (expect_continue stays false), as §10.1.1 asks.
//   Connection: a list of tokens; empty elements are ignored.
//   Status line: exactly three digits, 100..599 (RFC 9110 §15 suggests
//     reading 600..999 as 5xx; we reject them). Content-Length and
//     Transfer-Encoding are validated in every response, also in those that
//     cannot have a body (1xx, 204, 304, to HEAD, 2xx to CONNECT).
//
// Limits are decided as early as possible: a start line longer than
// Limits::max_request_line is 414 as soon as the byte after that many arrives
// and is not the line's CR, and a head that has not ended within
// Limits::max_head_bytes is 431 without waiting for a terminator that may
// never come. Every decision depends only on the bytes up to the one being
// examined, so a message gives the same result however it is split.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "proto/http/message.h"

namespace egw::proto::h1 {

enum class ParseStatus : uint8_t { kIncomplete, kComplete, kError };
const char* to_string(ParseStatus s);

// One value per distinct reason a head or a body is rejected.
enum class ParseError : uint8_t {
  kNone,
  // Start line.
  kTooManyEmptyLines,   // more than kMaxLeadingEmptyLines CRLFs before a request line
  kInvalidRequestLine,  // a request line that ends after the method
  kInvalidMethod,       // method is not a token
  kInvalidTarget,       // character or syntax outside RFC 3986, bad %HH, bad authority
  kTargetFormMismatch,  // well-formed target in a form the method does not allow
  kHttp09,              // request line without a version
  kInvalidVersion,      // not "HTTP/" DIGIT "." DIGIT
  kUnsupportedVersion,  // well-formed, but not HTTP/1.0 or HTTP/1.1
  kInvalidStatusLine,   // no SP after the version of a status line
  kInvalidStatusCode,   // not exactly three digits, or outside 100..599
  kInvalidReason,       // CTL (other than HTAB) in the reason phrase
  kStartLineTooLong,    // longer than Limits::max_request_line
  // Line structure.
  kBareCr,                    // CR not followed by LF
  kBareLf,                    // LF not preceded by CR
  kObsFold,                   // field line starting with SP or HTAB (line folding)
  kWhitespaceAfterStartLine,  // SP or HTAB right after the start line
  // Field lines.
  kEmptyFieldName,
  kInvalidFieldName,       // a byte that is not a tchar
  kWhitespaceBeforeColon,  // "Name : value"
  kMissingColon,
  kInvalidFieldValue,  // NUL, CTL or DEL in a value
  kTooManyHeaders,     // more than Limits::max_headers field lines
  kHeadTooLarge,       // the head did not end within Limits::max_head_bytes
  // Field semantics.
  kMissingHost,
  kDuplicateHost,
  kInvalidHost,
  kInvalidContentLength,  // empty, sign, space, non-digit, list, more than 19 digits
  kContentLengthTooLarge,
  kConflictingContentLength,
  kContentLengthWithTransferEncoding,
  kInvalidTransferEncoding,  // empty element, non-token, parameters
  kChunkedNotFinal,
  kChunkedTwice,
  kUnsupportedTransferCoding,  // a coding other than chunked (before a final chunked)
  kTransferEncodingInHttp10,
  kInvalidConnection,       // an element of Connection that is not a token
  kUnsupportedExpectation,  // Expect other than 100-continue
  // Body framing (BodyDecoder).
  kInvalidChunkSize,   // empty, non-hex, or junk after the size
  kChunkSizeTooLarge,  // more than 16 hex digits or above 2^63-1
  kInvalidChunkExtension,
  kChunkExtensionTooLong,
  kMissingChunkDataCrlf,  // chunk data not followed by CRLF
  kTrailerTooLarge,
  kForbiddenTrailerField,  // framing, routing or hop-by-hop field in a trailer
  kTruncatedBody,          // the connection closed before the body ended
};

// Short human text, e.g. "content-length with transfer-encoding".
const char* to_string(ParseError e);

// The status a server answers a request that failed with `e`: 400, 414, 417,
// 431, 501 or 505 (0 for kNone). For errors in an upstream's response the
// proxy answers 502 whatever the reason; this table is for requests only.
int http_status(ParseError e);

// The neutral types (proto/http/message.h) are HTTP/1.1's too.
using Header = http::Field;
using http::connection_lists;
using http::Method;
using http::parse_method;
using http::to_string;

struct Limits {
  uint32_t max_request_line = 8192;  // start line without its CRLF (414 for requests)
  uint32_t max_head_bytes = 32768;   // whole head including empty lines and final CRLF (431)
  uint32_t max_headers = 100;        // field lines (431)
};

inline constexpr uint32_t kMaxLeadingEmptyLines = 4;

enum class BodyKind : uint8_t { kNone, kContentLength, kChunked, kUntilClose };
const char* to_string(BodyKind k);

struct RequestHead {
  std::string_view method_text;
  std::string_view target;
  Method method = Method::kOther;
  uint8_t version_minor = 1;        // 0 or 1
  std::span<const Header> headers;  // every field line, in order
  // kNone, kContentLength (content_length may be 0) or kChunked; a request
  // is never read until close.
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = false;       // 1.1 unless `close`; 1.0 only with `keep-alive`
  bool expect_continue = false;  // HTTP/1.1 and Expect: 100-continue
  bool upgrade = false;          // HTTP/1.1, Connection lists upgrade, Upgrade present
  // The Host value; empty when absent (HTTP/1.0) or empty. With an
  // absolute-form target the target's authority wins (RFC 9112 §3.2.2): the
  // router must use that, not this.
  std::string_view host;

  bool connection_has(std::string_view token) const { return connection_lists(headers, token); }

  // The neutral head (proto/http/message.h), with views into this one:
  //  - absolute-form: scheme, authority and path from the target (the
  //    target's authority wins over Host); origin-form: path = target,
  //    authority = Host; authority-form (CONNECT): authority = target;
  //    asterisk-form: path = "*";
  //  - upgrade: the Upgrade value when the request is an upgrade and asks
  //    for anything but h2c (RFC 9113 §3.1 retired the h2c upgrade; it is
  //    never forwarded: a request that asks only for h2c goes on as plain
  //    HTTP/1.1, and writers drop the h2c token from a longer list).
  http::RequestHead neutral() const;
};

struct ResponseHead {
  uint8_t version_minor = 1;
  uint16_t status = 0;
  std::string_view reason;
  std::span<const Header> headers;
  // kNone for 1xx, 204, 304, a response to HEAD and a 2xx to CONNECT
  // (content_length still reports a Content-Length they carried); otherwise
  // chunked, content-length, or until-close when neither is present.
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = false;  // as for requests, and false for until-close bodies
  bool upgrade = false;     // 101, Connection lists upgrade, Upgrade present
  bool informational() const { return status < 200; }

  bool connection_has(std::string_view token) const { return connection_lists(headers, token); }

  // The neutral head, with views into this one. A chunked or until-close
  // body is of unknown length.
  http::ResponseHead neutral() const;
};

// States of the head parser, for traces.
enum class HeadState : uint8_t {
  kLineStart,  // before a request line (empty lines allowed)
  kLeadingLf,  // after the CR of an empty line before the request line
  kMethod,
  kTarget,
  kRequestVersion,
  kResponseVersion,
  kStatusCode,
  kReason,
  kStartLineLf,
  kFieldStart,
  kFieldName,
  kValueOws,
  kValue,
  kFieldLf,
  kHeadEndLf,
  kComplete,
  kError,
};
const char* to_string(HeadState s);

class RequestParser;
class ResponseParser;

namespace detail {

// The machinery RequestParser and ResponseParser share: the byte loop, the
// field section and the framing rules. Use the two classes below instead.
//
// Progress is kept as offsets into the message, never as pointers, so that
// the caller may hand over a relocated buffer. Header views already stored in
// the caller's storage are re-pointed at the new buffer when it moves.
class HeadParser {
 public:
  HeadParser(bool request, const Limits& limits, std::span<Header> header_storage);

  // `request_method` matters for responses only (bodies of HEAD and CONNECT).
  ParseStatus parse(std::string_view buf, Method request_method);
  void reset();

  HeadState state() const { return state_; }
  ParseError error() const { return error_; }
  size_t head_size() const { return head_size_; }

  std::span<const Header> headers() const { return {storage_.data(), header_count_}; }

 private:
  // The wrappers read the results below once parse() returned kComplete.
  friend class h1::RequestParser;
  friend class h1::ResponseParser;

  // A view into the last buffer parse() saw.
  std::string_view view(uint32_t begin, uint32_t end) const {
    return {base_ + begin, static_cast<size_t>(end - begin)};
  }

  // Start line, as offsets.
  uint32_t elem1_begin_ = 0, elem1_end_ = 0;  // method | status code
  uint32_t elem2_begin_ = 0, elem2_end_ = 0;  // target | reason
  uint8_t version_minor_ = 1;
  uint16_t status_ = 0;
  Method method_ = Method::kOther;
  // Framing and connection management, valid once complete.
  BodyKind body_ = BodyKind::kNone;
  uint64_t content_length_ = 0;
  bool keep_alive_ = false;
  bool expect_continue_ = false;
  bool upgrade_ = false;
  int32_t host_index_ = -1;  // into headers(), -1 when absent

  ParseStatus fail(ParseError e);
  void rebase(const char* data);
  ParseError end_request_line(const char* b);
  uint32_t start_line_cap(uint32_t end) const;
  bool start_line_overrun(const char* b, uint32_t p) const;
  ParseError commit_field(const char* b);
  ParseError finish_head();

  Limits limits_;
  std::span<Header> storage_;
  uint32_t max_headers_;
  const char* base_ = nullptr;  // data() of the last buffer seen
  bool request_;
  Method request_method_ = Method::kGet;  // of the request a response answers
  HeadState state_;
  ParseError error_ = ParseError::kNone;
  uint8_t empty_lines_ = 0;
  uint32_t pos_ = 0;         // next byte to examine
  uint32_t line_start_ = 0;  // first byte of the current line
  uint32_t mark_ = 0;        // first byte of the current element
  uint32_t name_end_ = 0;    // offset of the current field's colon
  uint32_t value_begin_ = 0, value_end_ = 0;
  uint32_t header_count_ = 0;
  uint32_t head_size_ = 0;
  // Field semantics gathered while the head arrives.
  uint8_t host_count_ = 0;
  uint8_t te_chunked_count_ = 0;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  bool te_last_chunked_ = false;
  bool te_other_coding_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool conn_upgrade_ = false;
  bool has_upgrade_ = false;
  bool has_expect_continue_ = false;
};

// Character classes (RFC 9110 §5.6.2 tchar, field values, RFC 3986 target
// characters), shared by the parsers, the body decoder and the encoder.
enum : uint8_t {
  kCharToken = 1,     // tchar
  kCharValue = 2,     // HTAB, SP, VCHAR, obs-text: field values and reason phrases
  kCharTarget = 4,    // unreserved, sub-delims, ":@/?%[]"
  kCharHex = 8,       // HEXDIG
  kCharQdtext = 16,   // qdtext of a quoted-string
  kCharRegName = 32,  // unreserved, sub-delims, "%": reg-name of a host
};

constexpr std::array<uint8_t, 256> make_char_classes() {
  std::array<uint8_t, 256> t{};
  constexpr std::string_view kTokenPunct = "!#$%&'*+-.^_`|~";
  constexpr std::string_view kUnreservedPunct = "-._~";
  constexpr std::string_view kSubDelims = "!$&'()*+,;=";
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    const bool vchar = c >= 0x21 && c <= 0x7e;
    const char ch = static_cast<char>(c);
    const bool unreserved = alpha || digit || kUnreservedPunct.find(ch) != std::string_view::npos;
    const bool sub_delim = kSubDelims.find(ch) != std::string_view::npos;
    uint8_t v = 0;
    if (alpha || digit || (vchar && kTokenPunct.find(ch) != std::string_view::npos)) {
      v |= kCharToken;
    }
    if (c == '\t' || c == ' ' || vchar || c >= 0x80) v |= kCharValue;
    if (unreserved || sub_delim || std::string_view(":@/?%[]").find(ch) != std::string_view::npos) {
      v |= kCharTarget;
    }
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kCharHex;
    if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
        (c >= 0x5d && c <= 0x7e) || c >= 0x80) {
      v |= kCharQdtext;
    }
    if (unreserved || sub_delim || c == '%') v |= kCharRegName;
    t[static_cast<size_t>(c)] = v;
  }
  return t;
}
inline constexpr std::array<uint8_t, 256> kCharClasses = make_char_classes();

inline bool has_class(char c, uint8_t cls) {
  return (kCharClasses[static_cast<uint8_t>(c)] & cls) != 0;
}
inline bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!has_class(c, kCharToken)) return false;
  }
  return true;
}
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// Validates `host[:port]` (RFC 3986 authority without userinfo): reg-name or
// IPv4 with %HH escapes checked, or an IPv6 literal in brackets; the port is
// up to 5 digits and at most 65535. The host must be non-empty; the port must
// be present when `require_port`.
bool valid_authority(std::string_view s, bool require_port);

}  // namespace detail

// Parses one request head.
//
// `buf` holds every byte received so far for this message, contiguous,
// starting at its first byte. The next call may pass a longer or relocated
// buffer with the same prefix; the parser resumes where it stopped and never
// rescans. On kComplete, head() is valid, its views point into the last
// `buf`, and head_size() is the length of the head: the body (and then any
// pipelined request) starts there. Calling parse() again after kComplete, with
// the same prefix, returns kComplete and re-points the views at that buffer.
// After kError, error() says why and http_status(error()) what to answer.
//
// `header_storage` (at least Limits::max_headers entries; a smaller span
// lowers the limit) receives the field views; nothing is allocated.
class RequestParser {
 public:
  RequestParser(const Limits& limits, std::span<Header> header_storage)
      : core_(true, limits, header_storage) {}

  ParseStatus parse(std::string_view buf);
  const RequestHead& head() const { return head_; }
  size_t head_size() const { return core_.head_size(); }
  ParseError error() const { return core_.error(); }
  HeadState state() const { return core_.state(); }
  // Forgets the message, for the next request on a keep-alive connection.
  void reset();

 private:
  detail::HeadParser core_;
  RequestHead head_;
};

// Parses one response head; the same contract as RequestParser. A 1xx head is
// complete on its own (body kNone): the caller forwards it, resets the parser
// and parses the final response from the bytes after head_size().
class ResponseParser {
 public:
  ResponseParser(const Limits& limits, std::span<Header> header_storage)
      : core_(false, limits, header_storage) {}

  // `request_method` is the method of the request this response answers; pass
  // the same value on every call for one response.
  ParseStatus parse(std::string_view buf, Method request_method);
  const ResponseHead& head() const { return head_; }
  size_t head_size() const { return core_.head_size(); }
  ParseError error() const { return core_.error(); }
  HeadState state() const { return core_.state(); }
  void reset();

 private:
  detail::HeadParser core_;
  ResponseHead head_;
};

}  // namespace egw::proto::h1

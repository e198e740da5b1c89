#include "proto/h1/parser.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "proto/h1/encoder.h"

namespace egw::proto::h1 {

namespace {

using detail::has_class;
using detail::kCharHex;
using detail::kCharRegName;
using detail::kCharTarget;
using detail::kCharToken;
using detail::kCharValue;

constexpr uint64_t kMaxContentLength = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxContentLengthDigits = 19;

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

// Calls `f(element)` for each element of a comma-separated list value (RFC
// 9110 §5.6.1), trimmed of OWS; empty elements are passed too. Stops at the
// first error `f` returns and returns it.
template <typename F>
ParseError for_each_element(std::string_view value, F&& f) {
  for (;;) {
    const size_t comma = value.find(',');
    const ParseError e = f(trim_ows(value.substr(0, comma)));
    if (e != ParseError::kNone || comma == std::string_view::npos) return e;
    value.remove_prefix(comma + 1);
  }
}

// Every '%' starts a %HH escape.
bool valid_percent_escapes(std::string_view s) {
  for (size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i + 1)) {
    if (i + 2 >= s.size() || !has_class(s[i + 1], kCharHex) || !has_class(s[i + 2], kCharHex)) {
      return false;
    }
  }
  return true;
}

ParseError parse_content_length(std::string_view v, uint64_t* out) {
  if (v.empty()) return ParseError::kInvalidContentLength;
  for (char c : v) {
    if (!is_digit(c)) return ParseError::kInvalidContentLength;
  }
  if (v.size() > kMaxContentLengthDigits) return ParseError::kContentLengthTooLarge;
  uint64_t n = 0;  // 19 digits cannot overflow 64 bits
  for (char c : v)
    n = n * 10 + static_cast<uint64_t>(c - '0');
  if (n > kMaxContentLength) return ParseError::kContentLengthTooLarge;
  *out = n;
  return ParseError::kNone;
}

// RFC 9112 §3.2: origin-form, absolute-form, authority-form, asterisk-form,
// each only with the methods that use it. The characters are already known to
// be kCharTarget.
ParseError check_target(Method method, std::string_view t) {
  if (!valid_percent_escapes(t)) return ParseError::kInvalidTarget;
  const auto brackets = [](std::string_view s) {
    return s.find_first_of("[]") != std::string_view::npos;
  };
  if (t.front() == '/') {
    if (brackets(t)) return ParseError::kInvalidTarget;
    return method == Method::kConnect ? ParseError::kTargetFormMismatch : ParseError::kNone;
  }
  if (t == "*") {
    return method == Method::kOptions ? ParseError::kNone : ParseError::kTargetFormMismatch;
  }
  // absolute-form: scheme "://" authority [ path-abempty ] [ "?" query ]
  size_t i = 0;
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (alpha(t[0])) {
    i = 1;
    while (i < t.size() &&
           (alpha(t[i]) || is_digit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.')) {
      ++i;
    }
  }
  if (i > 0 && t.substr(i, 3) == "://") {
    if (method == Method::kConnect) return ParseError::kTargetFormMismatch;
    std::string_view rest = t.substr(i + 3);
    const size_t auth_end = std::min(rest.find_first_of("/?"), rest.size());
    if (!detail::valid_authority(rest.substr(0, auth_end), false))
      return ParseError::kInvalidTarget;
    if (brackets(rest.substr(auth_end))) return ParseError::kInvalidTarget;
    return ParseError::kNone;
  }
  if (detail::valid_authority(t, true)) {
    return method == Method::kConnect ? ParseError::kNone : ParseError::kTargetFormMismatch;
  }
  return ParseError::kInvalidTarget;
}

// Character i (0..7) of "HTTP/" DIGIT "." DIGIT.
bool version_char_ok(uint32_t i, char c) {
  if (i < 5) return c == "HTTP/"[i];
  if (i == 6) return c == '.';
  return is_digit(c);
}

}  // namespace

const char* to_string(ParseStatus s) {
  switch (s) {
    case ParseStatus::kIncomplete:
      return "incomplete";
    case ParseStatus::kComplete:
      return "complete";
    case ParseStatus::kError:
      return "error";
  }
  return "unknown";
}

const char* to_string(ParseError e) {
  switch (e) {
    case ParseError::kNone:
      return "no error";
    case ParseError::kTooManyEmptyLines:
      return "too many empty lines before the request line";
    case ParseError::kInvalidRequestLine:
      return "request line without target";
    case ParseError::kInvalidMethod:
      return "invalid method";
    case ParseError::kInvalidTarget:
      return "invalid request target";
    case ParseError::kTargetFormMismatch:
      return "request target form not allowed for the method";
    case ParseError::kHttp09:
      return "HTTP/0.9 request (no version)";
    case ParseError::kInvalidVersion:
      return "invalid HTTP version";
    case ParseError::kUnsupportedVersion:
      return "unsupported HTTP version";
    case ParseError::kInvalidStatusLine:
      return "invalid status line";
    case ParseError::kInvalidStatusCode:
      return "invalid status code";
    case ParseError::kInvalidReason:
      return "invalid reason phrase";
    case ParseError::kStartLineTooLong:
      return "start line too long";
    case ParseError::kBareCr:
      return "CR not followed by LF";
    case ParseError::kBareLf:
      return "LF without CR";
    case ParseError::kObsFold:
      return "obsolete line folding";
    case ParseError::kWhitespaceAfterStartLine:
      return "whitespace after the start line";
    case ParseError::kEmptyFieldName:
      return "empty field name";
    case ParseError::kInvalidFieldName:
      return "invalid field name";
    case ParseError::kWhitespaceBeforeColon:
      return "whitespace between field name and colon";
    case ParseError::kMissingColon:
      return "field line without colon";
    case ParseError::kInvalidFieldValue:
      return "invalid character in field value";
    case ParseError::kTooManyHeaders:
      return "too many header fields";
    case ParseError::kHeadTooLarge:
      return "header section too large";
    case ParseError::kMissingHost:
      return "missing host";
    case ParseError::kDuplicateHost:
      return "more than one host";
    case ParseError::kInvalidHost:
      return "invalid host";
    case ParseError::kInvalidContentLength:
      return "invalid content-length";
    case ParseError::kContentLengthTooLarge:
      return "content-length too large";
    case ParseError::kConflictingContentLength:
      return "differing content-length values";
    case ParseError::kContentLengthWithTransferEncoding:
      return "content-length with transfer-encoding";
    case ParseError::kInvalidTransferEncoding:
      return "invalid transfer-encoding";
    case ParseError::kChunkedNotFinal:
      return "chunked is not the final transfer coding";
    case ParseError::kChunkedTwice:
      return "chunked applied more than once";
    case ParseError::kUnsupportedTransferCoding:
      return "unsupported transfer coding";
    case ParseError::kTransferEncodingInHttp10:
      return "transfer-encoding in an HTTP/1.0 message";
    case ParseError::kInvalidConnection:
      return "invalid connection option";
    case ParseError::kUnsupportedExpectation:
      return "unsupported expectation";
    case ParseError::kInvalidChunkSize:
      return "invalid chunk size";
    case ParseError::kChunkSizeTooLarge:
      return "chunk size too large";
    case ParseError::kInvalidChunkExtension:
      return "invalid chunk extension";
    case ParseError::kChunkExtensionTooLong:
      return "chunk extension too long";
    case ParseError::kMissingChunkDataCrlf:
      return "chunk data not followed by CRLF";
    case ParseError::kTrailerTooLarge:
      return "trailer section too large";
    case ParseError::kForbiddenTrailerField:
      return "forbidden field in trailer";
    case ParseError::kTruncatedBody:
      return "connection closed before the body ended";
  }
  return "unknown error";
}

int http_status(ParseError e) {
  switch (e) {
    case ParseError::kNone:
      return 0;
    case ParseError::kStartLineTooLong:
      return 414;
    case ParseError::kUnsupportedExpectation:
      return 417;
    case ParseError::kTooManyHeaders:
    case ParseError::kHeadTooLarge:
    case ParseError::kTrailerTooLarge:
      return 431;
    case ParseError::kUnsupportedTransferCoding:
      return 501;
    case ParseError::kUnsupportedVersion:
      return 505;
    default:
      return 400;
  }
}

const char* to_string(BodyKind k) {
  switch (k) {
    case BodyKind::kNone:
      return "none";
    case BodyKind::kContentLength:
      return "content-length";
    case BodyKind::kChunked:
      return "chunked";
    case BodyKind::kUntilClose:
      return "until-close";
  }
  return "unknown";
}

const char* to_string(HeadState s) {
  switch (s) {
    case HeadState::kLineStart:
      return "line-start";
    case HeadState::kLeadingLf:
      return "leading-lf";
    case HeadState::kMethod:
      return "method";
    case HeadState::kTarget:
      return "target";
    case HeadState::kRequestVersion:
      return "request-version";
    case HeadState::kResponseVersion:
      return "response-version";
    case HeadState::kStatusCode:
      return "status-code";
    case HeadState::kReason:
      return "reason";
    case HeadState::kStartLineLf:
      return "start-line-lf";
    case HeadState::kFieldStart:
      return "field-start";
    case HeadState::kFieldName:
      return "field-name";
    case HeadState::kValueOws:
      return "value-ows";
    case HeadState::kValue:
      return "value";
    case HeadState::kFieldLf:
      return "field-lf";
    case HeadState::kHeadEndLf:
      return "head-end-lf";
    case HeadState::kComplete:
      return "complete";
    case HeadState::kError:
      return "error";
  }
  return "unknown";
}

namespace {

// Chunked and until-close bodies are of unknown length.
http::Body neutral_body(BodyKind k) {
  switch (k) {
    case BodyKind::kNone:
      return http::Body::kNone;
    case BodyKind::kContentLength:
      return http::Body::kLength;
    case BodyKind::kChunked:
    case BodyKind::kUntilClose:
      return http::Body::kUnknown;
  }
  return http::Body::kUnknown;
}

}  // namespace

http::RequestHead RequestHead::neutral() const {
  http::RequestHead r;
  r.method = method;
  r.method_text = method_text;
  r.fields = headers;
  r.version = version_minor == 0 ? 10 : 11;
  r.expect_continue = expect_continue;
  r.body = neutral_body(body);
  r.content_length = content_length;
  r.authority = host;
  if (method == Method::kConnect) {
    r.authority = target;
  } else if (target == "*" || target.empty() || target.front() == '/') {
    r.path = target;
  } else if (const size_t sep = target.find("://"); sep != std::string_view::npos) {
    r.scheme = target.substr(0, sep);
    const std::string_view rest = target.substr(sep + 3);
    const size_t slash = rest.find('/');
    const size_t query = rest.find('?');
    r.authority = rest.substr(0, std::min(slash, query));
    r.path = slash == std::string_view::npos || query < slash ? std::string_view("/")
                                                              : rest.substr(slash);
  }
  if (upgrade) {
    for (const Header& h : headers) {
      if (!http::iequals(h.name, "upgrade")) continue;
      bool other = false;
      http::for_each_list_element(
          h.value, [&](std::string_view e) { other = other || !http::iequals(e, "h2c"); });
      if (other) r.upgrade = h.value;
      break;
    }
  }
  return r;
}

http::ResponseHead ResponseHead::neutral() const {
  http::ResponseHead r;
  r.status = status;
  r.reason = reason;
  r.fields = headers;
  r.version = version_minor == 0 ? 10 : 11;
  r.body = neutral_body(body);
  r.content_length = content_length;
  for (const Header& h : headers)
    r.has_length = r.has_length || http::iequals(h.name, "content-length");
  return r;
}

namespace detail {

bool valid_authority(std::string_view s, bool require_port) {
  if (s.empty()) return false;
  std::string_view rest;
  if (s.front() == '[') {
    // IP-literal; we take IPv6 (and IPv4-mapped) addresses, not IPvFuture.
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    const std::string_view inner = s.substr(1, close - 1);
    if (inner.find(':') == std::string_view::npos) return false;
    for (char c : inner) {
      if (!has_class(c, kCharHex) && c != ':' && c != '.') return false;
    }
    rest = s.substr(close + 1);
  } else {
    const size_t colon = s.find(':');
    const std::string_view host = s.substr(0, colon);
    if (host.empty()) return false;
    for (char c : host) {
      if (!has_class(c, kCharRegName)) return false;
    }
    if (!valid_percent_escapes(host)) return false;
    rest = colon == std::string_view::npos ? std::string_view() : s.substr(colon);
  }
  if (rest.empty()) return !require_port;
  if (rest.front() != ':') return false;
  const std::string_view port = rest.substr(1);
  if (port.empty()) return !require_port;
  if (port.size() > 5) return false;
  uint32_t n = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n <= 65535;
}

HeadParser::HeadParser(bool request, const Limits& limits, std::span<Header> header_storage)
    : limits_(limits),
      storage_(header_storage),
      max_headers_(
          static_cast<uint32_t>(std::min<size_t>(limits.max_headers, header_storage.size()))),
      request_(request),
      state_(request ? HeadState::kLineStart : HeadState::kResponseVersion) {}

void HeadParser::reset() {
  *this = HeadParser(request_, limits_, storage_);
}

ParseStatus HeadParser::fail(ParseError e) {
  error_ = e;
  state_ = HeadState::kError;
  return ParseStatus::kError;
}

// Views stored by earlier calls point into the buffer those calls saw; the
// caller guarantees the new buffer starts with the same bytes, so each view
// keeps its offset. The old buffer may be gone: its addresses are only used
// as integers, never dereferenced.
void HeadParser::rebase(const char* data) {
  if (data == base_) return;
  const uintptr_t old = reinterpret_cast<uintptr_t>(base_);
  const auto move = [&](std::string_view v) {
    return std::string_view(data + (reinterpret_cast<uintptr_t>(v.data()) - old), v.size());
  };
  for (uint32_t i = 0; i < header_count_; ++i) {
    storage_[i].name = move(storage_[i].name);
    storage_[i].value = move(storage_[i].value);
  }
  base_ = data;
}

// Every decision depends only on the bytes up to the one being examined, never
// on how many have arrived, so that any split of the input gives the same
// result. For the length limit that means: a start-line byte at offset
// line_start_ + max_request_line must be the CR that ends the line.
uint32_t HeadParser::start_line_cap(uint32_t end) const {
  return static_cast<uint32_t>(
      std::min<uint64_t>(end, uint64_t{line_start_} + limits_.max_request_line));
}

bool HeadParser::start_line_overrun(const char* b, uint32_t p) const {
  return p >= uint64_t{line_start_} + limits_.max_request_line && b[p] != '\r';
}

ParseStatus HeadParser::parse(std::string_view buf, Method request_method) {
  if (state_ == HeadState::kError) return ParseStatus::kError;
  request_method_ = request_method;
  rebase(buf.data());
  if (state_ == HeadState::kComplete) return ParseStatus::kComplete;

  const char* const b = buf.data();
  // Never look past max_head_bytes: a head that has not ended there is 431.
  const uint32_t end = static_cast<uint32_t>(std::min<size_t>(buf.size(), limits_.max_head_bytes));
  uint32_t p = pos_;
  while (p < end) {
    switch (state_) {
      case HeadState::kLineStart: {
        const char c = b[p];
        if (c == '\r') {
          state_ = HeadState::kLeadingLf;
          ++p;
        } else if (c == '\n') {
          return fail(ParseError::kBareLf);
        } else {
          line_start_ = mark_ = p;
          state_ = HeadState::kMethod;
        }
        break;
      }
      case HeadState::kLeadingLf:
        if (b[p] != '\n') return fail(ParseError::kBareCr);
        ++p;
        if (++empty_lines_ > kMaxLeadingEmptyLines) return fail(ParseError::kTooManyEmptyLines);
        state_ = HeadState::kLineStart;
        break;
      case HeadState::kMethod: {
        const uint32_t cap = start_line_cap(end);
        while (p < cap && has_class(b[p], kCharToken))
          ++p;
        if (p == end) break;
        if (start_line_overrun(b, p)) return fail(ParseError::kStartLineTooLong);
        const char c = b[p];
        if (c == '\r' || c == '\n') return fail(ParseError::kInvalidRequestLine);
        if (c != ' ' || p == mark_) return fail(ParseError::kInvalidMethod);
        elem1_begin_ = mark_;
        elem1_end_ = p;
        mark_ = ++p;
        state_ = HeadState::kTarget;
        break;
      }
      case HeadState::kTarget: {
        const uint32_t cap = start_line_cap(end);
        while (p < cap && has_class(b[p], kCharTarget))
          ++p;
        if (p == end) break;
        if (start_line_overrun(b, p)) return fail(ParseError::kStartLineTooLong);
        const char c = b[p];
        if (p == mark_) return fail(ParseError::kInvalidTarget);
        if (c == '\r' || c == '\n') return fail(ParseError::kHttp09);
        if (c != ' ') return fail(ParseError::kInvalidTarget);
        elem2_begin_ = mark_;
        elem2_end_ = p;
        mark_ = ++p;
        state_ = HeadState::kRequestVersion;
        break;
      }
      case HeadState::kRequestVersion:
      case HeadState::kResponseVersion: {
        for (; p < end && p - mark_ < 8; ++p) {
          if (start_line_overrun(b, p)) return fail(ParseError::kStartLineTooLong);
          if (!version_char_ok(p - mark_, b[p])) return fail(ParseError::kInvalidVersion);
        }
        if (p == end) break;
        if (start_line_overrun(b, p)) return fail(ParseError::kStartLineTooLong);
        const char c = b[p];
        if (state_ == HeadState::kRequestVersion) {
          if (c == '\n') return fail(ParseError::kBareLf);
          if (c != '\r') return fail(ParseError::kInvalidVersion);
          const ParseError e = end_request_line(b);
          if (e != ParseError::kNone) return fail(e);
          state_ = HeadState::kStartLineLf;
          ++p;
        } else {
          if (c != ' ') return fail(ParseError::kInvalidStatusLine);
          if (b[mark_ + 5] != '1' || b[mark_ + 7] > '1') {
            return fail(ParseError::kUnsupportedVersion);
          }
          version_minor_ = static_cast<uint8_t>(b[mark_ + 7] - '0');
          mark_ = ++p;
          state_ = HeadState::kStatusCode;
        }
        break;
      }
      case HeadState::kStatusCode: {
        for (; p < end && p - mark_ < 3; ++p) {
          if (start_line_overrun(b, p)) return fail(ParseError::kStartLineTooLong);
          if (!is_digit(b[p])) return fail(ParseError::kInvalidStatusCode);
        }
        if (p == end) break;
        if (start_line_overrun(b, p)) return fail(ParseError::kStartLineTooLong);
        status_ = static_cast<uint16_t>((b[mark_] - '0') * 100 + (b[mark_ + 1] - '0') * 10 +
                                        (b[mark_ + 2] - '0'));
        if (status_ < 100 || status_ > 599) return fail(ParseError::kInvalidStatusCode);
        elem1_begin_ = mark_;
        elem1_end_ = p;
        const char c = b[p];
        if (c == ' ') {
          mark_ = ++p;
          state_ = HeadState::kReason;
        } else if (c == '\r') {
          // "HTTP/1.1 204\r\n": the SP before an empty reason is missing;
          // accepted (see the top of parser.h).
          elem2_begin_ = elem2_end_ = p;
          ++p;
          state_ = HeadState::kStartLineLf;
        } else {
          return fail(c == '\n' ? ParseError::kBareLf : ParseError::kInvalidStatusCode);
        }
        break;
      }
      case HeadState::kReason: {
        const uint32_t cap = start_line_cap(end);
        while (p < cap && has_class(b[p], kCharValue))
          ++p;
        if (p == end) break;
        if (start_line_overrun(b, p)) return fail(ParseError::kStartLineTooLong);
        if (b[p] != '\r') {
          return fail(b[p] == '\n' ? ParseError::kBareLf : ParseError::kInvalidReason);
        }
        elem2_begin_ = mark_;
        elem2_end_ = p;
        ++p;
        state_ = HeadState::kStartLineLf;
        break;
      }
      case HeadState::kStartLineLf:
        if (b[p] != '\n') return fail(ParseError::kBareCr);
        line_start_ = ++p;
        state_ = HeadState::kFieldStart;
        break;
      case HeadState::kFieldStart: {
        const char c = b[p];
        if (c == '\r') {
          ++p;
          state_ = HeadState::kHeadEndLf;
          break;
        }
        if (c == '\n') return fail(ParseError::kBareLf);
        if (is_ows(c)) {
          return fail(header_count_ == 0 ? ParseError::kWhitespaceAfterStartLine
                                         : ParseError::kObsFold);
        }
        if (header_count_ >= max_headers_) return fail(ParseError::kTooManyHeaders);
        mark_ = p;
        state_ = HeadState::kFieldName;
        break;
      }
      case HeadState::kFieldName: {
        while (p < end && has_class(b[p], kCharToken))
          ++p;
        if (p == end) break;
        const char c = b[p];
        if (c == ':') {
          if (p == mark_) return fail(ParseError::kEmptyFieldName);
          name_end_ = p++;
          state_ = HeadState::kValueOws;
        } else if (is_ows(c)) {
          return fail(ParseError::kWhitespaceBeforeColon);
        } else if (c == '\r' || c == '\n') {
          return fail(ParseError::kMissingColon);
        } else {
          return fail(ParseError::kInvalidFieldName);
        }
        break;
      }
      case HeadState::kValueOws:
        while (p < end && is_ows(b[p]))
          ++p;
        if (p == end) break;
        value_begin_ = p;
        state_ = HeadState::kValue;
        break;
      case HeadState::kValue: {
        while (p < end && has_class(b[p], kCharValue))
          ++p;
        if (p == end) break;
        if (b[p] != '\r') {
          return fail(b[p] == '\n' ? ParseError::kBareLf : ParseError::kInvalidFieldValue);
        }
        uint32_t e = p;
        while (e > value_begin_ && is_ows(b[e - 1]))
          --e;
        value_end_ = e;
        ++p;
        state_ = HeadState::kFieldLf;
        break;
      }
      case HeadState::kFieldLf: {
        if (b[p] != '\n') return fail(ParseError::kBareCr);
        const ParseError e = commit_field(b);
        if (e != ParseError::kNone) return fail(e);
        line_start_ = ++p;
        state_ = HeadState::kFieldStart;
        break;
      }
      case HeadState::kHeadEndLf: {
        if (b[p] != '\n') return fail(ParseError::kBareCr);
        pos_ = head_size_ = ++p;
        const ParseError e = finish_head();
        if (e != ParseError::kNone) return fail(e);
        state_ = HeadState::kComplete;
        return ParseStatus::kComplete;
      }
      case HeadState::kComplete:
      case HeadState::kError:
        return ParseStatus::kError;  // unreachable: handled above
    }
  }
  pos_ = p;
  if (buf.size() >= limits_.max_head_bytes) return fail(ParseError::kHeadTooLarge);
  return ParseStatus::kIncomplete;
}

// The request line ended with a well-formed version: decide the version,
// the method and the target.
ParseError HeadParser::end_request_line(const char* b) {
  if (b[mark_ + 5] != '1' || b[mark_ + 7] > '1') return ParseError::kUnsupportedVersion;
  version_minor_ = static_cast<uint8_t>(b[mark_ + 7] - '0');
  method_ = parse_method(std::string_view(b + elem1_begin_, elem1_end_ - elem1_begin_));
  return check_target(method_, std::string_view(b + elem2_begin_, elem2_end_ - elem2_begin_));
}

// The field line [mark_, LF] is complete: store it, and fold what it says
// about framing and connection management into the parser's state.
ParseError HeadParser::commit_field(const char* b) {
  const std::string_view name(b + mark_, name_end_ - mark_);
  const std::string_view value(b + value_begin_, value_end_ - value_begin_);
  const uint32_t index = header_count_++;
  storage_[index] = Header{name, value};
  switch (name.size()) {
    case 4:
      if (request_ && iequals(name, "host")) {
        if (++host_count_ > 1) return ParseError::kDuplicateHost;
        if (!value.empty() && !valid_authority(value, false)) return ParseError::kInvalidHost;
        host_index_ = static_cast<int32_t>(index);
      }
      break;
    case 6:
      if (request_ && iequals(name, "expect")) {
        if (!iequals(value, "100-continue")) return ParseError::kUnsupportedExpectation;
        has_expect_continue_ = true;
      }
      break;
    case 7:
      if (iequals(name, "upgrade")) has_upgrade_ = true;
      break;
    case 10:
      if (iequals(name, "connection")) {
        return for_each_element(value, [&](std::string_view e) {
          if (e.empty()) return ParseError::kNone;
          if (!is_token(e)) return ParseError::kInvalidConnection;
          if (iequals(e, "close")) {
            conn_close_ = true;
          } else if (iequals(e, "keep-alive")) {
            conn_keep_alive_ = true;
          } else if (iequals(e, "upgrade")) {
            conn_upgrade_ = true;
          }
          return ParseError::kNone;
        });
      }
      break;
    case 14:
      if (iequals(name, "content-length")) {
        uint64_t n = 0;
        const ParseError e = parse_content_length(value, &n);
        if (e != ParseError::kNone) return e;
        // Identical repeats are harmless (RFC 9110 §8.6); differing ones are
        // the classic smuggling vector.
        if (has_content_length_ && n != content_length_) {
          return ParseError::kConflictingContentLength;
        }
        has_content_length_ = true;
        content_length_ = n;
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        has_transfer_encoding_ = true;
        return for_each_element(value, [&](std::string_view e) {
          if (!is_token(e)) return ParseError::kInvalidTransferEncoding;
          if (iequals(e, "chunked")) {
            te_chunked_count_ = static_cast<uint8_t>(std::min(te_chunked_count_ + 1, 2));
            te_last_chunked_ = true;
          } else {
            te_other_coding_ = true;
            te_last_chunked_ = false;
          }
          return ParseError::kNone;
        });
      }
      break;
    default:
      break;
  }
  return ParseError::kNone;
}

ParseError HeadParser::finish_head() {
  if (request_ && version_minor_ == 1 && host_count_ == 0) return ParseError::kMissingHost;
  if (has_transfer_encoding_) {
    if (version_minor_ == 0) return ParseError::kTransferEncodingInHttp10;
    if (has_content_length_) return ParseError::kContentLengthWithTransferEncoding;
    if (!te_last_chunked_) return ParseError::kChunkedNotFinal;
    if (te_chunked_count_ > 1) return ParseError::kChunkedTwice;
    if (te_other_coding_) return ParseError::kUnsupportedTransferCoding;
    body_ = BodyKind::kChunked;
  } else if (has_content_length_) {
    body_ = BodyKind::kContentLength;
  } else {
    body_ = request_ ? BodyKind::kNone : BodyKind::kUntilClose;
  }
  keep_alive_ = !conn_close_ && (version_minor_ == 1 || conn_keep_alive_);
  const bool upgrade = version_minor_ == 1 && conn_upgrade_ && has_upgrade_;
  if (request_) {
    expect_continue_ = has_expect_continue_ && version_minor_ == 1;
    upgrade_ = upgrade;
    return ParseError::kNone;
  }
  // RFC 9112 §6.3: these responses end with their head whatever they say.
  if (status_ < 200 || status_ == 204 || status_ == 304 || request_method_ == Method::kHead ||
      (request_method_ == Method::kConnect && status_ < 300)) {
    body_ = BodyKind::kNone;
  }
  if (body_ == BodyKind::kUntilClose) keep_alive_ = false;
  upgrade_ = status_ == 101 && upgrade;
  return ParseError::kNone;
}

}  // namespace detail

ParseStatus RequestParser::parse(std::string_view buf) {
  const ParseStatus s = core_.parse(buf, Method::kGet);
  if (s != ParseStatus::kComplete) return s;
  head_.method_text = core_.view(core_.elem1_begin_, core_.elem1_end_);
  head_.target = core_.view(core_.elem2_begin_, core_.elem2_end_);
  head_.method = core_.method_;
  head_.version_minor = core_.version_minor_;
  head_.headers = core_.headers();
  head_.body = core_.body_;
  head_.content_length = core_.content_length_;
  head_.keep_alive = core_.keep_alive_;
  head_.expect_continue = core_.expect_continue_;
  head_.upgrade = core_.upgrade_;
  head_.host = core_.host_index_ < 0 ? std::string_view()
                                     : head_.headers[static_cast<size_t>(core_.host_index_)].value;
  return s;
}

void RequestParser::reset() {
  core_.reset();
  head_ = RequestHead{};
}

ParseStatus ResponseParser::parse(std::string_view buf, Method request_method) {
  const ParseStatus s = core_.parse(buf, request_method);
  if (s != ParseStatus::kComplete) return s;
  head_.version_minor = core_.version_minor_;
  head_.status = core_.status_;
  head_.reason = core_.view(core_.elem2_begin_, core_.elem2_end_);
  head_.headers = core_.headers();
  head_.body = core_.body_;
  head_.content_length = core_.content_length_;
  head_.keep_alive = core_.keep_alive_;
  head_.upgrade = core_.upgrade_;
  return s;
}

void ResponseParser::reset() {
  core_.reset();
  head_ = ResponseHead{};
}

}  // namespace egw::proto::h1

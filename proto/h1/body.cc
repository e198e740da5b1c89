#include "proto/h1/body.h"

#include <algorithm>
#include <limits>

#include "proto/h1/encoder.h"

namespace egw::proto::h1 {

namespace {

using detail::has_class;
using detail::kCharQdtext;
using detail::kCharToken;
using detail::kCharValue;

constexpr uint64_t kMaxChunkSize = std::numeric_limits<int64_t>::max();
constexpr uint32_t kMaxChunkSizeDigits = 16;

bool in_trailer(BodyDecoder::State s) {
  switch (s) {
    case BodyDecoder::State::kTrailerLineStart:
    case BodyDecoder::State::kTrailerName:
    case BodyDecoder::State::kTrailerValue:
    case BodyDecoder::State::kTrailerLf:
    case BodyDecoder::State::kTrailerEndLf:
      return true;
    default:
      return false;
  }
}

bool in_extension(BodyDecoder::State s) {
  switch (s) {
    case BodyDecoder::State::kExtNameStart:
    case BodyDecoder::State::kExtName:
    case BodyDecoder::State::kExtValueStart:
    case BodyDecoder::State::kExtToken:
    case BodyDecoder::State::kExtQuoted:
    case BodyDecoder::State::kExtQuotedPair:
    case BodyDecoder::State::kExtAfterQuoted:
      return true;
    default:
      return false;
  }
}

}  // namespace

const char* to_string(BodyDecoder::State s) {
  using S = BodyDecoder::State;
  switch (s) {
    case S::kDone:
      return "done";
    case S::kFixed:
      return "fixed";
    case S::kUntilClose:
      return "until-close";
    case S::kChunkSize:
      return "chunk-size";
    case S::kExtNameStart:
      return "ext-name-start";
    case S::kExtName:
      return "ext-name";
    case S::kExtValueStart:
      return "ext-value-start";
    case S::kExtToken:
      return "ext-token";
    case S::kExtQuoted:
      return "ext-quoted";
    case S::kExtQuotedPair:
      return "ext-quoted-pair";
    case S::kExtAfterQuoted:
      return "ext-after-quoted";
    case S::kChunkSizeLf:
      return "chunk-size-lf";
    case S::kChunkData:
      return "chunk-data";
    case S::kChunkDataCr:
      return "chunk-data-cr";
    case S::kChunkDataLf:
      return "chunk-data-lf";
    case S::kTrailerLineStart:
      return "trailer-line-start";
    case S::kTrailerName:
      return "trailer-name";
    case S::kTrailerValue:
      return "trailer-value";
    case S::kTrailerLf:
      return "trailer-lf";
    case S::kTrailerEndLf:
      return "trailer-end-lf";
    case S::kError:
      return "error";
  }
  return "unknown";
}

void BodyDecoder::start(BodyKind kind, uint64_t content_length) {
  *this = BodyDecoder();
  switch (kind) {
    case BodyKind::kNone:
      state_ = State::kDone;
      break;
    case BodyKind::kContentLength:
      remaining_ = content_length;
      state_ = content_length == 0 ? State::kDone : State::kFixed;
      break;
    case BodyKind::kChunked:
      state_ = State::kChunkSize;
      break;
    case BodyKind::kUntilClose:
      state_ = State::kUntilClose;
      break;
  }
}

BodyDecoder::Step BodyDecoder::fail(ParseError e) {
  error_ = e;
  state_ = State::kError;
  return {0, Step::kError, {}};
}

bool BodyDecoder::end_of_input() {
  if (state_ == State::kUntilClose) state_ = State::kDone;
  if (state_ == State::kDone) return true;
  if (state_ != State::kError) fail(ParseError::kTruncatedBody);
  return false;
}

bool BodyDecoder::forbidden_trailer_name() const {
  if (name_long_) return false;
  const std::string_view name(name_, name_len_);
  return is_hop_by_hop(name) || name == "content-length" || name == "host";
}

BodyDecoder::Step BodyDecoder::feed(std::string_view in) {
  const size_t n = in.size();
  size_t p = 0;
  // First byte of the trailer section not yet handed out in this call.
  size_t trailer_from = in_trailer(state_) ? 0 : std::string_view::npos;
  for (;;) {
    switch (state_) {
      case State::kDone:
        return {p, Step::kDone, {}};
      case State::kError:
        return {p, Step::kError, {}};
      case State::kFixed:
      case State::kChunkData: {
        if (p == n) return {p, Step::kNeedMore, {}};
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - p));
        remaining_ -= take;
        body_bytes_ += take;
        if (remaining_ == 0) state_ = state_ == State::kFixed ? State::kDone : State::kChunkDataCr;
        return {p + take, Step::kData, in.substr(p, take)};
      }
      case State::kUntilClose:
        if (p == n) return {p, Step::kNeedMore, {}};
        body_bytes_ += n - p;
        return {n, Step::kData, in.substr(p)};
      default:
        break;
    }
    if (p == n) break;
    const char c = in[p];
    if (in_extension(state_) && ++line_bytes_ > kMaxChunkExtensionBytes) {
      return fail(ParseError::kChunkExtensionTooLong);
    }
    if (in_trailer(state_)) {
      // The empty line ends the section; hand out what precedes it first.
      if (state_ == State::kTrailerLineStart && c == '\r' && p > trailer_from) {
        return {p, Step::kTrailer, in.substr(trailer_from, p - trailer_from)};
      }
      if (++trailer_bytes_ > kMaxTrailerBytes) return fail(ParseError::kTrailerTooLarge);
    }
    switch (state_) {
      case State::kChunkSize: {
        const int v = detail::hex_value(c);
        if (v >= 0) {
          if (line_bytes_ == kMaxChunkSizeDigits) return fail(ParseError::kChunkSizeTooLarge);
          ++line_bytes_;
          remaining_ = (remaining_ << 4) | static_cast<uint64_t>(v);
          if (remaining_ > kMaxChunkSize) return fail(ParseError::kChunkSizeTooLarge);
        } else if (line_bytes_ == 0) {
          return fail(ParseError::kInvalidChunkSize);
        } else if (c == ';') {
          line_bytes_ = 1;
          state_ = State::kExtNameStart;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else {
          return fail(c == '\n' ? ParseError::kBareLf : ParseError::kInvalidChunkSize);
        }
        break;
      }
      case State::kExtNameStart:
        if (!has_class(c, kCharToken)) return fail(ParseError::kInvalidChunkExtension);
        state_ = State::kExtName;
        break;
      case State::kExtName:
      case State::kExtToken:
        if (has_class(c, kCharToken)) break;
        if (c == '=' && state_ == State::kExtName) {
          state_ = State::kExtValueStart;
        } else if (c == ';') {
          state_ = State::kExtNameStart;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else {
          return fail(c == '\n' ? ParseError::kBareLf : ParseError::kInvalidChunkExtension);
        }
        break;
      case State::kExtValueStart:
        if (c == '"') {
          state_ = State::kExtQuoted;
        } else if (has_class(c, kCharToken)) {
          state_ = State::kExtToken;
        } else {
          return fail(ParseError::kInvalidChunkExtension);
        }
        break;
      case State::kExtQuoted:
        if (c == '"') {
          state_ = State::kExtAfterQuoted;
        } else if (c == '\\') {
          state_ = State::kExtQuotedPair;
        } else if (!has_class(c, kCharQdtext)) {
          return fail(ParseError::kInvalidChunkExtension);
        }
        break;
      case State::kExtQuotedPair:
        if (!has_class(c, kCharValue)) return fail(ParseError::kInvalidChunkExtension);
        state_ = State::kExtQuoted;
        break;
      case State::kExtAfterQuoted:
        if (c == ';') {
          state_ = State::kExtNameStart;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else {
          return fail(c == '\n' ? ParseError::kBareLf : ParseError::kInvalidChunkExtension);
        }
        break;
      case State::kChunkSizeLf:
        if (c != '\n') return fail(ParseError::kBareCr);
        if (remaining_ == 0) {
          state_ = State::kTrailerLineStart;
          trailer_from = p + 1;
        } else {
          state_ = State::kChunkData;
        }
        break;
      case State::kChunkDataCr:
        if (c != '\r') return fail(ParseError::kMissingChunkDataCrlf);
        state_ = State::kChunkDataLf;
        break;
      case State::kChunkDataLf:
        if (c != '\n') return fail(ParseError::kMissingChunkDataCrlf);
        remaining_ = 0;
        line_bytes_ = 0;
        state_ = State::kChunkSize;
        break;
      case State::kTrailerLineStart:
        if (c == '\r') {
          trailer_from = std::string_view::npos;  // the rest is the final CRLF
          state_ = State::kTrailerEndLf;
        } else if (c == '\n') {
          return fail(ParseError::kBareLf);
        } else if (c == ' ' || c == '\t') {
          return fail(ParseError::kObsFold);
        } else if (c == ':') {
          return fail(ParseError::kEmptyFieldName);
        } else if (!has_class(c, kCharToken)) {
          return fail(ParseError::kInvalidFieldName);
        } else {
          name_[0] = detail::ascii_lower(c);
          name_len_ = 1;
          name_long_ = false;
          state_ = State::kTrailerName;
        }
        break;
      case State::kTrailerName:
        if (has_class(c, kCharToken)) {
          if (name_len_ < sizeof(name_)) {
            name_[name_len_++] = detail::ascii_lower(c);
          } else {
            name_long_ = true;
          }
        } else if (c == ':') {
          if (forbidden_trailer_name()) return fail(ParseError::kForbiddenTrailerField);
          state_ = State::kTrailerValue;
        } else if (c == ' ' || c == '\t') {
          return fail(ParseError::kWhitespaceBeforeColon);
        } else if (c == '\r' || c == '\n') {
          return fail(ParseError::kMissingColon);
        } else {
          return fail(ParseError::kInvalidFieldName);
        }
        break;
      case State::kTrailerValue:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (!has_class(c, kCharValue)) {
          return fail(c == '\n' ? ParseError::kBareLf : ParseError::kInvalidFieldValue);
        }
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail(ParseError::kBareCr);
        state_ = State::kTrailerLineStart;
        break;
      case State::kTrailerEndLf:
        if (c != '\n') return fail(ParseError::kBareCr);
        state_ = State::kDone;
        break;
      default:
        break;  // handled above
    }
    ++p;
  }
  if (trailer_from != std::string_view::npos && p > trailer_from) {
    return {p, Step::kTrailer, in.substr(trailer_from, p - trailer_from)};
  }
  return {p, Step::kNeedMore, {}};
}

}  // namespace egw::proto::h1

// HTTP/1.1 serialisation into caller memory: start lines, field lines, chunk
// framing, and the hop-by-hop rules a proxy applies when it forwards a head
// (RFC 9110 §7.6.1). Nothing here allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

#include "proto/h1/parser.h"

namespace egw::proto::h1 {

using http::iequals;
using http::is_hop_by_hop;

inline constexpr std::string_view kCrlf = "\r\n";
// Last chunk without extensions; the trailer section (or kCrlf) follows.
inline constexpr std::string_view kLastChunk = "0\r\n";
// Last chunk and an empty trailer section: the end of a chunked body.
inline constexpr std::string_view kLastChunkNoTrailers = "0\r\n\r\n";
// Longest output of write_chunk_header(): 16 hex digits and CRLF.
inline constexpr size_t kMaxChunkHeaderSize = 18;

// Writes the chunk-size line for a chunk of `size` bytes ("1a2b\r\n",
// lowercase hex, no extensions) to `out`, which has room for
// kMaxChunkHeaderSize bytes; returns the number of bytes written. `size` 0
// writes kLastChunk.
size_t write_chunk_header(uint64_t size, char* out);

// Writes `value` in decimal to `out` (room for 20 bytes); returns the length.
size_t write_decimal(uint64_t value, char* out);

// Serialises one message head into caller memory.
//
// Each call appends one element and returns true, or returns false and writes
// nothing when the element does not fit in the remaining capacity
// (error() == kNoSpace: use a larger buffer, or answer 431/502) or would not
// be valid HTTP/1.1 (error() == kInvalid: a method or field name that is not
// a token, a target with SP/CTL/non-ASCII, a value or reason with CR, LF or
// another CTL, a version other than 1.0/1.1, a status outside 100..999).
// The check keeps a bad value from ever splitting a message. Failures are
// sticky: every later call returns false, so a caller may check only end().
class HeadWriter final : public http::FieldSink {
 public:
  enum class Error : uint8_t { kNone, kNoSpace, kInvalid };

  HeadWriter(char* out, size_t cap) : out_(out), cap_(cap) {}

  bool request_line(std::string_view method, std::string_view target, uint8_t version_minor);
  bool status_line(uint16_t status, std::string_view reason, uint8_t version_minor);
  bool header(std::string_view name, std::string_view value);
  bool field(std::string_view name, std::string_view value) override { return header(name, value); }
  // The value in decimal (e.g. Content-Length).
  bool header(std::string_view name, uint64_t value);
  bool end();  // the empty line that ends the head

  size_t size() const { return size_; }
  Error error() const { return error_; }
  std::string_view view() const { return {out_, size_}; }

 private:
  bool append(std::initializer_list<std::string_view> parts);
  bool invalid();

  char* out_;
  size_t cap_;
  size_t size_ = 0;
  Error error_ = Error::kNone;
};

// Writes every field of `headers` that may cross a proxy: not hop-by-hop and
// not listed by a Connection field. Returns false as HeadWriter does.
bool write_end_to_end_fields(HeadWriter& w, std::span<const Header> headers);

}  // namespace egw::proto::h1

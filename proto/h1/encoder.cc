#include "proto/h1/encoder.h"

#include <cstring>
#include <initializer_list>

namespace egw::proto::h1 {

namespace {

using detail::has_class;
using detail::is_token;

bool valid_value(std::string_view v) {
  for (char c : v) {
    if (!has_class(c, detail::kCharValue)) return false;
  }
  return true;
}

bool valid_target(std::string_view t) {
  if (t.empty()) return false;
  for (char c : t) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

}  // namespace

size_t write_chunk_header(uint64_t size, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[16];
  size_t n = 0;
  do {
    digits[n++] = kHex[size & 0xf];
    size >>= 4;
  } while (size != 0);
  for (size_t i = 0; i < n; ++i)
    out[i] = digits[n - 1 - i];
  out[n] = '\r';
  out[n + 1] = '\n';
  return n + 2;
}

size_t write_decimal(uint64_t value, char* out) {
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (size_t i = 0; i < n; ++i)
    out[i] = digits[n - 1 - i];
  return n;
}

bool HeadWriter::invalid() {
  error_ = Error::kInvalid;
  return false;
}

bool HeadWriter::append(std::initializer_list<std::string_view> parts) {
  if (error_ != Error::kNone) return false;
  size_t total = 0;
  for (std::string_view s : parts)
    total += s.size();
  if (total > cap_ - size_) {
    error_ = Error::kNoSpace;
    return false;
  }
  for (std::string_view s : parts) {
    if (!s.empty()) std::memcpy(out_ + size_, s.data(), s.size());
    size_ += s.size();
  }
  return true;
}

bool HeadWriter::request_line(std::string_view method, std::string_view target,
                              uint8_t version_minor) {
  if (error_ != Error::kNone) return false;
  if (!is_token(method) || !valid_target(target) || version_minor > 1) return invalid();
  return append({method, " ", target, version_minor == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n"});
}

bool HeadWriter::status_line(uint16_t status, std::string_view reason, uint8_t version_minor) {
  if (error_ != Error::kNone) return false;
  if (status < 100 || status > 999 || version_minor > 1 || !valid_value(reason)) {
    return invalid();
  }
  const char code[3] = {static_cast<char>('0' + status / 100),
                        static_cast<char>('0' + status / 10 % 10),
                        static_cast<char>('0' + status % 10)};
  return append({version_minor == 1 ? "HTTP/1.1 " : "HTTP/1.0 ", std::string_view(code, 3), " ",
                 reason, kCrlf});
}

bool HeadWriter::header(std::string_view name, std::string_view value) {
  if (error_ != Error::kNone) return false;
  if (!is_token(name) || !valid_value(value)) return invalid();
  return append({name, ": ", value, kCrlf});
}

bool HeadWriter::header(std::string_view name, uint64_t value) {
  char digits[20];
  return header(name, std::string_view(digits, write_decimal(value, digits)));
}

bool HeadWriter::end() {
  return append({kCrlf});
}

bool write_end_to_end_fields(HeadWriter& w, std::span<const Header> headers) {
  // Without a Connection field only the fixed list applies; with one, each
  // field is checked against its options (at most max_headers squared steps).
  bool has_connection = false;
  for (const Header& h : headers)
    has_connection = has_connection || iequals(h.name, "connection");
  for (const Header& h : headers) {
    if (is_hop_by_hop(h.name)) continue;
    if (has_connection && connection_lists(headers, h.name)) continue;
    if (!w.header(h.name, h.value)) return false;
  }
  return true;
}

}  // namespace egw::proto::h1

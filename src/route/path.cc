#include "src/route/path.h"

#include <array>

namespace egw::route {
namespace {

enum : uint8_t { kPchar = 1, kUnreserved = 2 };

// Character classes of RFC 3986 §2-3 for one byte.
constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c)
    t[c] = kPchar | kUnreserved;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[c] = kPchar | kUnreserved;
  for (int c = '0'; c <= '9'; ++c)
    t[c] = kPchar | kUnreserved;
  for (unsigned char c : std::string_view("-._~"))
    t[c] = kPchar | kUnreserved;
  for (unsigned char c : std::string_view("!$&'()*+,;=:@"))
    t[c] = kPchar;  // sub-delims, ':' and '@'
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = make_classes();

// 0-15 for a hex digit, -1 otherwise.
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char kUpperHex[] = "0123456789ABCDEF";

}  // namespace

const char* to_string(PathError e) {
  switch (e) {
    case PathError::kNotAbsolute:
      return "path does not start with '/'";
    case PathError::kInvalidCharacter:
      return "character not allowed in a path";
    case PathError::kMalformedEscape:
      return "malformed percent-escape";
    case PathError::kEncodedNul:
      return "percent-encoded NUL";
    case PathError::kAboveRoot:
      return "dot-segment above the root";
  }
  return "?";
}

// One segment at a time: copy (and decode) it after a '/', then look at what
// was written. A dot-segment is dropped with its '/'; ".." also drops the
// segment before it. `w` never passes `i`, so `out` may alias `in`.
std::expected<size_t, PathError> normalize_path(std::string_view in, char* out) {
  const size_t n = in.size();
  if (n == 0 || in[0] != '/') return std::unexpected(PathError::kNotAbsolute);
  size_t i = 0;
  size_t w = 0;
  bool ends_in_dot_segment = false;
  while (i < n) {
    // in[i] == '/'.
    ++i;
    const size_t slash = w;
    out[w++] = '/';
    const size_t start = w;
    while (i < n && in[i] != '/') {
      const char c = in[i];
      if (c == '%') {
        if (n - i < 3) return std::unexpected(PathError::kMalformedEscape);
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return std::unexpected(PathError::kMalformedEscape);
        const auto octet = static_cast<unsigned char>(hi * 16 + lo);
        if (octet == 0) return std::unexpected(PathError::kEncodedNul);
        // Both hex digits are read before anything is written over them.
        if (kClasses[octet] & kUnreserved) {
          out[w++] = static_cast<char>(octet);
        } else {
          out[w++] = '%';
          out[w++] = kUpperHex[hi];
          out[w++] = kUpperHex[lo];
        }
        i += 3;
      } else {
        if (!(kClasses[static_cast<unsigned char>(c)] & kPchar)) {
          return std::unexpected(PathError::kInvalidCharacter);
        }
        out[w++] = c;
        ++i;
      }
    }
    const std::string_view segment(out + start, w - start);
    ends_in_dot_segment = false;
    if (segment == ".") {
      w = slash;
      ends_in_dot_segment = true;
    } else if (segment == "..") {
      if (slash == 0) return std::unexpected(PathError::kAboveRoot);
      // Drop the previous segment with its leading '/': out[0] is '/', so the
      // scan stops there at the latest.
      size_t p = slash - 1;
      while (out[p] != '/')
        --p;
      w = p;
      ends_in_dot_segment = true;
    }
  }
  // A dropped dot-segment freed at least two bytes, so this '/' fits.
  if (ends_in_dot_segment) out[w++] = '/';
  return w;
}

}  // namespace egw::route

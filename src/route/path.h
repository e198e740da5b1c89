// Request-path normalisation for routing (RFC 3986 §6.2.2).
//
// Routes are matched against the normalised path so that "/api/%7Euser",
// "/api/~user" and "/api/x/../~user" reach the same route, and so that a
// request cannot slip past a path_prefix with dot-segments or escapes that the
// upstream would undo. The rules, applied in one pass from left to right:
//
//   1. The input is an origin-form path without its query: non-empty and
//      starting with '/' (kNotAbsolute otherwise; the caller passes "/" for the
//      empty path of an absolute-form target, RFC 9110 §4.2.3).
//   2. Every raw byte must be an RFC 3986 pchar or '/': ALPHA DIGIT
//      - . _ ~ ! $ & ' ( ) * + , ; = : @ and '%' escapes. Anything else
//      (CTL, SP, non-ASCII, '?', '#', '[', '\\', ...) is kInvalidCharacter.
//      The HTTP/1.1 parser already guarantees this; the check is here for
//      paths that arrive by other protocols.
//   3. '%' must be followed by two hex digits (either case), else
//      kMalformedEscape. "%00" is kEncodedNul.
//   4. An escape of an unreserved character (ALPHA DIGIT - . _ ~) is decoded:
//      "%7e" -> "~", "%41" -> "A". Every other escape is kept, with its hex
//      digits upper-cased: "%2f" -> "%2F", "%c3%a9" -> "%C3%A9". Decoding is a
//      single pass: "%25%37%65" -> "%257e" (never "~").
//   5. Dot-segments are removed (RFC 3986 §5.2.4), after decoding, so "%2e"
//      and "%2E%2e" count as "." and "..": "/a/./b/../c" -> "/a/c",
//      "/a/%2e%2e/b" -> "/b". A path that ends in a dot-segment keeps its
//      trailing slash: "/a/." -> "/a/", "/a/b/.." -> "/a/". Only a whole
//      segment is a dot-segment: "/a/..b", "/a/.../", "/a/..%2Fb" are kept.
//   6. A ".." with no segment left to remove is kAboveRoot: "/..", "/a/../..",
//      "/./..". (RFC 3986 would clamp at the root; a client that sends this is
//      probing for traversal, and the answer is 400.)
//   7. Nothing else changes: "//" is not merged (it is a distinct, empty
//      segment: "//.." -> "/"), "%2F" stays encoded and does not separate
//      segments, and case is kept outside escapes.
//
// The output is never longer than the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string_view>

namespace egw::route {

// Why a path is rejected; each of these is a 400.
enum class PathError : uint8_t {
  kNotAbsolute,       // empty, or does not start with '/'
  kInvalidCharacter,  // a raw byte that is neither a pchar nor '/'
  kMalformedEscape,   // '%' not followed by two hex digits
  kEncodedNul,        // "%00"
  kAboveRoot,         // ".." climbs above the root
};
const char* to_string(PathError e);

// Writes the normalised form of `in` to `out` and returns its length.
// `out` must hold at least in.size() bytes; it may be in.data() itself (the
// write position never overtakes the read position). On error the contents of
// out[0, in.size()) are unspecified. O(n); never allocates.
// The longest path normalize_path() takes (its output is never longer).
inline constexpr size_t kMaxPathBytes = 8192;
std::expected<size_t, PathError> normalize_path(std::string_view in, char* out);

}  // namespace egw::route

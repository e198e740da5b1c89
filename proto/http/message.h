// Protocol-neutral HTTP message heads: what an HTTP/1.1, HTTP/2 or HTTP/3
// codec turns bytes into, and what the proxy's policy (src/http/forwarding.h)
// reads and writes. A head is a set of views: the codec that produced it owns
// the memory and keeps it alive for as long as it says.
//
// The split follows RFC 9110's semantics rather than any one wire format:
//   method, scheme, authority, path  (HTTP/2's pseudo-fields; an HTTP/1.1
//     codec derives them from the request line and Host);
//   fields: the field lines in order, as received; hop-by-hop fields are
//     still there (the policy removes them), and so are Content-Length and
//     Transfer-Encoding (framing is a codec's business: the policy never
//     forwards them, the codec that writes the message frames it itself);
//   body: none, of known length, or of unknown length (chunked in HTTP/1.1,
//     DATA frames without content-length in HTTP/2).
// Nothing here allocates or touches I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string_view>

namespace egw::proto::http {

struct Field {
  std::string_view name;   // as sent (case preserved)
  std::string_view value;  // trimmed of leading and trailing SP/HTAB
};

// Room for `N` fields that is not initialised when created (a parser writes
// each field before anything reads it): taking one per request costs no
// clearing of kilobytes that a request with a few fields never touches.
// Field is an implicit-lifetime type, so the bytes hold fields as written.
template <size_t N>
struct FieldStorage {
  static constexpr size_t kCapacity = N;
  std::span<Field> span() { return {std::launder(reinterpret_cast<Field*>(bytes)), N}; }
  alignas(Field) unsigned char bytes[N * sizeof(Field)];
};

enum class Method : uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kConnect,
  kOptions,
  kTrace,
  kPatch,
  kOther
};
const char* to_string(Method m);  // "GET", ..., "other"
// Methods are case-sensitive: "get" is kOther.
Method parse_method(std::string_view text);
// Safe to repeat on another connection (RFC 9110 §9.2.2) when no byte of a
// response arrived.
bool idempotent(Method m);

// ASCII case-insensitive equality (field names, tokens).
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// The fields that describe one connection and never cross a proxy:
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
// Upgrade (case-insensitive). Fields a Connection header lists are
// hop-by-hop as well: see connection_lists().
bool is_hop_by_hop(std::string_view name);

// Calls f(std::string_view element) for each non-empty element of a comma
// list ("a, b,,c"), trimmed of SP/HTAB.
template <class F>
void for_each_list_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view e = list.substr(0, comma);
    while (!e.empty() && (e.front() == ' ' || e.front() == '\t'))
      e.remove_prefix(1);
    while (!e.empty() && (e.back() == ' ' || e.back() == '\t'))
      e.remove_suffix(1);
    if (!e.empty()) f(e);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// True when the comma list `list` has `token` (ASCII case-insensitive).
bool list_has(std::string_view list, std::string_view token);

// True when a Connection field among `fields` lists `token`. This is how a
// proxy finds the extra hop-by-hop fields a sender named: `Connection:
// close, X-Foo` makes X-Foo hop-by-hop.
bool connection_lists(std::span<const Field> fields, std::string_view token);

// How a message's body is delimited, whatever the wire format.
enum class Body : uint8_t {
  kNone,     // no body at all
  kLength,   // exactly content_length bytes (may be 0)
  kUnknown,  // until its end is signalled (HTTP/1.1 chunked, HTTP/2 END_STREAM)
};

struct RequestHead {
  Method method = Method::kOther;
  std::string_view method_text;
  std::string_view scheme;     // "http", "https", or empty when the client sent none
  std::string_view authority;  // the target host[:port] (absolute-form, :authority or Host)
  std::string_view path;       // origin-form path and query, "*", or empty (CONNECT)
  std::span<const Field> fields;
  Body body = Body::kNone;
  uint64_t content_length = 0;
  bool expect_continue = false;
  // The protocols an upgrade asks for (HTTP/1.1 Upgrade, with h2c already
  // taken out; HTTP/2's :protocol); empty when the request is not one.
  std::string_view upgrade;
  // 10, 11, 20 or 30: the version the client spoke (Via, and the rule for a
  // missing Host).
  uint8_t version = 11;
};

struct ResponseHead {
  uint16_t status = 0;
  std::string_view reason;  // HTTP/1.1 only; may be empty
  std::span<const Field> fields;
  Body body = Body::kNone;
  // A Content-Length the response carried, also where it has no body (a
  // response to HEAD, a 304): forwarded as the length the origin announced.
  bool has_length = false;
  uint64_t content_length = 0;
  uint8_t version = 11;
  bool informational() const { return status < 200; }
};

// Where a policy writes the fields of a head it builds (an HTTP/1.1 head
// writer, an nghttp2/nghttp3 name-value array). Returns false when the field
// does not fit or is not valid in that format; the writer stops at the
// first false.
class FieldSink {
 public:
  virtual bool field(std::string_view name, std::string_view value) = 0;

 protected:
  ~FieldSink() = default;
};

}  // namespace egw::proto::http

#include "proto/tls_sniff/client_hello.h"

#include <algorithm>
#include <cstring>

namespace egw::proto::tls_sniff {

namespace {

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kHandshakeHeaderSize = 4;  // msg_type(1) + length(3)
constexpr size_t kRandomSize = 32;
constexpr size_t kMaxSessionId = 32;
constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint8_t kNameTypeHostName = 0;
constexpr size_t kMaxHostName = 255;

SniffResult need_more(size_t need) {
  SniffResult r;
  r.status = SniffStatus::kNeedMore;
  r.need = need;
  return r;
}

SniffResult invalid(const char* reason) {
  SniffResult r;
  r.status = SniffStatus::kInvalid;
  r.reason = reason;
  return r;
}

std::string_view as_text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A bounds-checked cursor over one length-delimited structure. Every read
// that would leave the structure fails and leaves the cursor where it was.
struct Reader {
  std::span<const uint8_t> rest;

  bool empty() const { return rest.empty(); }
  bool u8(size_t* v) {
    if (rest.empty()) return false;
    *v = rest[0];
    rest = rest.subspan(1);
    return true;
  }
  bool u16(size_t* v) {
    if (rest.size() < 2) return false;
    *v = static_cast<size_t>(rest[0]) << 8 | rest[1];
    rest = rest.subspan(2);
    return true;
  }
  bool take(size_t n, std::span<const uint8_t>* out) {
    if (rest.size() < n) return false;
    *out = rest.first(n);
    rest = rest.subspan(n);
    return true;
  }
  bool skip(size_t n) {
    std::span<const uint8_t> unused;
    return take(n, &unused);
  }
  // A vector with a `width`-byte (1 or 2) length prefix.
  bool vec(int width, std::span<const uint8_t>* out) {
    size_t n = 0;
    return (width == 1 ? u8(&n) : u16(&n)) && take(n, out);
  }
};

// What routing will match on: letters, digits, '-', '.', '_' (the last for
// the service names some internal DNS uses). No NUL, space, '/', '%', ':',
// or byte above 0x7F can reach a route table or a log line.
bool valid_host_name(std::span<const uint8_t> name) {
  if (name.empty() || name.size() > kMaxHostName) return false;
  for (const uint8_t c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// RFC 6066 §3: ServerNameList server_name_list<1..2^16-1>.
const char* parse_server_name(std::span<const uint8_t> data, std::string_view* name) {
  Reader r{data};
  std::span<const uint8_t> list;
  if (!r.vec(2, &list) || !r.empty()) return "server_name list length does not fill the extension";
  if (list.empty()) return "empty server_name list";
  Reader entries{list};
  bool have_host = false;
  while (!entries.empty()) {
    size_t type = 0;
    std::span<const uint8_t> value;
    if (!entries.u8(&type) || !entries.vec(2, &value)) return "server_name entry overruns the list";
    if (type != kNameTypeHostName) continue;
    if (have_host) return "two host_names in server_name";
    if (!valid_host_name(value)) return "server_name host_name is empty, too long or has odd bytes";
    have_host = true;
    *name = as_text(value);
  }
  return nullptr;
}

// RFC 7301 §3.1: ProtocolNameList protocol_name_list<2..2^16-1>, each
// ProtocolName opaque<1..2^8-1>.
const char* parse_alpn(std::span<const uint8_t> data, std::string_view* raw) {
  Reader r{data};
  std::span<const uint8_t> list;
  if (!r.vec(2, &list) || !r.empty()) return "ALPN list length does not fill the extension";
  if (list.empty()) return "empty ALPN list";
  Reader names{list};
  while (!names.empty()) {
    std::span<const uint8_t> name;
    if (!names.vec(1, &name)) return "ALPN protocol name overruns the list";
    if (name.empty()) return "empty ALPN protocol name";
  }
  *raw = as_text(list);
  return nullptr;
}

// Parses the complete ClientHello body (after the 4-byte handshake header);
// the views in `out` point into `body`.
SniffResult parse_client_hello(std::span<const uint8_t> body) {
  Reader r{body};
  size_t version = 0, n = 0;
  std::span<const uint8_t> v;
  if (!r.u16(&version)) return invalid("ClientHello truncated in legacy_version");
  if ((version >> 8) != 3) return invalid("ClientHello legacy_version major is not 3");
  if (!r.skip(kRandomSize)) return invalid("ClientHello truncated in random");
  if (!r.u8(&n)) return invalid("ClientHello truncated before session_id");
  if (n > kMaxSessionId) return invalid("session_id longer than 32 bytes");
  if (!r.skip(n)) return invalid("session_id overruns the ClientHello");
  if (!r.vec(2, &v)) return invalid("cipher_suites overruns the ClientHello");
  if (v.size() < 2 || v.size() % 2 != 0) return invalid("cipher_suites length is odd or zero");
  if (!r.vec(1, &v)) return invalid("compression_methods overruns the ClientHello");
  if (v.empty()) return invalid("empty compression_methods");

  SniffResult out;
  out.status = SniffStatus::kDone;
  if (r.empty()) return out;  // no extensions: valid, and no SNI

  std::span<const uint8_t> block;
  if (!r.vec(2, &block) || !r.empty()) {
    return invalid("extensions length does not fill the ClientHello");
  }
  Reader exts{block};
  bool seen_sni = false, seen_alpn = false;
  while (!exts.empty()) {
    size_t type = 0;
    std::span<const uint8_t> data;
    if (!exts.u16(&type) || !exts.vec(2, &data)) return invalid("extension overruns the block");
    const char* err = nullptr;
    if (type == kExtServerName) {
      if (seen_sni) return invalid("duplicate server_name extension");
      seen_sni = true;
      err = parse_server_name(data, &out.server_name);
    } else if (type == kExtAlpn) {
      if (seen_alpn) return invalid("duplicate ALPN extension");
      seen_alpn = true;
      err = parse_alpn(data, &out.alpn_raw);
    }
    if (err != nullptr) return invalid(err);
  }
  return out;
}

}  // namespace

const char* to_string(SniffStatus s) {
  switch (s) {
    case SniffStatus::kNeedMore:
      return "need more";
    case SniffStatus::kDone:
      return "done";
    case SniffStatus::kNotTls:
      return "not tls";
    case SniffStatus::kInvalid:
      return "invalid";
  }
  return "?";
}

SniffResult sniff_client_hello(std::span<const uint8_t> bytes, std::span<uint8_t> scratch) {
  const size_t size = bytes.size();
  if (size == 0) return need_more(1);  // one byte decides kNotTls
  if (bytes[0] != kContentHandshake) {
    SniffResult r;
    r.status = SniffStatus::kNotTls;
    r.reason = "first byte is not a TLS handshake record";
    return r;
  }

  // Walk the records up to the one that ends the ClientHello. Each check is
  // made as soon as its bytes are there; `need` is the end of the record
  // header or body being read, so it only grows with the input.
  uint8_t header[kHandshakeHeaderSize];
  size_t header_have = 0;  // handshake header bytes seen so far
  size_t message = 0;      // 4 + the handshake length, once the header is complete
  size_t got = 0;          // message bytes in the complete records before `at`
  size_t records = 0;
  size_t at = 0;  // start of the record being read
  for (;;) {
    if (at < size && bytes[at] != kContentHandshake) {
      return invalid("non-handshake record before the ClientHello ended");
    }
    if (at + 1 < size && bytes[at + 1] != 3) return invalid("record version major is not 3");
    if (size < at + kRecordHeaderSize) return need_more(at + kRecordHeaderSize);
    const size_t length = static_cast<size_t>(bytes[at + 3]) << 8 | bytes[at + 4];
    if (length == 0) return invalid("empty handshake record");
    if (length > kMaxRecordLength) return invalid("record longer than 2^14 bytes");
    const size_t body = at + kRecordHeaderSize;
    // The record must not reach past the end of the message (checked again
    // below if this record completes the handshake header).
    if (message != 0 && got + length > message) return invalid("data after the ClientHello");

    const size_t available = std::min(size, body + length) - body;
    for (size_t i = 0; header_have < kHandshakeHeaderSize && i < available; ++i) {
      header[header_have++] = bytes[body + i];
      if (header_have == 1 && header[0] != kHandshakeClientHello) {
        return invalid("handshake message is not a ClientHello");
      }
      if (header_have == kHandshakeHeaderSize) {
        message = kHandshakeHeaderSize + (static_cast<size_t>(header[1]) << 16 |
                                          static_cast<size_t>(header[2]) << 8 | header[3]);
        if (message > kMaxClientHello) return invalid("ClientHello longer than the limit");
        if (got + length > message) return invalid("data after the ClientHello");
      }
    }
    if (size < body + length) return need_more(body + length);
    got += length;
    ++records;
    if (message != 0 && got == message) break;
    at = body + length;
  }

  std::span<const uint8_t> hello;
  if (records == 1) {
    hello = bytes.subspan(kRecordHeaderSize, message);
  } else {
    // Fragmented: gather the fragments so the views can point into one
    // contiguous message. The records were validated above.
    if (scratch.size() < message) return invalid("scratch too small for a fragmented ClientHello");
    size_t copied = 0;
    for (size_t pos = 0; copied < message;) {
      const size_t length = static_cast<size_t>(bytes[pos + 3]) << 8 | bytes[pos + 4];
      std::memcpy(scratch.data() + copied, bytes.data() + pos + kRecordHeaderSize, length);
      copied += length;
      pos += kRecordHeaderSize + length;
    }
    hello = std::span<const uint8_t>(scratch.data(), message);
  }
  return parse_client_hello(hello.subspan(kHandshakeHeaderSize));
}

bool alpn_offers(std::string_view alpn_raw, std::string_view protocol) {
  while (!alpn_raw.empty()) {
    const size_t n = static_cast<uint8_t>(alpn_raw[0]);
    if (n + 1 > alpn_raw.size()) return false;
    if (alpn_raw.substr(1, n) == protocol) return true;
    alpn_raw.remove_prefix(n + 1);
  }
  return false;
}

}  // namespace egw::proto::tls_sniff

#include "proto/proxy_protocol/header.h"

#include <array>
#include <cstring>

namespace egw::proto::proxy_protocol {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";

Header need(size_t n) {
  Header h;
  h.status = Status::kNeedMore;
  h.need = n;
  return h;
}

Header invalid(const char* why) {
  Header h;
  h.status = Status::kInvalid;
  h.reason = why;
  return h;
}

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// --- v1 text ------------------------------------------------------------------

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number 0..max without sign or leading zeros.
bool parse_decimal(std::string_view s, uint32_t max, uint32_t& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (const char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

bool parse_ipv4(std::string_view s, uint8_t out[4]) {
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return false;
    uint32_t v = 0;
    if (dot > 3 || !parse_decimal(s.substr(0, dot), 255, v)) return false;
    out[i] = static_cast<uint8_t>(v);
    s.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return s.empty();
}

// RFC 4291 §2.2: eight groups of 1..4 hex digits, one "::" for a run of zero
// groups, an IPv4 dotted quad for the last 32 bits.
bool parse_ipv6(std::string_view s, uint8_t out[16]) {
  uint16_t groups[8] = {};
  int n = 0;     // groups written
  int gap = -1;  // where "::" stands (index into groups)
  if (s.size() < 2) return false;
  if (s.substr(0, 2) == "::") {
    gap = 0;
    s.remove_prefix(2);
  } else if (s[0] == ':') {
    return false;
  }
  while (!s.empty()) {
    size_t end = s.find(':');
    const std::string_view part = s.substr(0, end);
    if (part.find('.') != std::string_view::npos) {
      // The dotted tail: last, and room for two groups.
      if (end != std::string_view::npos || n > 6) return false;
      uint8_t q[4];
      if (!parse_ipv4(part, q)) return false;
      groups[n++] = static_cast<uint16_t>(q[0] << 8 | q[1]);
      groups[n++] = static_cast<uint16_t>(q[2] << 8 | q[3]);
      s = {};
      break;
    }
    if (part.empty() || part.size() > 4 || n == 8) return false;
    uint16_t v = 0;
    for (const char c : part) {
      const int d = hex_value(c);
      if (d < 0) return false;
      v = static_cast<uint16_t>(v << 4 | d);
    }
    groups[n++] = v;
    if (end == std::string_view::npos) {
      s = {};
      break;
    }
    s.remove_prefix(end + 1);
    if (!s.empty() && s[0] == ':') {
      if (gap >= 0) return false;  // a second "::"
      gap = n;
      s.remove_prefix(1);
    } else if (s.empty()) {
      return false;  // a trailing single ':'
    }
  }
  if (gap < 0) {
    if (n != 8) return false;
  } else {
    if (n > 7) return false;  // "::" stands for at least one group
    const int tail = n - gap;
    for (int i = 0; i < tail; ++i)
      groups[7 - i] = groups[n - 1 - i];
    for (int i = gap; i < 8 - tail; ++i)
      groups[i] = 0;
  }
  for (int i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<uint8_t>(groups[i] >> 8);
    out[2 * i + 1] = static_cast<uint8_t>(groups[i]);
  }
  return true;
}

Header parse_v1(std::span<const uint8_t> in) {
  const size_t n = std::min(in.size(), kV1Prefix.size());
  if (std::memcmp(in.data(), kV1Prefix.data(), n) != 0)
    return invalid("not a PROXY protocol header");
  // The line's bytes so far: printable ASCII, then CRLF.
  const size_t scan = std::min(in.size(), kMaxV1);
  size_t end = 0;
  for (size_t i = 0; i < scan; ++i) {
    const uint8_t c = in[i];
    if (c == '\r') {
      if (i + 2 > kMaxV1) return invalid("v1: no CRLF within 107 bytes");
      if (i + 1 == in.size()) return need(in.size() + 1);
      if (in[i + 1] != '\n') return invalid("v1: CR without LF");
      end = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return invalid("v1: a byte that is not printable ASCII");
  }
  if (end == 0) {
    if (in.size() >= kMaxV1) return invalid("v1: no CRLF within 107 bytes");
    return need(in.size() + 1);
  }
  std::string_view line(reinterpret_cast<const char*>(in.data()) + kV1Prefix.size(),
                        end - kV1Prefix.size());
  Header h;
  h.status = Status::kDone;
  h.version = 1;
  h.length = end + 2;
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) {
    h.local = true;  // whatever follows is to be ignored
    return h;
  }
  std::string_view fields[4];
  for (int i = 0; i < 4; ++i) {
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return invalid("v1: too few fields");
    fields[i] = line.substr(0, sp);
    line.remove_prefix(sp + 1);
  }
  // fields: proto, src, dst, sport; `line` is dport.
  if (line.find(' ') != std::string_view::npos) return invalid("v1: too many fields");
  Addresses& a = h.addr;
  if (fields[0] == "TCP4") {
    a.family = Family::kInet;
    if (!parse_ipv4(fields[1], a.src) || !parse_ipv4(fields[2], a.dst))
      return invalid("v1: not an IPv4 address");
  } else if (fields[0] == "TCP6") {
    a.family = Family::kInet6;
    if (!parse_ipv6(fields[1], a.src) || !parse_ipv6(fields[2], a.dst))
      return invalid("v1: not an IPv6 address");
  } else {
    return invalid("v1: protocol is not TCP4, TCP6 or UNKNOWN");
  }
  uint32_t sp = 0, dp = 0;
  if (!parse_decimal(fields[3], 65535, sp) || !parse_decimal(line, 65535, dp))
    return invalid("v1: not a port");
  a.src_port = static_cast<uint16_t>(sp);
  a.dst_port = static_cast<uint16_t>(dp);
  return h;
}

// --- v2 binary ----------------------------------------------------------------

// Sets `slot` once; false when it was set before.
bool set_once(std::string_view& slot, bool& seen, std::string_view v) {
  if (seen) return false;
  seen = true;
  slot = v;
  return true;
}

const char* parse_ssl(std::span<const uint8_t> v, SslInfo& ssl) {
  if (v.size() < 5) return "v2: SSL TLV shorter than its fixed part";
  ssl.present = true;
  ssl.client = v[0];
  ssl.verify = be32(v.data() + 1);
  bool seen[5] = {};
  std::string_view* slots[5] = {&ssl.version, &ssl.cn, &ssl.cipher, &ssl.sig_alg, &ssl.key_alg};
  size_t at = 5;
  while (at < v.size()) {
    if (v.size() - at < 3) return "v2: SSL sub-TLV header cut short";
    const uint8_t type = v[at];
    const size_t len = be16(v.data() + at + 1);
    if (v.size() - at - 3 < len) return "v2: SSL sub-TLV longer than the SSL TLV";
    const std::string_view value(reinterpret_cast<const char*>(v.data() + at + 3), len);
    if (type >= kTlvSslVersion && type <= kTlvSslKeyAlg) {
      const int i = type - kTlvSslVersion;
      if (!set_once(*slots[i], seen[i], value)) return "v2: an SSL sub-TLV twice";
    }
    at += 3 + len;
  }
  return nullptr;
}

bool printable(std::string_view v) {
  for (const char c : v) {
    const auto u = static_cast<uint8_t>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

Header parse_v2(std::span<const uint8_t> in) {
  const size_t n = std::min(in.size(), sizeof(kV2Signature));
  if (std::memcmp(in.data(), kV2Signature, n) != 0) return invalid("not a PROXY protocol header");
  if (in.size() >= 13) {
    if ((in[12] >> 4) != 2) return invalid("v2: version is not 2");
    if ((in[12] & 0xF) > 1) return invalid("v2: command is neither LOCAL nor PROXY");
  }
  if (in.size() >= 14 && ((in[13] >> 4) > 3 || (in[13] & 0xF) > 2))
    return invalid("v2: unknown address family or transport");
  if (in.size() < kV2Fixed) return need(kV2Fixed);
  const size_t total = kV2Fixed + be16(in.data() + 14);
  if (total > kMaxHeader) return invalid("v2: header longer than 4096 bytes");
  if (in.size() < total) return need(total);

  Header h;
  h.status = Status::kDone;
  h.version = 2;
  h.length = total;
  const bool proxy = (in[12] & 0xF) == 1;
  const uint8_t fam = in[13] >> 4, transport = in[13] & 0xF;
  if (!proxy) {
    // LOCAL: the sender's own connection (a health check); the block,
    // family included, is to be discarded.
    h.local = true;
    return h;
  }
  const std::span<const uint8_t> body = in.subspan(kV2Fixed, total - kV2Fixed);
  size_t at = 0;
  switch (fam) {
    case 0:  // AF_UNSPEC
      h.local = true;
      break;
    case 1:
    case 2: {
      if (transport != 1) return invalid("v2: the header describes a datagram flow, not a stream");
      const size_t alen = fam == 1 ? 4 : 16;
      if (body.size() < 2 * alen + 4) return invalid("v2: length shorter than the address block");
      h.addr.family = fam == 1 ? Family::kInet : Family::kInet6;
      std::memcpy(h.addr.src, body.data(), alen);
      std::memcpy(h.addr.dst, body.data() + alen, alen);
      h.addr.src_port = be16(body.data() + 2 * alen);
      h.addr.dst_port = be16(body.data() + 2 * alen + 2);
      at = 2 * alen + 4;
      break;
    }
    default:  // AF_UNIX
      if (body.size() < 216) return invalid("v2: length shorter than the address block");
      h.local = true;
      at = 216;
      break;
  }
  bool seen_alpn = false, seen_authority = false, seen_unique = false, seen_netns = false;
  bool seen_crc = false;
  size_t crc_at = 0;
  while (at < body.size()) {
    if (body.size() - at < 3) return invalid("v2: TLV header cut short");
    const uint8_t type = body[at];
    const size_t len = be16(body.data() + at + 1);
    if (body.size() - at - 3 < len) return invalid("v2: TLV longer than the header");
    const std::span<const uint8_t> value = body.subspan(at + 3, len);
    const std::string_view text(reinterpret_cast<const char*>(value.data()), len);
    switch (type) {
      case kTlvAlpn:
        if (!set_once(h.alpn, seen_alpn, text)) return invalid("v2: ALPN TLV twice");
        break;
      case kTlvAuthority:
        if (!set_once(h.authority, seen_authority, text)) return invalid("v2: AUTHORITY TLV twice");
        if (text.empty() || !printable(text)) return invalid("v2: AUTHORITY is not a host name");
        break;
      case kTlvCrc32c:
        if (seen_crc) return invalid("v2: CRC32C TLV twice");
        if (len != 4) return invalid("v2: CRC32C TLV is not 4 bytes");
        seen_crc = true;
        crc_at = kV2Fixed + at + 3;
        break;
      case kTlvUniqueId:
        if (len > 128) return invalid("v2: UNIQUE_ID longer than 128 bytes");
        if (!set_once(h.unique_id, seen_unique, text)) return invalid("v2: UNIQUE_ID TLV twice");
        break;
      case kTlvSsl:
        if (h.ssl.present) return invalid("v2: SSL TLV twice");
        if (const char* why = parse_ssl(value, h.ssl)) return invalid(why);
        break;
      case kTlvNetns:
        if (!set_once(h.netns, seen_netns, text)) return invalid("v2: NETNS TLV twice");
        break;
      default:  // NOOP, custom and future types
        break;
    }
    at += 3 + len;
  }
  if (seen_crc) {
    static constexpr uint8_t kZero[4] = {};
    uint32_t c = crc32c(in.first(crc_at));
    c = crc32c(kZero, c);
    c = crc32c(in.subspan(crc_at + 4, total - crc_at - 4), c);
    if (c != be32(in.data() + crc_at)) return invalid("v2: CRC32C does not match");
    h.crc_verified = true;
  }
  return h;
}

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

// --- Writing ------------------------------------------------------------------

size_t format_ipv4(const uint8_t a[4], char* out) {
  char* p = out;
  for (int i = 0; i < 4; ++i) {
    const unsigned v = a[i];
    if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
    *p++ = static_cast<char>('0' + v % 10);
    if (i < 3) *p++ = '.';
  }
  return static_cast<size_t>(p - out);
}

// RFC 5952: lower case, no leading zeros, the longest run (the first of
// equals) of two or more zero groups as "::", IPv4-mapped as ::ffff:a.b.c.d.
size_t format_ipv6(const uint8_t a[16], char* out) {
  uint16_t g[8];
  for (int i = 0; i < 8; ++i)
    g[i] = static_cast<uint16_t>(a[2 * i] << 8 | a[2 * i + 1]);
  char* p = out;
  const bool mapped =
      g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff;
  if (mapped) {
    std::memcpy(p, "::ffff:", 7);
    return 7 + format_ipv4(a + 12, p + 7);
  }
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0)
      ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      *p++ = ':';
      if (i == 0) *p++ = ':';
      i += best_len - 1;
      continue;
    }
    bool started = false;
    for (int s = 12; s >= 0; s -= 4) {
      const int d = g[i] >> s & 0xF;
      if (d || started || s == 0) {
        *p++ = kHex[d];
        started = true;
      }
    }
    if (i < 7) *p++ = ':';
  }
  return static_cast<size_t>(p - out);
}

class Writer {
 public:
  explicit Writer(std::span<uint8_t> out) : out_(out) {}
  void bytes(const void* p, size_t n) {
    if (out_.size() - at_ < n) {
      ok_ = false;
      return;
    }
    if (n) std::memcpy(out_.data() + at_, p, n);
    at_ += n;
  }
  void u8(uint8_t v) { bytes(&v, 1); }
  void u16(uint16_t v) {
    const uint8_t b[2] = {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
    bytes(b, 2);
  }
  void u32(uint32_t v) {
    const uint8_t b[4] = {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
    bytes(b, 4);
  }
  void tlv(uint8_t type, std::string_view v) {
    v = v.substr(0, 255);
    u8(type);
    u16(static_cast<uint16_t>(v.size()));
    bytes(v.data(), v.size());
  }
  size_t at() const { return at_; }
  bool ok() const { return ok_; }
  uint8_t* data() { return out_.data(); }

 private:
  std::span<uint8_t> out_;
  size_t at_ = 0;
  bool ok_ = true;
};

}  // namespace

const char* to_string(Status s) {
  switch (s) {
    case Status::kNeedMore:
      return "need more";
    case Status::kDone:
      return "done";
    case Status::kInvalid:
      return "invalid";
  }
  return "?";
}

uint32_t crc32c(std::span<const uint8_t> bytes, uint32_t crc) {
  uint32_t c = ~crc;
  for (const uint8_t b : bytes)
    c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return ~c;
}

Header parse(std::span<const uint8_t> in) {
  if (in.empty()) return need(1);
  if (in[0] == 'P') return parse_v1(in);
  if (in[0] == kV2Signature[0]) return parse_v2(in);
  return invalid("not a PROXY protocol header");
}

size_t write_v1(const Addresses& a, std::span<uint8_t> out) {
  char buf[kMaxV1];
  size_t n = 0;
  auto put = [&](std::string_view s) {
    std::memcpy(buf + n, s.data(), s.size());
    n += s.size();
  };
  auto port = [&](uint16_t v) {
    char d[5];
    int k = 0;
    do {
      d[k++] = static_cast<char>('0' + v % 10);
      v = static_cast<uint16_t>(v / 10);
    } while (v);
    while (k)
      buf[n++] = d[--k];
  };
  if (a.family == Family::kNone) {
    put("PROXY UNKNOWN\r\n");
  } else {
    const bool v4 = a.family == Family::kInet;
    put(v4 ? "PROXY TCP4 " : "PROXY TCP6 ");
    n += v4 ? format_ipv4(a.src, buf + n) : format_ipv6(a.src, buf + n);
    put(" ");
    n += v4 ? format_ipv4(a.dst, buf + n) : format_ipv6(a.dst, buf + n);
    put(" ");
    port(a.src_port);
    put(" ");
    port(a.dst_port);
    put("\r\n");
  }
  if (out.size() < n) return 0;
  std::memcpy(out.data(), buf, n);
  return n;
}

size_t write_v2(const V2Params& p, std::span<uint8_t> out) {
  Writer w(out);
  w.bytes(kV2Signature, sizeof(kV2Signature));
  const bool local = p.addr.family == Family::kNone;
  w.u8(local ? 0x20 : 0x21);
  w.u8(local ? 0x00 : p.addr.family == Family::kInet ? 0x11 : 0x21);
  w.u16(0);  // the length, once known
  if (!local) {
    const size_t alen = p.addr.family == Family::kInet ? 4 : 16;
    w.bytes(p.addr.src, alen);
    w.bytes(p.addr.dst, alen);
    w.u16(p.addr.src_port);
    w.u16(p.addr.dst_port);
  }
  if (!p.alpn.empty()) w.tlv(kTlvAlpn, p.alpn);
  if (!p.authority.empty()) w.tlv(kTlvAuthority, p.authority);
  if (p.ssl.present) {
    const std::string_view subs[3] = {p.ssl.version.substr(0, 255), p.ssl.cipher.substr(0, 255),
                                      p.ssl.cn.substr(0, 255)};
    const uint8_t types[3] = {kTlvSslVersion, kTlvSslCipher, kTlvSslCn};
    size_t len = 5;
    for (const auto s : subs)
      if (!s.empty()) len += 3 + s.size();
    w.u8(kTlvSsl);
    w.u16(static_cast<uint16_t>(len));
    w.u8(p.ssl.client);
    w.u32(p.ssl.verify);
    for (int i = 0; i < 3; ++i)
      if (!subs[i].empty()) w.tlv(types[i], subs[i]);
  }
  size_t crc_at = 0;
  if (p.crc) {
    w.u8(kTlvCrc32c);
    w.u16(4);
    crc_at = w.at();
    w.u32(0);
  }
  if (!w.ok()) return 0;
  const size_t total = w.at();
  uint8_t* d = w.data();
  d[14] = static_cast<uint8_t>((total - kV2Fixed) >> 8);
  d[15] = static_cast<uint8_t>(total - kV2Fixed);
  if (p.crc) {
    const uint32_t c = crc32c(std::span<const uint8_t>(d, total));
    d[crc_at] = static_cast<uint8_t>(c >> 24);
    d[crc_at + 1] = static_cast<uint8_t>(c >> 16);
    d[crc_at + 2] = static_cast<uint8_t>(c >> 8);
    d[crc_at + 3] = static_cast<uint8_t>(c);
  }
  return total;
}

}  // namespace egw::proto::proxy_protocol

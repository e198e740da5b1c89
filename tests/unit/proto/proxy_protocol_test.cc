// The PROXY protocol parser and writer: v1 and v2 as the spec writes them,
// every field bent, the `need` contract on every prefix, CRC32C, and the
// writer's output read back by the parser.
#include "proto/proxy_protocol/header.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace egw::proto::proxy_protocol {
namespace {

using Buf = std::vector<uint8_t>;

Buf bytes(std::string_view s) {
  return Buf(s.begin(), s.end());
}

Header parse_text(std::string_view s) {
  return parse(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// Every prefix of a header that parses whole needs more, never decides
// otherwise, and names a `need` within reach.
void expect_prefixes_need_more(const Buf& whole) {
  for (size_t n = 0; n < whole.size(); ++n) {
    const Header h = parse(std::span(whole.data(), n));
    ASSERT_EQ(h.status, Status::kNeedMore) << "prefix " << n;
    EXPECT_GT(h.need, n);
    EXPECT_LE(h.need, whole.size());
  }
}

Buf v2(uint8_t ver_cmd, uint8_t fam, const Buf& body) {
  Buf b(kV2Signature, kV2Signature + 12);
  b.push_back(ver_cmd);
  b.push_back(fam);
  b.push_back(static_cast<uint8_t>(body.size() >> 8));
  b.push_back(static_cast<uint8_t>(body.size()));
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

Buf inet4_block() {
  return {192, 0, 2, 1, 198, 51, 100, 7, 0xC3, 0x50, 0x01, 0xBB};  // 50000 -> 443
}

void tlv(Buf& b, uint8_t type, std::string_view v) {
  b.push_back(type);
  b.push_back(static_cast<uint8_t>(v.size() >> 8));
  b.push_back(static_cast<uint8_t>(v.size()));
  b.insert(b.end(), v.begin(), v.end());
}

TEST(ProxyProtocolV1, Tcp4) {
  const std::string s = "PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\r\nGET / HTTP/1.1\r\n";
  const Header h = parse_text(s);
  ASSERT_EQ(h.status, Status::kDone) << (h.reason ? h.reason : "");
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.length, s.find("GET"));
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.addr.family, Family::kInet);
  const uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {198, 51, 100, 7};
  EXPECT_EQ(std::memcmp(h.addr.src, src, 4), 0);
  EXPECT_EQ(std::memcmp(h.addr.dst, dst, 4), 0);
  EXPECT_EQ(h.addr.src_port, 50000);
  EXPECT_EQ(h.addr.dst_port, 443);
  expect_prefixes_need_more(bytes(s.substr(0, h.length)));
}

TEST(ProxyProtocolV1, Tcp6IncludingCompressedAndDottedForms) {
  struct Case {
    const char* text;
    uint8_t first, last;
  };
  for (const Case& c : {Case{"2001:db8::1", 0x20, 1}, Case{"::1", 0, 1}, Case{"::", 0, 0},
                        Case{"::ffff:192.0.2.9", 0, 9}, Case{"1:2:3:4:5:6:7:8", 0, 8},
                        Case{"fe80::", 0xfe, 0}, Case{"1:2:3:4:5:6:1.2.3.4", 0, 4}}) {
    const std::string s = std::string("PROXY TCP6 ") + c.text + " ::1 1 65535\r\n";
    const Header h = parse_text(s);
    ASSERT_EQ(h.status, Status::kDone) << c.text << ": " << (h.reason ? h.reason : "");
    EXPECT_EQ(h.addr.family, Family::kInet6);
    EXPECT_EQ(h.addr.src[0], c.first) << c.text;
    EXPECT_EQ(h.addr.src[15], c.last) << c.text;
    EXPECT_EQ(h.addr.dst[15], 1);
    EXPECT_EQ(h.addr.dst_port, 65535);
  }
  const Header h = parse_text("PROXY TCP6 2001:db8:0:0:0:0:2:1 ::1 1 2\r\n");
  ASSERT_EQ(h.status, Status::kDone);
  const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
  EXPECT_EQ(std::memcmp(h.addr.src, want, 16), 0);
}

TEST(ProxyProtocolV1, UnknownKeepsTheConnectionsOwnAddresses) {
  for (const char* s : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    const Header h = parse_text(s);
    ASSERT_EQ(h.status, Status::kDone) << s;
    EXPECT_TRUE(h.local);
    EXPECT_EQ(h.length, std::strlen(s));
  }
}

TEST(ProxyProtocolV1, RejectsEveryBentField) {
  for (const char* s : {
           "PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\n",      // LF alone
           "PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\rx",     // CR alone
           "PROXY  TCP4 192.0.2.1 198.51.100.7 50000 443\r\n",   // two spaces
           "PROXY TCP4 192.0.2.1 198.51.100.7 50000 443 \r\n",   // trailing space
           "PROXY TCP4 192.0.2.1 198.51.100.7 50000\r\n",        // a field missing
           "PROXY TCP4 192.0.2.1 198.51.100.7 50000 443 1\r\n",  // one too many
           "PROXY TCP5 192.0.2.1 198.51.100.7 50000 443\r\n",
           "PROXY tcp4 192.0.2.1 198.51.100.7 50000 443\r\n",
           "PROXY TCP4 192.0.2.256 198.51.100.7 50000 443\r\n",
           "PROXY TCP4 192.0.2.01 198.51.100.7 50000 443\r\n",  // leading zero
           "PROXY TCP4 192.0.2 198.51.100.7 50000 443\r\n",
           "PROXY TCP4 192.0.2.1.5 198.51.100.7 50000 443\r\n",
           "PROXY TCP4 ::1 198.51.100.7 50000 443\r\n",  // family mismatch
           "PROXY TCP6 192.0.2.1 ::1 50000 443\r\n",
           "PROXY TCP6 1::2::3 ::1 1 2\r\n",
           "PROXY TCP6 12345::1 ::1 1 2\r\n",
           "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
           "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",
           "PROXY TCP6 :1 ::1 1 2\r\n",
           "PROXY TCP6 1: ::1 1 2\r\n",
           "PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n",
           "PROXY TCP4 192.0.2.1 198.51.100.7 0443 443\r\n",
           "PROXY TCP4 192.0.2.1 198.51.100.7 -1 443\r\n",
           "PROXY TCP4 192.0.2.1 198.51.100.7 +1 443\r\n",
           "PROXY \r\n",
           "PROXY\r\n",
           "proxy TCP4 192.0.2.1 198.51.100.7 50000 443\r\n",
           "GET / HTTP/1.1\r\n",
       }) {
    const Header h = parse_text(s);
    EXPECT_EQ(h.status, Status::kInvalid) << s;
    EXPECT_NE(h.reason, nullptr);
  }
  // A control byte in the line.
  std::string nul = "PROXY TCP4 192.0.2.1";
  nul.push_back('\0');
  EXPECT_EQ(parse_text(nul).status, Status::kInvalid);
}

TEST(ProxyProtocolV1, DecidesAsSoonAsTheBytesAllow) {
  EXPECT_EQ(parse_text("G").status, Status::kInvalid);  // an HTTP request
  EXPECT_EQ(parse_text("PRI").status, Status::kInvalid);
  const Header h = parse_text("PROX");
  EXPECT_EQ(h.status, Status::kNeedMore);
  EXPECT_EQ(h.need, 5u);
  EXPECT_EQ(parse(std::span<const uint8_t>()).need, 1u);
  // 107 bytes without CRLF: never a header.
  const std::string longer = "PROXY UNKNOWN " + std::string(100, 'x');
  EXPECT_EQ(parse_text(longer.substr(0, 106)).status, Status::kNeedMore);
  EXPECT_EQ(parse_text(longer.substr(0, 107)).status, Status::kInvalid);
  // The longest valid line is exactly 107 bytes.
  const std::string max = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
  ASSERT_EQ(max.size(), 107u);
  EXPECT_EQ(parse_text(max).status, Status::kDone);
  // One more byte before the CRLF: 108.
  const std::string over = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
  EXPECT_EQ(parse_text(over).status, Status::kInvalid);
}

TEST(ProxyProtocolV2, ProxyInet4) {
  Buf b = v2(0x21, 0x11, inet4_block());
  b.insert(b.end(), {'G', 'E', 'T'});
  const Header h = parse(b);
  ASSERT_EQ(h.status, Status::kDone) << (h.reason ? h.reason : "");
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.length, 28u);
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.addr.family, Family::kInet);
  EXPECT_EQ(h.addr.src[0], 192);
  EXPECT_EQ(h.addr.dst[3], 7);
  EXPECT_EQ(h.addr.src_port, 50000);
  EXPECT_EQ(h.addr.dst_port, 443);
  expect_prefixes_need_more(Buf(b.begin(), b.begin() + 28));
}

TEST(ProxyProtocolV2, ProxyInet6) {
  Buf body(36, 0);
  body[15] = 1;     // src ::1
  body[16] = 0x20;  // dst 2001::
  body[17] = 0x01;
  body[32] = 0x12;
  body[33] = 0x34;
  body[35] = 80;
  const Header h = parse(v2(0x21, 0x21, body));
  ASSERT_EQ(h.status, Status::kDone);
  EXPECT_EQ(h.addr.family, Family::kInet6);
  EXPECT_EQ(h.addr.src[15], 1);
  EXPECT_EQ(h.addr.dst[0], 0x20);
  EXPECT_EQ(h.addr.src_port, 0x1234);
  EXPECT_EQ(h.addr.dst_port, 80);
}

TEST(ProxyProtocolV2, LocalUnspecAndUnixUseTheConnectionsAddresses) {
  for (const Buf& b : {v2(0x20, 0x00, {}), v2(0x20, 0x11, inet4_block()), v2(0x21, 0x00, {}),
                       v2(0x21, 0x31, Buf(216, 0))}) {
    const Header h = parse(b);
    ASSERT_EQ(h.status, Status::kDone) << (h.reason ? h.reason : "");
    EXPECT_TRUE(h.local);
    EXPECT_EQ(h.length, b.size());
  }
}

TEST(ProxyProtocolV2, Tlvs) {
  Buf body = inet4_block();
  tlv(body, kTlvAlpn, "h2");
  tlv(body, kTlvAuthority, "api.example.com");
  tlv(body, kTlvNoop, "");
  tlv(body, 0xE0, "custom");
  tlv(body, kTlvUniqueId, "id-1");
  Buf ssl = {kSslClientSsl | kSslClientCertConn, 0, 0, 0, 0};
  tlv(ssl, kTlvSslVersion, "TLSv1.3");
  tlv(ssl, kTlvSslCipher, "TLS_AES_128_GCM_SHA256");
  tlv(ssl, kTlvSslCn, "client.example");
  tlv(ssl, 0x2F, "future");
  tlv(body, kTlvSsl, std::string_view(reinterpret_cast<const char*>(ssl.data()), ssl.size()));
  const Buf whole = v2(0x21, 0x11, body);  // the views point into it
  const Header h = parse(whole);
  ASSERT_EQ(h.status, Status::kDone) << (h.reason ? h.reason : "");
  EXPECT_EQ(h.alpn, "h2");
  EXPECT_EQ(h.authority, "api.example.com");
  EXPECT_EQ(h.unique_id, "id-1");
  ASSERT_TRUE(h.ssl.present);
  EXPECT_EQ(h.ssl.client, kSslClientSsl | kSslClientCertConn);
  EXPECT_EQ(h.ssl.verify, 0u);
  EXPECT_EQ(h.ssl.version, "TLSv1.3");
  EXPECT_EQ(h.ssl.cipher, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(h.ssl.cn, "client.example");
  EXPECT_FALSE(h.crc_verified);
}

TEST(ProxyProtocolV2, Crc32c) {
  // The standard check value of CRC-32C.
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(std::span(reinterpret_cast<const uint8_t*>(check.data()), check.size())),
            0xE3069283u);
  Buf body = inet4_block();
  tlv(body, kTlvAlpn, "h2");
  body.insert(body.end(), {kTlvCrc32c, 0, 4, 0, 0, 0, 0});
  Buf b = v2(0x21, 0x11, body);
  const uint32_t c = crc32c(b);
  const size_t at = b.size() - 4;
  b[at] = static_cast<uint8_t>(c >> 24);
  b[at + 1] = static_cast<uint8_t>(c >> 16);
  b[at + 2] = static_cast<uint8_t>(c >> 8);
  b[at + 3] = static_cast<uint8_t>(c);
  Header h = parse(b);
  ASSERT_EQ(h.status, Status::kDone) << (h.reason ? h.reason : "");
  EXPECT_TRUE(h.crc_verified);
  b[16] ^= 1;  // one address bit
  h = parse(b);
  EXPECT_EQ(h.status, Status::kInvalid);
  EXPECT_STREQ(h.reason, "v2: CRC32C does not match");
}

TEST(ProxyProtocolV2, RejectsEveryBentField) {
  auto with_tlvs = [](std::initializer_list<std::pair<uint8_t, std::string>> tlvs) {
    Buf body = inet4_block();
    for (const auto& [t, v] : tlvs)
      tlv(body, t, v);
    return v2(0x21, 0x11, body);
  };
  Buf cut_tlv = inet4_block();
  cut_tlv.insert(cut_tlv.end(), {kTlvAlpn, 0});
  Buf long_tlv = inet4_block();
  long_tlv.insert(long_tlv.end(), {kTlvAlpn, 0, 9, 'h', '2'});
  const std::vector<std::pair<const char*, Buf>> cases = {
      {"version 1 in the binary form", v2(0x11, 0x11, inet4_block())},
      {"command 2", v2(0x22, 0x11, inet4_block())},
      {"family 4", v2(0x21, 0x41, inet4_block())},
      {"transport 3", v2(0x21, 0x13, inet4_block())},
      {"datagram", v2(0x21, 0x12, inet4_block())},
      {"unspecified transport", v2(0x21, 0x10, inet4_block())},
      {"short inet block", v2(0x21, 0x11, Buf(11, 0))},
      {"short inet6 block", v2(0x21, 0x21, Buf(35, 0))},
      {"short unix block", v2(0x21, 0x31, Buf(215, 0))},
      {"TLV header cut", v2(0x21, 0x11, cut_tlv)},
      {"TLV past the end", v2(0x21, 0x11, long_tlv)},
      {"ALPN twice", with_tlvs({{kTlvAlpn, "h2"}, {kTlvAlpn, "h2"}})},
      {"empty authority", with_tlvs({{kTlvAuthority, ""}})},
      {"authority with CR", with_tlvs({{kTlvAuthority, "a\rb"}})},
      {"CRC of 3 bytes", with_tlvs({{kTlvCrc32c, "abc"}})},
      {"unique id of 129", with_tlvs({{kTlvUniqueId, std::string(129, 'u')}})},
      {"SSL of 4 bytes", with_tlvs({{kTlvSsl, std::string(4, '\0')}})},
      {"SSL sub-TLV past its end",
       with_tlvs({{kTlvSsl, std::string("\x01\0\0\0\0\x21\0\x09TLS", 11)}})},
      {"SSL version twice", with_tlvs({{kTlvSsl, std::string("\x01\0\0\0\0\x21\0\x01"
                                                             "a\x21\0\x01"
                                                             "b",
                                                             13)}})},
  };
  for (const auto& [name, b] : cases) {
    const Header h = parse(b);
    EXPECT_EQ(h.status, Status::kInvalid) << name;
    EXPECT_NE(h.reason, nullptr) << name;
  }
}

TEST(ProxyProtocolV2, DecidesAsSoonAsTheBytesAllow) {
  Buf b = v2(0x21, 0x11, inet4_block());
  b[5] ^= 0xFF;  // the signature breaks at byte 5
  EXPECT_EQ(parse(std::span(b.data(), 5)).status, Status::kNeedMore);
  EXPECT_EQ(parse(std::span(b.data(), 6)).status, Status::kInvalid);
  // A hostile length is refused once its two bytes are there.
  Buf big(kV2Signature, kV2Signature + 12);
  big.insert(big.end(), {0x21, 0x11, 0x10, 0x00});  // 16 + 4096
  EXPECT_EQ(parse(big).status, Status::kInvalid);
  Buf ok(kV2Signature, kV2Signature + 12);
  ok.insert(ok.end(), {0x21, 0x11, 0x0F, 0xF0});  // 16 + 4080: the most
  const Header h = parse(ok);
  EXPECT_EQ(h.status, Status::kNeedMore);
  EXPECT_EQ(h.need, kMaxHeader);
  // The version nibble is checked as soon as it is there.
  Buf v(kV2Signature, kV2Signature + 12);
  v.push_back(0x31);
  EXPECT_EQ(parse(v).status, Status::kInvalid);
}

TEST(ProxyProtocolWrite, V1RoundTrips) {
  uint8_t out[kMaxWrite];
  Addresses a;
  a.family = Family::kInet;
  const uint8_t s4[4] = {10, 0, 0, 1}, d4[4] = {127, 0, 0, 1};
  std::memcpy(a.src, s4, 4);
  std::memcpy(a.dst, d4, 4);
  a.src_port = 0;
  a.dst_port = 8080;
  size_t n = write_v1(a, out);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), n),
            "PROXY TCP4 10.0.0.1 127.0.0.1 0 8080\r\n");
  a.family = Family::kInet6;
  const uint8_t s6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
  std::memset(a.dst, 0, 16);
  a.dst[15] = 1;
  std::memcpy(a.src, s6, 16);
  n = write_v1(a, out);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), n),
            "PROXY TCP6 2001:db8::1:0:0:1 ::1 0 8080\r\n");
  const Header h = parse(std::span<const uint8_t>(out, n));
  ASSERT_EQ(h.status, Status::kDone);
  EXPECT_EQ(std::memcmp(h.addr.src, s6, 16), 0);
  // RFC 5952 forms.
  struct Case {
    uint8_t addr[16];
    const char* text;
  };
  const Case cases[] = {
      {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1}, "::ffff:192.0.2.1"},
      {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "2001:db8:0:1::"},
      {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1}, "2001:db8:0:1:1:1:1:1"},
      {{}, "::"},
  };
  for (const Case& c : cases) {
    std::memcpy(a.src, c.addr, 16);
    n = write_v1(a, out);
    const std::string line(reinterpret_cast<char*>(out), n);
    EXPECT_EQ(line.substr(11, line.find(' ', 11) - 11), c.text);
    const Header r = parse(std::span<const uint8_t>(out, n));
    ASSERT_EQ(r.status, Status::kDone) << line;
    EXPECT_EQ(std::memcmp(r.addr.src, c.addr, 16), 0) << line;
  }
  a.family = Family::kNone;
  n = write_v1(a, out);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), n), "PROXY UNKNOWN\r\n");
}

TEST(ProxyProtocolWrite, V2RoundTripsWithTlsAndCrc) {
  uint8_t out[kMaxWrite];
  V2Params p;
  p.addr.family = Family::kInet6;
  p.addr.src[15] = 1;
  p.addr.dst[0] = 0xfe;
  p.addr.src_port = 40000;
  p.addr.dst_port = 443;
  p.alpn = "h2";
  p.authority = "www.example.com";
  p.ssl.present = true;
  p.ssl.client = kSslClientSsl;
  p.ssl.version = "TLSv1.3";
  p.ssl.cipher = "TLS_AES_256_GCM_SHA384";
  p.crc = true;
  const size_t n = write_v2(p, out);
  ASSERT_GT(n, 0u);
  const Header h = parse(std::span<const uint8_t>(out, n));
  ASSERT_EQ(h.status, Status::kDone) << (h.reason ? h.reason : "");
  EXPECT_EQ(h.length, n);
  EXPECT_TRUE(h.crc_verified);
  EXPECT_EQ(h.addr.family, Family::kInet6);
  EXPECT_EQ(h.addr.src[15], 1);
  EXPECT_EQ(h.addr.dst[0], 0xfe);
  EXPECT_EQ(h.addr.src_port, 40000);
  EXPECT_EQ(h.alpn, "h2");
  EXPECT_EQ(h.authority, "www.example.com");
  EXPECT_TRUE(h.ssl.present);
  EXPECT_EQ(h.ssl.version, "TLSv1.3");
  EXPECT_EQ(h.ssl.cipher, "TLS_AES_256_GCM_SHA384");

  // LOCAL (health checks): 16 bytes.
  V2Params local;
  EXPECT_EQ(write_v2(local, out), 16u);
  const Header l = parse(std::span<const uint8_t>(out, 16));
  ASSERT_EQ(l.status, Status::kDone);
  EXPECT_TRUE(l.local);

  // Values past 255 bytes are cut; the longest header fits kMaxWrite.
  const std::string huge(1000, 'x');
  p.alpn = p.authority = p.ssl.version = p.ssl.cipher = p.ssl.cn = huge;
  const size_t m = write_v2(p, out);
  ASSERT_GT(m, 0u);
  const Header cut = parse(std::span<const uint8_t>(out, m));
  ASSERT_EQ(cut.status, Status::kDone);
  EXPECT_EQ(cut.authority.size(), 255u);
  // Too small a buffer: nothing.
  EXPECT_EQ(write_v2(p, std::span(out, 100)), 0u);
}

}  // namespace
}  // namespace egw::proto::proxy_protocol

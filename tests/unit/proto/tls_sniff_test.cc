// The TLS ClientHello sniffer: real hellos from OpenSSL and curl, hand-built
// ones with every field bent, fragmentation over records, the `need` contract
// (exact, monotone) and the kNotTls / kInvalid split.
#include "proto/tls_sniff/client_hello.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace egw::proto::tls_sniff {
namespace {

using Buf = std::vector<uint8_t>;

// A ClientHello captured from `openssl s_client -connect 127.0.0.1:PORT
// -servername api.example.com -alpn h2,http/1.1` (OpenSSL 3.0.22) against a
// python3 socket listener that wrote out the bytes it received: one record,
// SNI "api.example.com", ALPN h2 and http/1.1, TLS 1.3 with a session_id.
const Buf kOpenSslHello = {
    0x16, 0x03, 0x01, 0x01, 0x4e, 0x01, 0x00, 0x01, 0x4a, 0x03, 0x03, 0x3d, 0xf6, 0xf7, 0x34, 0x48,
    0xf2, 0x27, 0x6a, 0xab, 0x50, 0xa3, 0x3f, 0xc6, 0xb1, 0xd2, 0x97, 0xf3, 0xcb, 0x60, 0x99, 0x80,
    0xdc, 0xb1, 0x9d, 0xbf, 0x76, 0x0a, 0xb5, 0x31, 0xd7, 0x66, 0x6f, 0x20, 0x5c, 0xcb, 0x46, 0x0f,
    0x65, 0x08, 0xad, 0x5e, 0x35, 0xb8, 0x5c, 0x7a, 0xdb, 0x55, 0x1c, 0xaf, 0x83, 0x21, 0x1a, 0x19,
    0x89, 0x53, 0x2b, 0x36, 0x96, 0x9c, 0x4e, 0xe9, 0x4c, 0x73, 0xbe, 0x42, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc3,
    0x00, 0x00, 0x00, 0x14, 0x00, 0x12, 0x00, 0x00, 0x0f, 0x61, 0x70, 0x69, 0x2e, 0x65, 0x78, 0x61,
    0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02,
    0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10,
    0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03,
    0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04,
    0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02,
    0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03,
    0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00,
    0x1d, 0x00, 0x20, 0xe6, 0xc6, 0x23, 0x07, 0x07, 0x03, 0xf4, 0xde, 0x66, 0xb2, 0x1a, 0x99, 0x9c,
    0x4d, 0x94, 0xc3, 0xc7, 0x26, 0x75, 0xe2, 0xc5, 0x71, 0xb2, 0xe7, 0xda, 0xf3, 0x6e, 0xa7, 0x77,
    0xe5, 0xd4, 0x64,
};

// A ClientHello captured from `curl --resolve www.Example.org:PORT:127.0.0.1
// https://www.Example.org:PORT/` (curl 7.88.1, OpenSSL 3.0.22) against the same
// listener: 517 bytes with a padding extension; curl lower-cases the name it
// sends, so the SNI is "www.example.org"; ALPN h2 and http/1.1.
const Buf kCurlHello = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x11, 0x68, 0x80, 0xeb, 0x96,
    0x73, 0xf2, 0xe7, 0xcc, 0x58, 0x2d, 0x1f, 0xa5, 0x45, 0x1b, 0x94, 0xde, 0xcf, 0x6c, 0xcd, 0x2c,
    0x1c, 0x86, 0x6d, 0x9d, 0xfb, 0x3f, 0xb4, 0xe7, 0x79, 0xd0, 0x6e, 0x20, 0x8d, 0x90, 0xd9, 0x53,
    0x27, 0x2e, 0xb3, 0x62, 0x15, 0x6b, 0x1a, 0xc5, 0xf4, 0xb5, 0x1c, 0x1c, 0x1b, 0x37, 0x32, 0xb8,
    0x18, 0x24, 0x3d, 0x7a, 0x25, 0x86, 0xeb, 0xda, 0xba, 0xf2, 0x04, 0x71, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x01, 0x75,
    0x00, 0x00, 0x00, 0x14, 0x00, 0x12, 0x00, 0x00, 0x0f, 0x77, 0x77, 0x77, 0x2e, 0x65, 0x78, 0x61,
    0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02,
    0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c,
    0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00,
    0x00, 0x17, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03,
    0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04,
    0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02,
    0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03,
    0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00,
    0x1d, 0x00, 0x20, 0xfc, 0x85, 0x04, 0x2b, 0x97, 0xec, 0x5b, 0x86, 0xbc, 0x17, 0xf7, 0x63, 0x5c,
    0xfa, 0xcb, 0x7a, 0x5c, 0x06, 0x73, 0x07, 0x26, 0x84, 0x7f, 0x82, 0xc1, 0x8b, 0xfb, 0xde, 0x9e,
    0x1a, 0xd8, 0x6a, 0x00, 0x15, 0x00, 0xae, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
};

// --- building hellos by hand ------------------------------------------------

void put8(Buf& b, size_t v) {
  b.push_back(static_cast<uint8_t>(v));
}
void put16(Buf& b, size_t v) {
  put8(b, v >> 8 & 0xff);
  put8(b, v & 0xff);
}
void put24(Buf& b, size_t v) {
  put8(b, v >> 16 & 0xff);
  put16(b, v & 0xffff);
}
void append(Buf& b, const Buf& x) {
  b.insert(b.end(), x.begin(), x.end());
}
void append(Buf& b, std::string_view s) {
  b.insert(b.end(), s.begin(), s.end());
}

Buf extension(uint16_t type, const Buf& data) {
  Buf e;
  put16(e, type);
  put16(e, data.size());
  append(e, data);
  return e;
}

// server_name extension data: a list of (name_type, name) entries.
Buf sni_data(std::initializer_list<std::pair<uint8_t, std::string_view>> entries) {
  Buf list;
  for (const auto& [type, name] : entries) {
    put8(list, type);
    put16(list, name.size());
    append(list, name);
  }
  Buf d;
  put16(d, list.size());
  append(d, list);
  return d;
}
Buf sni_ext(std::string_view name) {
  return extension(0, sni_data({{0, name}}));
}

Buf alpn_data(std::initializer_list<std::string_view> names) {
  Buf list;
  for (std::string_view n : names) {
    put8(list, n.size());
    append(list, n);
  }
  Buf d;
  put16(d, list.size());
  append(d, list);
  return d;
}
Buf alpn_ext(std::initializer_list<std::string_view> names) {
  return extension(16, alpn_data(names));
}

// supported_versions with TLS 1.3 and 1.2: an extension the sniffer skips.
Buf versions_ext() {
  return extension(43, {0x04, 0x03, 0x04, 0x03, 0x03});
}

// Offsets into a ClientHello body, filled by Hello::body().
struct Layout {
  size_t session_id_len = 0, cipher_suites_len = 0, compression_len = 0, extensions_len = 0;
  std::vector<size_t> extension_at;  // where each extension starts
  size_t end_of_compression = 0;
};

struct Hello {
  uint16_t version = 0x0303;
  size_t session_id_size = 32;
  Buf cipher_suites = {0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f};
  Buf compression = {0x00};
  bool extensions_present = true;
  std::vector<Buf> extensions;

  Buf body(Layout* layout = nullptr) const {
    Layout l;
    Buf b;
    put16(b, version);
    b.insert(b.end(), 32, 0xaa);  // random
    l.session_id_len = b.size();
    put8(b, session_id_size);
    b.insert(b.end(), session_id_size, 0x11);
    l.cipher_suites_len = b.size();
    put16(b, cipher_suites.size());
    append(b, cipher_suites);
    l.compression_len = b.size();
    put8(b, compression.size());
    append(b, compression);
    l.end_of_compression = b.size();
    if (extensions_present) {
      l.extensions_len = b.size();
      size_t total = 0;
      for (const Buf& e : extensions)
        total += e.size();
      put16(b, total);
      for (const Buf& e : extensions) {
        l.extension_at.push_back(b.size());
        append(b, e);
      }
    }
    if (layout != nullptr) *layout = l;
    return b;
  }
};

// The usual test hello: SNI, ALPN h2 + http/1.1, supported_versions.
Hello typical(std::string_view name = "api.example.com") {
  Hello h;
  h.extensions = {sni_ext(name), alpn_ext({"h2", "http/1.1"}), versions_ext()};
  return h;
}

// The handshake message: type, 24-bit length, body.
Buf handshake(const Buf& body, uint8_t type = 1) {
  Buf m;
  put8(m, type);
  put24(m, body.size());
  append(m, body);
  return m;
}

Buf record(const Buf& fragment, uint8_t type = 22, uint16_t version = 0x0301) {
  Buf r;
  put8(r, type);
  put16(r, version);
  put16(r, fragment.size());
  append(r, fragment);
  return r;
}

// `message` split into records of the given fragment sizes (the last one
// takes the rest).
Buf records(const Buf& message, std::vector<size_t> sizes) {
  Buf out;
  size_t at = 0;
  for (size_t i = 0; i <= sizes.size() && at < message.size(); ++i) {
    const size_t n =
        i < sizes.size() ? std::min(sizes[i], message.size() - at) : message.size() - at;
    append(out, record(Buf(message.begin() + at, message.begin() + at + n)));
    at += n;
  }
  return out;
}

// `message` split into n records of about equal size.
Buf split(const Buf& message, size_t n) {
  std::vector<size_t> sizes(n - 1, (message.size() + n - 1) / n);
  return records(message, sizes);
}

Buf wire(const Hello& h) {
  return record(handshake(h.body()));
}

// The handshake message inside a single-record hello.
Buf message_of(const Buf& single_record) {
  return Buf(single_record.begin() + 5, single_record.end());
}

// --- calling the sniffer ----------------------------------------------------

Buf& scratch() {
  static Buf s(kMaxClientHello);
  return s;
}

SniffResult sniff(const Buf& in, size_t n) {
  return sniff_client_hello(std::span<const uint8_t>(in.data(), n), scratch());
}
SniffResult sniff(const Buf& in) {
  return sniff(in, in.size());
}
// The views of a result point into the input: it must outlive them.
SniffResult sniff(Buf&& in) = delete;
SniffResult sniff(std::string_view in) {
  return sniff_client_hello({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, scratch());
}

bool inside(std::string_view v, const uint8_t* base, size_t size) {
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return p >= base && p + v.size() <= base + size;
}

SniffStatus status_of(const Buf& in) {
  return sniff(in, in.size()).status;
}

// Every proper prefix of `in` (a complete, valid hello) is kNeedMore with a
// `need` that is above the prefix, within the hello, never smaller than for a
// shorter prefix, and exact: no prefix below a `need` makes progress (gets a
// different `need`), and the full input is kDone.
void expect_need_contract(const Buf& in) {
  size_t last = 0;
  for (size_t n = 0; n < in.size(); ++n) {
    const SniffResult r = sniff(in, n);
    ASSERT_EQ(r.status, SniffStatus::kNeedMore)
        << "prefix " << n << ": " << (r.reason ? r.reason : "");
    ASSERT_GT(r.need, n) << "prefix " << n;
    ASSERT_LE(r.need, in.size()) << "prefix " << n;
    ASSERT_GE(r.need, last) << "prefix " << n;
    if (n < last) {
      ASSERT_EQ(r.need, last) << "progress before need, prefix " << n;
    }
    last = r.need;
  }
  EXPECT_EQ(last, in.size());
  EXPECT_EQ(sniff(in).status, SniffStatus::kDone);
}

// --- real hellos ------------------------------------------------------------

TEST(TlsSniffReal, OpenSsl) {
  const SniffResult r = sniff(kOpenSslHello);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_EQ(r.server_name, "api.example.com");
  EXPECT_EQ(r.alpn_raw, std::string_view("\x02h2\x08http/1.1", 12));
  EXPECT_TRUE(alpn_offers(r.alpn_raw, "h2"));
  EXPECT_TRUE(alpn_offers(r.alpn_raw, "http/1.1"));
  EXPECT_FALSE(alpn_offers(r.alpn_raw, "http/1.0"));
  EXPECT_FALSE(alpn_offers(r.alpn_raw, "h"));
  EXPECT_TRUE(inside(r.server_name, kOpenSslHello.data(), kOpenSslHello.size()));
  EXPECT_TRUE(inside(r.alpn_raw, kOpenSslHello.data(), kOpenSslHello.size()));
  EXPECT_EQ(r.reason, nullptr);
}

TEST(TlsSniffReal, Curl) {
  const SniffResult r = sniff(kCurlHello);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_EQ(r.server_name, "www.example.org");
  EXPECT_TRUE(alpn_offers(r.alpn_raw, "h2"));
  EXPECT_TRUE(alpn_offers(r.alpn_raw, "http/1.1"));
  EXPECT_TRUE(inside(r.server_name, kCurlHello.data(), kCurlHello.size()));
}

TEST(TlsSniffReal, EveryPrefixNeedsMore) {
  expect_need_contract(kOpenSslHello);
  expect_need_contract(kCurlHello);
  // In one record, the first `need` is the header, then the whole record.
  EXPECT_EQ(sniff(kOpenSslHello, 0).need, 1u);
  EXPECT_EQ(sniff(kOpenSslHello, 1).need, 5u);
  EXPECT_EQ(sniff(kOpenSslHello, 4).need, 5u);
  EXPECT_EQ(sniff(kOpenSslHello, 5).need, kOpenSslHello.size());
}

TEST(TlsSniffReal, RefragmentedKeepsNameAndAlpn) {
  for (const Buf* real : {&kOpenSslHello, &kCurlHello}) {
    const SniffResult whole = sniff(*real);
    ASSERT_EQ(whole.status, SniffStatus::kDone);
    const std::string name(whole.server_name), alpn(whole.alpn_raw);
    const Buf message = message_of(*real);
    for (size_t n : {2, 3, 7, 50}) {
      const Buf in = split(message, n);
      expect_need_contract(in);
      const SniffResult r = sniff(in);
      ASSERT_EQ(r.status, SniffStatus::kDone) << n << " records";
      EXPECT_EQ(r.server_name, name);
      EXPECT_EQ(r.alpn_raw, alpn);
      EXPECT_TRUE(inside(r.server_name, scratch().data(), message.size()));
      EXPECT_TRUE(inside(r.alpn_raw, scratch().data(), message.size()));
    }
  }
}

TEST(TlsSniffReal, BadFirstByteIsNotTlsAtEveryPrefix) {
  Buf in = kOpenSslHello;
  in[0] = 23;
  for (size_t n = 1; n <= in.size(); ++n)
    ASSERT_EQ(sniff(in, n).status, SniffStatus::kNotTls) << n;
}

TEST(TlsSniffReal, LaterRecordsAreNotLookedAt) {
  // TLS 1.3 early data may follow the hello in the same read.
  Buf in = kOpenSslHello;
  append(in, record({1, 2, 3}, 23, 0x0303));
  const SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone);
  EXPECT_EQ(r.server_name, "api.example.com");
  in.push_back(0xff);  // even junk
  EXPECT_EQ(status_of(in), SniffStatus::kDone);
}

// --- not TLS ----------------------------------------------------------------

TEST(TlsSniffNotTls, PlainHttp) {
  const std::string_view get = "GET / HTTP/1.1\r\n";
  for (size_t n = 1; n <= get.size(); ++n) {
    const SniffResult r = sniff(get.substr(0, n));
    EXPECT_EQ(r.status, SniffStatus::kNotTls) << n;
    EXPECT_NE(r.reason, nullptr);
  }
}

TEST(TlsSniffNotTls, EmptyInputNeedsOneByte) {
  const Buf empty;
  const SniffResult r = sniff(empty);
  EXPECT_EQ(r.status, SniffStatus::kNeedMore);
  EXPECT_EQ(r.need, 1u);
}

TEST(TlsSniffNotTls, OtherRecordTypesFirst) {
  for (uint8_t type : {20, 21, 23, 24}) {
    EXPECT_EQ(status_of(record({1, 2, 3}, type)), SniffStatus::kNotTls) << int(type);
  }
  // An SSLv2-compatible ClientHello (a 2-byte header with the top bit set).
  EXPECT_EQ(status_of({0x80, 0x2e, 0x01, 0x03, 0x01}), SniffStatus::kNotTls);
}

// --- SNI and ALPN -----------------------------------------------------------

TEST(TlsSniffSni, TypicalHello) {
  const Buf in = wire(typical());
  expect_need_contract(in);
  const SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_EQ(r.server_name, "api.example.com");
  EXPECT_EQ(r.alpn_raw, std::string_view("\x02h2\x08http/1.1", 12));
}

TEST(TlsSniffSni, NoSni) {
  Hello h;
  h.extensions = {alpn_ext({"h2"}), versions_ext()};
  const Buf in = wire(h);
  const SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_TRUE(r.server_name.empty());
  EXPECT_EQ(r.alpn_raw, std::string_view("\x02h2", 3));
}

TEST(TlsSniffSni, NoExtensionsAtAll) {
  Hello h;
  h.extensions_present = false;
  const Buf in = wire(h);
  const SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_TRUE(r.server_name.empty());
  EXPECT_TRUE(r.alpn_raw.empty());
  // An empty extension block is the same.
  h.extensions_present = true;
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kDone);
}

TEST(TlsSniffSni, NoAlpn) {
  Hello h;
  h.extensions = {sni_ext("a.example")};
  const Buf in = wire(h);
  const SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone);
  EXPECT_EQ(r.server_name, "a.example");
  EXPECT_TRUE(r.alpn_raw.empty());
  EXPECT_FALSE(alpn_offers(r.alpn_raw, "h2"));
}

TEST(TlsSniffSni, CaseIsKeptAsSent) {
  const Buf in = wire(typical("Api.EXAMPLE.com"));
  const SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone);
  EXPECT_EQ(r.server_name, "Api.EXAMPLE.com");
}

TEST(TlsSniffSni, AllowedCharacters) {
  for (std::string_view name : {"a", "x-y_z.0-9", "localhost", "1.2.3.4", "trailing.dot."}) {
    const Buf in = wire(typical(name));
    const SniffResult r = sniff(in);
    ASSERT_EQ(r.status, SniffStatus::kDone) << name;
    EXPECT_EQ(r.server_name, name);
  }
  const std::string longest(255, 'a');
  const Buf in = wire(typical(longest));
  EXPECT_EQ(sniff(in).server_name, longest);
}

TEST(TlsSniffSni, OddNamesAreInvalid) {
  using namespace std::string_literals;
  for (const std::string& name :
       {"a b"s, "a\0b"s, "\0"s, "a.example\0"s, "a/b"s, "a:443"s, "a%2e"s, "caf\xc3\xa9"s, "a\tb"s,
        "a*b"s, "[::1]"s, "a\x7f"s, ""s, std::string(256, 'a')}) {
    const Buf in = wire(typical(name));
    const SniffResult r = sniff(in);
    EXPECT_EQ(r.status, SniffStatus::kInvalid) << name;
    EXPECT_NE(r.reason, nullptr);
    EXPECT_TRUE(r.server_name.empty());
  }
}

TEST(TlsSniffSni, OtherNameTypesAreSkipped) {
  Hello h;
  h.extensions = {extension(0, sni_data({{7, "\x01\x02 odd"}, {0, "b.example"}}))};
  Buf in = wire(h);
  SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_EQ(r.server_name, "b.example");
  h.extensions = {extension(0, sni_data({{7, "x"}}))};
  in = wire(h);
  r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_TRUE(r.server_name.empty());
}

TEST(TlsSniffSni, TwoHostNamesAreInvalid) {
  Hello h;
  h.extensions = {extension(0, sni_data({{0, "a.example"}, {0, "b.example"}}))};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
}

TEST(TlsSniffSni, DuplicateExtensionsAreInvalid) {
  Hello h;
  h.extensions = {sni_ext("a.example"), versions_ext(), sni_ext("b.example")};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.extensions = {sni_ext("a.example"), sni_ext("a.example")};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.extensions = {alpn_ext({"h2"}), alpn_ext({"http/1.1"})};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  // Duplicates of extensions the sniffer does not read are the backend's.
  h.extensions = {versions_ext(), versions_ext(), sni_ext("a.example")};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kDone);
}

TEST(TlsSniffSni, EmptyListsAreInvalid) {
  Hello h;
  h.extensions = {extension(0, {})};  // no list at all
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.extensions = {extension(0, {0, 0})};  // empty server_name list
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.extensions = {extension(16, {})};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.extensions = {extension(16, {0, 0})};  // empty protocol list
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.extensions = {extension(16, alpn_data({"h2", ""}))};  // empty protocol name
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
}

TEST(TlsSniffSni, AlpnOffers) {
  const std::string_view raw("\x02h2\x08http/1.1\x01x", 14);
  EXPECT_TRUE(alpn_offers(raw, "h2"));
  EXPECT_TRUE(alpn_offers(raw, "http/1.1"));
  EXPECT_TRUE(alpn_offers(raw, "x"));
  EXPECT_FALSE(alpn_offers(raw, "h3"));
  EXPECT_FALSE(alpn_offers(raw, ""));
  EXPECT_FALSE(alpn_offers("", "h2"));
  EXPECT_FALSE(alpn_offers(std::string_view("\x05h2", 3), "h2"));  // overrun: never reads past
}

// --- fields of the ClientHello ----------------------------------------------

// Each length field of a typical hello, one up and one down (and, for 16-bit
// ones, at its maximum), with everything around it unchanged: the hello is
// kInvalid, never kDone and never kNeedMore (the handshake length still
// matches the record).
TEST(TlsSniffFields, EveryLengthOffByOneIsInvalid) {
  Layout l;
  const Buf body = typical().body(&l);
  ASSERT_EQ(l.extension_at.size(), 3u);
  const size_t sni = l.extension_at[0], alpn = l.extension_at[1], versions = l.extension_at[2];
  struct Field {
    const char* name;
    size_t at;
    int width;
  };
  const Field fields[] = {
      {"session_id", l.session_id_len, 1},
      {"cipher_suites", l.cipher_suites_len, 2},
      {"compression_methods", l.compression_len, 1},
      {"extensions", l.extensions_len, 2},
      {"sni extension", sni + 2, 2},
      {"server_name_list", sni + 4, 2},
      {"host_name", sni + 7, 2},
      {"alpn extension", alpn + 2, 2},
      {"protocol_name_list", alpn + 4, 2},
      {"first protocol name", alpn + 6, 1},
      {"second protocol name", alpn + 9, 1},
      {"last extension", versions + 2, 2},
  };
  for (const Field& f : fields) {
    const size_t value = f.width == 1 ? body[f.at] : size_t{body[f.at]} << 8 | body[f.at + 1];
    for (size_t bent : {value + 1, value - 1, f.width == 1 ? size_t{0xff} : size_t{0xffff}}) {
      Buf b = body;
      if (f.width == 1) {
        b[f.at] = static_cast<uint8_t>(bent);
      } else {
        b[f.at] = static_cast<uint8_t>(bent >> 8);
        b[f.at + 1] = static_cast<uint8_t>(bent);
      }
      const Buf in = record(handshake(b));
      const SniffResult r = sniff(in);
      EXPECT_EQ(r.status, SniffStatus::kInvalid) << f.name << " = " << bent;
      EXPECT_NE(r.reason, nullptr);
    }
  }
}

// A body cut anywhere (handshake and record lengths matching the cut) is
// kInvalid, except right after compression_methods: a hello without
// extensions.
TEST(TlsSniffFields, EveryTruncationIsInvalid) {
  Layout l;
  const Buf body = typical().body(&l);
  for (size_t cut = 0; cut < body.size(); ++cut) {
    const Buf in = record(handshake(Buf(body.begin(), body.begin() + cut)));
    const SniffResult r = sniff(in);
    const SniffStatus want =
        cut == l.end_of_compression ? SniffStatus::kDone : SniffStatus::kInvalid;
    EXPECT_EQ(r.status, want) << "cut at " << cut;
  }
}

TEST(TlsSniffFields, TrailingBytesAfterExtensionsAreInvalid) {
  Buf body = typical().body();
  body.push_back(0);
  EXPECT_EQ(status_of(record(handshake(body))), SniffStatus::kInvalid);
}

TEST(TlsSniffFields, Values) {
  Hello h = typical();
  h.session_id_size = 0;
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kDone);
  h.session_id_size = 33;
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);

  h = typical();
  h.cipher_suites = {};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.cipher_suites = {0x13, 0x01, 0x13};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.cipher_suites = {0x13, 0x01};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kDone);

  h = typical();
  h.compression = {};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.compression = {1, 0};
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kDone);

  h = typical();
  h.version = 0x0203;
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kInvalid);
  h.version = 0x0301;
  EXPECT_EQ(status_of(wire(h)), SniffStatus::kDone);
}

// --- handshake layer --------------------------------------------------------

TEST(TlsSniffHandshake, NotAClientHello) {
  const Buf body = typical().body();
  for (uint8_t type : {0, 2, 4, 11, 20}) {
    const Buf in = record(handshake(body, type));
    EXPECT_EQ(status_of(in), SniffStatus::kInvalid) << int(type);
    // Decided by the type byte alone.
    EXPECT_EQ(sniff(in, 6).status, SniffStatus::kInvalid) << int(type);
  }
}

TEST(TlsSniffHandshake, LengthAgainstRecords) {
  const Buf body = typical().body();
  Buf in = record(handshake(body));
  // Handshake length one longer: the rest may come in the next record.
  Buf longer = in;
  longer[8] += 1;
  const SniffResult r = sniff(longer);
  EXPECT_EQ(r.status, SniffStatus::kNeedMore);
  EXPECT_EQ(r.need, in.size() + 5);
  append(longer, record({0}));
  EXPECT_EQ(status_of(longer), SniffStatus::kInvalid);  // the extra byte is junk
  // One shorter: the record holds a byte after the hello.
  Buf shorter = in;
  shorter[8] -= 1;
  EXPECT_EQ(status_of(shorter), SniffStatus::kInvalid);
  // ... found as soon as the handshake header is complete.
  EXPECT_EQ(sniff(shorter, 9).status, SniffStatus::kInvalid);
  // A handshake length of zero.
  EXPECT_EQ(status_of(record(handshake({}))), SniffStatus::kInvalid);
}

TEST(TlsSniffHandshake, TooLong) {
  // At the limit, over two records: fine.
  Hello h = typical();
  const size_t base = h.body().size() + 4;  // + 4 for the padding extension header
  const size_t pad = kMaxClientHello - 4 - base;
  h.extensions.push_back(extension(21, Buf(pad, 0)));
  Buf message = handshake(h.body());
  ASSERT_EQ(message.size(), kMaxClientHello);
  Buf in = split(message, 2);
  SniffResult r = sniff(in);
  ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
  EXPECT_EQ(r.server_name, "api.example.com");
  // One byte more: rejected from the handshake header alone.
  h.extensions.back() = extension(21, Buf(pad + 1, 0));
  message = handshake(h.body());
  ASSERT_EQ(message.size(), kMaxClientHello + 1);
  in = split(message, 2);
  EXPECT_EQ(status_of(in), SniffStatus::kInvalid);
  EXPECT_EQ(sniff(in, 9).status, SniffStatus::kInvalid);
  // The largest 24-bit length too.
  EXPECT_EQ(status_of({22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}), SniffStatus::kInvalid);
}

TEST(TlsSniffHandshake, ScratchTooSmall) {
  const Buf in = split(handshake(typical().body()), 2);
  Buf small(100);
  const SniffResult r = sniff_client_hello(in, small);
  EXPECT_EQ(r.status, SniffStatus::kInvalid);
  // A single-record hello does not need scratch at all.
  EXPECT_EQ(sniff_client_hello(wire(typical()), {}).status, SniffStatus::kDone);
}

// --- record layer -----------------------------------------------------------

TEST(TlsSniffRecords, FragmentedOverTwoAndThree) {
  const Buf message = handshake(typical().body());
  for (size_t n : {2, 3}) {
    const Buf in = split(message, n);
    expect_need_contract(in);
    const SniffResult r = sniff(in);
    ASSERT_EQ(r.status, SniffStatus::kDone) << r.reason;
    EXPECT_EQ(r.server_name, "api.example.com");
    EXPECT_EQ(r.alpn_raw, std::string_view("\x02h2\x08http/1.1", 12));
    EXPECT_TRUE(inside(r.server_name, scratch().data(), message.size()));
  }
}

TEST(TlsSniffRecords, NeedFollowsRecordBoundaries) {
  const Buf message = handshake(typical().body());
  const Buf in = records(message, {10, 20});  // records end at 15, 40, in.size()
  EXPECT_EQ(sniff(in, 5).need, 15u);
  EXPECT_EQ(sniff(in, 14).need, 15u);
  EXPECT_EQ(sniff(in, 15).need, 20u);
  EXPECT_EQ(sniff(in, 19).need, 20u);
  EXPECT_EQ(sniff(in, 20).need, 40u);
  EXPECT_EQ(sniff(in, 40).need, 45u);
  EXPECT_EQ(sniff(in, 45).need, in.size());
}

TEST(TlsSniffRecords, OneByteRecordsAndSplitHandshakeHeader) {
  const Buf message = handshake(typical().body());
  const Buf in = records(message, std::vector<size_t>(message.size(), 1));
  ASSERT_EQ(in.size(), message.size() * 6);
  expect_need_contract(in);
  EXPECT_EQ(sniff(in).server_name, "api.example.com");
  // The handshake header in pieces 1, 2, 1 (then the rest).
  const Buf in2 = records(message, {1, 2, 1});
  expect_need_contract(in2);
  EXPECT_EQ(sniff(in2).server_name, "api.example.com");
}

TEST(TlsSniffRecords, OtherRecordTypeBeforeTheEnd) {
  const Buf message = handshake(typical().body());
  const Buf first = record(Buf(message.begin(), message.begin() + 20));
  const Buf rest = record(Buf(message.begin() + 20, message.end()));
  for (uint8_t type : {20, 21, 23}) {
    Buf in = first;
    append(in, record({1}, type));
    append(in, rest);
    EXPECT_EQ(status_of(in), SniffStatus::kInvalid) << int(type);
    EXPECT_EQ(sniff(in, first.size() + 1).status, SniffStatus::kInvalid) << int(type);
  }
}

TEST(TlsSniffRecords, Version) {
  const Buf message = handshake(typical().body());
  for (uint16_t v : {0x0300, 0x0301, 0x0302, 0x0303, 0x0304})
    EXPECT_EQ(status_of(record(message, 22, v)), SniffStatus::kDone) << v;
  for (uint16_t v : {0x0000, 0x0203, 0x0401, 0xfefd}) {
    const Buf in = record(message, 22, v);
    EXPECT_EQ(status_of(in), SniffStatus::kInvalid) << v;
    EXPECT_EQ(sniff(in, 2).status, SniffStatus::kInvalid) << v;
  }
  // In a later record too.
  Buf in = records(message, {10});
  in[15 + 1] = 2;
  EXPECT_EQ(status_of(in), SniffStatus::kInvalid);
}

TEST(TlsSniffRecords, Length) {
  const Buf message = handshake(typical().body());
  Buf in = record(message);
  // Zero: rejected from the header alone.
  in[3] = 0;
  in[4] = 0;
  EXPECT_EQ(sniff(in, 5).status, SniffStatus::kInvalid);
  // An empty record in the middle.
  Buf mid = record(Buf(message.begin(), message.begin() + 10));
  append(mid, record({}));
  append(mid, record(Buf(message.begin() + 10, message.end())));
  EXPECT_EQ(status_of(mid), SniffStatus::kInvalid);
  // Above 2^14.
  for (size_t len : {16385, 0xffff}) {
    in[3] = static_cast<uint8_t>(len >> 8);
    in[4] = static_cast<uint8_t>(len);
    EXPECT_EQ(sniff(in, 5).status, SniffStatus::kInvalid) << len;
  }
}

TEST(TlsSniffRecords, FullRecordOf16384) {
  Hello h = typical();
  const size_t base = h.body().size() + 4 + 4;  // padding extension header, handshake header
  h.extensions.push_back(extension(21, Buf(kMaxRecordLength - base, 0)));
  const Buf message = handshake(h.body());
  ASSERT_EQ(message.size(), kMaxRecordLength);
  const Buf in = record(message);
  expect_need_contract(in);
  EXPECT_EQ(sniff(in).server_name, "api.example.com");
  // One more byte does not fit one record.
  Buf bigger = message;
  bigger.push_back(0);
  EXPECT_EQ(sniff(record(bigger), 5).status, SniffStatus::kInvalid);
}

TEST(TlsSniffRecords, RecordPastTheHello) {
  // A record that carries the end of the hello and more: rejected as soon as
  // its header is read.
  const Buf message = handshake(typical().body());
  Buf tail(message.begin() + 10, message.end());
  tail.push_back(0);
  Buf in = record(Buf(message.begin(), message.begin() + 10));
  append(in, record(tail));
  EXPECT_EQ(status_of(in), SniffStatus::kInvalid);
  EXPECT_EQ(sniff(in, 20).status, SniffStatus::kInvalid);
}

}  // namespace
}  // namespace egw::proto::tls_sniff

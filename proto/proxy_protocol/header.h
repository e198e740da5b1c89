// Sans-I/O PROXY protocol (HAProxy's "The PROXY protocol", versions 1 and 2):
// the header an L4 balancer puts in front of a connection to say whose it is.
//
// parse() reads the start of a connection's byte stream and says whether it
// holds a whole header, needs more bytes, or is not a valid one. It never
// allocates, never reads outside `in`, keeps no state (the caller calls again
// with the longer prefix after kNeedMore) and decides as early as the bytes
// allow: a first byte that starts neither version is kInvalid at once.
//
// What is accepted, strictly:
//   v1: "PROXY TCP4 " | "PROXY TCP6 " src SP dst SP sport SP dport CRLF, at
//     most 107 bytes. Single spaces; addresses of the named family in their
//     text forms (IPv4 dotted quad without leading zeros; IPv6 per
//     RFC 4291 §2.2, an embedded IPv4 tail allowed); ports 0..65535 in
//     decimal without leading zeros. "PROXY UNKNOWN" then anything up to
//     CRLF: the connection's own addresses stand (`local`).
//   v2: the 12-byte signature, version 2, command LOCAL (0, `local`: health
//     checks) or PROXY (1); families AF_INET / AF_INET6 over STREAM (a
//     datagram flow's header on a stream connection is kInvalid), AF_UNSPEC
//     and AF_UNIX (both `local`: nothing we could use). The length must hold
//     the family's address block; what follows is TLVs that must fill it
//     exactly, each bounds-checked. Known TLVs: ALPN, AUTHORITY, CRC32C (the
//     checksum is verified; a mismatch is kInvalid), NOOP, UNIQUE_ID (at
//     most 128 bytes), SSL (client flags, verify result, and the VERSION, CN,
//     CIPHER, SIG_ALG and KEY_ALG sub-TLVs), NETNS. Others are skipped.
//     A known TLV twice is kInvalid (which one would count?).
//   Either: at most kMaxHeader bytes in all (a v2 length past it is kInvalid
//     as soon as the length's bytes are there).
//
// Views in a kDone header point into `in`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace egw::proto::proxy_protocol {

inline constexpr size_t kMaxV1 = 107;  // the spec's bound, CRLF included
inline constexpr size_t kV2Fixed = 16;
// The longest header accepted: a v2 header with TLVs (SSL with a long CN,
// cloud balancers' endpoint IDs) is a few hundred bytes.
inline constexpr size_t kMaxHeader = 4096;
inline constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                             0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// v2 TLV types (PP2_TYPE_* in the spec).
enum TlvType : uint8_t {
  kTlvAlpn = 0x01,
  kTlvAuthority = 0x02,
  kTlvCrc32c = 0x03,
  kTlvNoop = 0x04,
  kTlvUniqueId = 0x05,
  kTlvSsl = 0x20,
  kTlvSslVersion = 0x21,
  kTlvSslCn = 0x22,
  kTlvSslCipher = 0x23,
  kTlvSslSigAlg = 0x24,
  kTlvSslKeyAlg = 0x25,
  kTlvNetns = 0x30,
};
// PP2_TYPE_SSL client flags.
inline constexpr uint8_t kSslClientSsl = 0x01;
inline constexpr uint8_t kSslClientCertConn = 0x02;
inline constexpr uint8_t kSslClientCertSess = 0x04;

enum class Status : uint8_t { kNeedMore, kDone, kInvalid };
const char* to_string(Status s);

enum class Family : uint8_t { kNone, kInet, kInet6 };

// Addresses in network byte order (4 or 16 bytes used), ports in host order.
struct Addresses {
  Family family = Family::kNone;
  uint8_t src[16] = {};
  uint8_t dst[16] = {};
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

struct SslInfo {
  bool present = false;
  uint8_t client = 0;   // kSslClient* flags
  uint32_t verify = 0;  // 0: the client certificate (if any) verified
  std::string_view version, cn, cipher, sig_alg, key_alg;
};

struct Header {
  Status status = Status::kNeedMore;
  // kNeedMore: the stream must have at least this many bytes before another
  // call can decide (exact for v2's fixed part and length; one more byte
  // for v1, whose end is its CRLF).
  size_t need = 0;
  const char* reason = nullptr;  // kInvalid
  size_t length = 0;             // kDone: the header's bytes; the stream's data follows
  uint8_t version = 0;           // kDone: 1 or 2
  // kDone: the header names no addresses to use (v1 UNKNOWN, v2 LOCAL,
  // AF_UNSPEC, AF_UNIX): the connection's own stand.
  bool local = false;
  Addresses addr;  // kDone and !local
  // v2 only.
  std::string_view alpn, authority, unique_id, netns;
  SslInfo ssl;
  bool crc_verified = false;  // a CRC32C TLV was there and matched
};

Header parse(std::span<const uint8_t> in);

// CRC32C (Castagnoli), as the CRC32C TLV carries it.
uint32_t crc32c(std::span<const uint8_t> bytes, uint32_t crc = 0);

// --- Writing ----------------------------------------------------------------

// The longest header write_v1() / write_v2() produce.
inline constexpr size_t kMaxWrite = 1536;

// "PROXY TCP4 ..." for `a` (or "PROXY UNKNOWN\r\n" when a.family is kNone);
// returns the bytes written to `out` (at least kMaxV1 bytes of room).
size_t write_v1(const Addresses& a, std::span<uint8_t> out);

struct V2Params {
  Addresses addr;  // family kNone: a LOCAL header (health checks)
  std::string_view alpn, authority;
  SslInfo ssl;  // present: the client's connection was TLS (we terminated it)
  bool crc = false;
};
// Returns the bytes written to `out`, or 0 when they do not fit in it (a
// value is cut to 255 bytes first, so kMaxWrite always fits).
size_t write_v2(const V2Params& p, std::span<uint8_t> out);

}  // namespace egw::proto::proxy_protocol

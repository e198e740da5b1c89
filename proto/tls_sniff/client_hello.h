// Sans-I/O TLS ClientHello sniffer (RFC 8446 §4.1.2, §5.1; RFC 6066 §3;
// RFC 7301 §3.1).
//
// A `protocol = "tcp"` listener routes on the SNI of a TLS connection without
// terminating TLS: it peeks at the socket (MSG_PEEK), hands what it sees to
// sniff_client_hello(), and later splices the untouched bytes to the chosen
// backend. The backend's TLS stack reads the very same bytes, so the sniffer
// only has to be sure that the name it reports is the name the backend will
// see, and that no name with odd bytes reaches routing. The deliberate
// choices are:
//
//   Not TLS: only the first byte decides. Anything but 22 (handshake) there is
//     kNotTls (plain HTTP, an SSLv2-compatible hello, an alert or application
//     data record first), even when fewer than 5 bytes are available. Once
//     the first byte is 22, whatever is wrong later is kInvalid.
//   Records: content type 22, legacy_record_version major 3 (any minor:
//     clients use 0x0300..0x0303 there), length 1..2^14. A ClientHello may
//     be fragmented over several records; every record up to its end must be
//     a handshake record, and the last one must end with it (the client
//     cannot send anything else before the server answers, so data after the
//     ClientHello in its record is kInvalid). Records after that one are not
//     looked at.
//   Handshake: type 1 (ClientHello), 24-bit length, the whole message
//     (4-byte header included) at most kMaxClientHello bytes. The type and
//     the limit are checked as soon as their bytes arrive, so a hostile
//     length does not make the caller wait for 16 MiB.
//   ClientHello: legacy_version major 3, 32 bytes of random, session_id of at
//     most 32 bytes, cipher_suites of even length >= 2, compression_methods
//     of length >= 1, then either nothing (a hello without extensions is
//     valid) or an extension block that fills the rest of the message
//     exactly. Every extension's length is bounds-checked.
//   server_name (type 0): the list must fill the extension exactly; each entry
//     is name_type(1) + length(2) + data (RFC 6066 requires future name types
//     to start with a 16-bit length too). The host_name entry (type 0) is the
//     name; a second host_name is kInvalid (RFC 6066 forbids it, and a
//     backend might pick the other one). The name must be 1..255 bytes of
//     letters, digits, '-', '.', '_'; it is returned as sent (not
//     lower-cased; a trailing dot or an empty label is passed through, and
//     simply matches no route). A list without a host_name gives kDone with
//     an empty name.
//   application_layer_protocol_negotiation (type 16): the list must fill the
//     extension exactly and hold names of 1..255 bytes (at least one); the
//     raw list is returned (see alpn_offers()).
//   Duplicates: server_name or ALPN twice is kInvalid. Duplicates of the
//     extensions we do not interpret are left to the backend, which reads the
//     same bytes and must reject them itself.
//
// Reassembly: when the ClientHello lies in one record, the views of a kDone
// result point into `bytes`. When it spans several records, its fragments are
// copied into the caller's `scratch` (at least kMaxClientHello bytes) and the
// views point into scratch. scratch is written only on the call that returns
// kDone for a fragmented hello.
//
// The caller calls again with the longer prefix of the same stream after
// kNeedMore; every call starts from the beginning (there is no state), costs
// O(size of the input), never allocates and never reads outside `bytes`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace egw::proto::tls_sniff {

// The longest accepted ClientHello handshake message, including its 4-byte
// header. Real ones are 200..2000 bytes (post-quantum key shares push them
// past 1500); the 2048 above one full record leaves room for those that a
// client fragments on purpose.
inline constexpr size_t kMaxClientHello = 16384 + 2048;
inline constexpr size_t kMaxRecordLength = 16384;  // TLSPlaintext.length limit
inline constexpr size_t kRecordHeaderSize = 5;
// The most input a ClientHello can need: every record carries at least one
// byte of the message and costs a 5-byte header. A `need` never exceeds it.
inline constexpr size_t kMaxInput = kMaxClientHello * (kRecordHeaderSize + 1);

enum class SniffStatus : uint8_t { kNeedMore, kDone, kNotTls, kInvalid };
const char* to_string(SniffStatus s);

struct SniffResult {
  SniffStatus status = SniffStatus::kNeedMore;
  // kNeedMore: the total number of bytes (from the start of the stream) that
  // must be available before calling again can make progress: 1 while
  // nothing is there, then the end of the record header or record body being
  // read. It is always greater than the input size, never greater than
  // kMaxInput, and never decreases as the input grows, so a caller can set
  // SO_RCVLOWAT to it and be woken exactly when it is worth calling again.
  size_t need = 0;
  // kDone: the host_name of the server_name extension, a view into `bytes`
  // or `scratch` (see above); empty when the ClientHello carries none.
  std::string_view server_name;
  // kDone: the ALPN ProtocolNameList without its 2-byte length (a sequence
  // of length-prefixed names), a view like server_name; empty when the
  // ClientHello has no ALPN extension.
  std::string_view alpn_raw;
  // kNotTls / kInvalid: a short static reason for logs.
  const char* reason = nullptr;
};

// Sniffs the ClientHello at the start of `bytes`. `scratch` must hold at
// least kMaxClientHello bytes; it is used only for a fragmented hello (a
// smaller one makes a fragmented hello kInvalid, "scratch too small").
SniffResult sniff_client_hello(std::span<const uint8_t> bytes, std::span<uint8_t> scratch);

// True when the ProtocolNameList `alpn_raw` (as in SniffResult, already
// validated) offers `protocol` exactly, e.g. alpn_offers(r.alpn_raw, "h2").
bool alpn_offers(std::string_view alpn_raw, std::string_view protocol);

}  // namespace egw::proto::tls_sniff

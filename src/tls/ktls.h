// Kernel TLS: the key material to hand a finished wolfSSL session over to
// the kernel (setsockopt(SOL_TLS, TLS_TX/TLS_RX)). Whether this kernel has
// kTLS at all is the engine's probe: uring::features().ktls and ktls_reason.
// The gateway does not perform the hand-off yet; this is its building block.
//
// The hand-off, per direction (research/uring-notes.md §8):
//   1. handshake done; for RX: no recv in flight, Session::buffered_input()
//      == 0 and wolfSSL holds no unread plaintext; for TX: every byte the
//      output callback produced has been sent (the kernel numbers records
//      from the sequence taken here);
//   2. setsockopt(fd, SOL_TCP, TCP_ULP, "tls") (once per socket);
//   3. crypto_info(session, tx) and setsockopt(fd, SOL_TLS, tx ? TLS_TX :
//      TLS_RX, info.bytes.data(), info.bytes.size()); then drop the info
//      (its destructor wipes the key);
//   4. from then on the socket carries plaintext; non-data records need the
//      TLS_GET/SET_RECORD_TYPE cmsgs. wolfSSL must not be used for that
//      direction any more.
// TLS 1.3 KeyUpdate is not followed after the hand-off: a session must not be
// handed over if it may need one (v1: close gracefully near 2^23 records).
#pragma once

#include <cstdint>
#include <vector>

#include "egw/result.h"

namespace egw::tls {

class Session;

// Exactly the bytes setsockopt(SOL_TLS, TLS_TX or TLS_RX) takes: one of
// struct tls12_crypto_info_aes_gcm_128, _aes_gcm_256 or _chacha20_poly1305
// from <linux/tls.h>. Holds key material: the destructor wipes it.
struct CryptoInfo {
  int version = 0;      // TLS_1_2_VERSION or TLS_1_3_VERSION
  int cipher_type = 0;  // TLS_CIPHER_AES_GCM_128 / _AES_GCM_256 / _CHACHA20_POLY1305
  std::vector<uint8_t> bytes;

  CryptoInfo() = default;
  CryptoInfo(CryptoInfo&&) noexcept = default;
  CryptoInfo& operator=(CryptoInfo&&) noexcept = default;
  CryptoInfo(const CryptoInfo&) = delete;
  CryptoInfo& operator=(const CryptoInfo&) = delete;
  ~CryptoInfo() { wipe(); }
  void wipe();
};

// The crypto info for this endpoint's TX (`tx`) or RX direction:
//   key:     TX = our write key, RX = the peer's (server vs client side);
//   AES-GCM, TLS 1.3: salt = IV[0..3], iv = IV[4..11];
//   AES-GCM, TLS 1.2: salt = the 4-byte implicit IV; iv = the first explicit
//            nonce the kernel will use: on TX 8 random bytes (the kernel then
//            counts up; wolfSSL's own nonces also start at a random value, so
//            the two runs of a few records overlap with probability ~2^-60),
//            on RX zero (the kernel reads the nonce from each record);
//   ChaCha20-Poly1305: iv = the whole 12-byte IV, no salt;
//   rec_seq: the next record's sequence number, big-endian.
// Errors: handshake not done (EINVAL), input still buffered or plaintext
// unread (EBUSY, RX only), a cipher kTLS cannot take (ENOTSUP).
Result<CryptoInfo> crypto_info(Session& session, bool tx);

}  // namespace egw::tls

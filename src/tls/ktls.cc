#include "src/tls/ktls.h"

// wolfSSL: options.h must come before any other wolfSSL header.
#include <wolfssl/options.h>

#include <wolfssl/ssl.h>
//
#include <linux/tls.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "src/tls/session.h"

namespace egw::tls {

void CryptoInfo::wipe() {
  if (!bytes.empty()) explicit_bzero(bytes.data(), bytes.size());
}

namespace {

void put_be64(uint8_t out[8], uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
}

// Fills one of the kernel's AES-GCM structs (same layout for 128 and 256).
template <class Info>
void fill_gcm(Info* info, bool tls13, bool tx, const uint8_t* key, const uint8_t* iv, uint64_t seq,
              bool* ok) {
  static_assert(sizeof(info->salt) == 4 && sizeof(info->iv) == 8 && sizeof(info->rec_seq) == 8);
  std::memcpy(info->key, key, sizeof(info->key));
  std::memcpy(info->salt, iv, sizeof(info->salt));
  if (tls13) {
    std::memcpy(info->iv, iv + sizeof(info->salt), sizeof(info->iv));
  } else if (tx) {
    // The first explicit nonce the kernel will send; it then counts up from
    // it. A nonce must never repeat under one key: wolfSSL's own explicit
    // nonces start at a random value too, so the runs cannot meet in practice.
    *ok = ::getrandom(info->iv, sizeof(info->iv), 0) == static_cast<ssize_t>(sizeof(info->iv));
  } else {
    std::memset(info->iv, 0, sizeof(info->iv));  // RX reads the nonce from each record
  }
  put_be64(info->rec_seq, seq);
}

template <class Info>
std::vector<uint8_t> image(const Info& info) {
  const auto* p = reinterpret_cast<const uint8_t*>(&info);
  return std::vector<uint8_t>(p, p + sizeof(info));
}

}  // namespace

Result<CryptoInfo> crypto_info(Session& session, bool tx) {
  WOLFSSL* ssl = session.native();
  if (!ssl || !session.handshake_done() || session.state() != Session::State::kOpen) {
    return fail(EINVAL, "tls: kTLS hand-off needs an open session with its handshake done");
  }
  // Input that wolfSSL has not processed (or plaintext not read) would be
  // lost to the kernel, and could hold a KeyUpdate that changes both keys.
  if (session.buffered_input() != 0 || wolfSSL_pending(ssl) != 0 || wolfSSL_has_pending(ssl)) {
    return fail(EBUSY, "tls: kTLS hand-off with ciphertext or plaintext still buffered");
  }
  if (wolfSSL_want_write(ssl)) {
    return fail(EBUSY, "tls: kTLS hand-off with wolfSSL output pending");
  }

  const int version = wolfSSL_version(ssl);
  bool tls13;
  if (version == TLS1_3_VERSION) {
    tls13 = true;
  } else if (version == TLS1_2_VERSION) {
    tls13 = false;
  } else {
    return fail(ENOTSUP, "tls: kTLS takes TLS 1.2 and 1.3 only");
  }

  const bool server = wolfSSL_GetSide(ssl) == WOLFSSL_SERVER_END;
  const bool ours = tx;  // TX uses our write key, RX the peer's
  const bool server_key = server == ours;
  // The getters point into live state (KeyUpdate rewrites it): copy at once.
  const uint8_t* key = server_key ? wolfSSL_GetServerWriteKey(ssl) : wolfSSL_GetClientWriteKey(ssl);
  const uint8_t* iv = server_key ? wolfSSL_GetServerWriteIV(ssl) : wolfSSL_GetClientWriteIV(ssl);
  const int key_size = wolfSSL_GetKeySize(ssl);
  const int iv_size = wolfSSL_GetIVSize(ssl);
  const int bulk = wolfSSL_GetBulkCipher(ssl);
  if (!key || !iv) return fail(EINVAL, "tls: wolfSSL has no traffic keys for this session");

  // The sequence getters return !*seq, not a status: only a negative value
  // (bad argument) is an error.
  word64 seq = 0;
  const int rc =
      tx ? wolfSSL_GetSequenceNumber(ssl, &seq) : wolfSSL_GetPeerSequenceNumber(ssl, &seq);
  if (rc < 0) return fail(EINVAL, "tls: wolfSSL has no sequence number for this session");

  CryptoInfo out;
  out.version = tls13 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
  bool ok = true;
  if (bulk == wolfssl_aes_gcm && key_size == 16 && iv_size == (tls13 ? 12 : 4)) {
    tls12_crypto_info_aes_gcm_128 info{};
    info.info.version = static_cast<uint16_t>(out.version);
    info.info.cipher_type = TLS_CIPHER_AES_GCM_128;
    fill_gcm(&info, tls13, tx, key, iv, seq, &ok);
    out.cipher_type = TLS_CIPHER_AES_GCM_128;
    out.bytes = image(info);
    explicit_bzero(&info, sizeof(info));
  } else if (bulk == wolfssl_aes_gcm && key_size == 32 && iv_size == (tls13 ? 12 : 4)) {
    tls12_crypto_info_aes_gcm_256 info{};
    info.info.version = static_cast<uint16_t>(out.version);
    info.info.cipher_type = TLS_CIPHER_AES_GCM_256;
    fill_gcm(&info, tls13, tx, key, iv, seq, &ok);
    out.cipher_type = TLS_CIPHER_AES_GCM_256;
    out.bytes = image(info);
    explicit_bzero(&info, sizeof(info));
  } else if (bulk == wolfssl_chacha && key_size == 32 && iv_size == 12) {
    tls12_crypto_info_chacha20_poly1305 info{};
    info.info.version = static_cast<uint16_t>(out.version);
    info.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
    std::memcpy(info.key, key, sizeof(info.key));
    std::memcpy(info.iv, iv, sizeof(info.iv));
    put_be64(info.rec_seq, seq);
    out.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
    out.bytes = image(info);
    explicit_bzero(&info, sizeof(info));
  } else {
    return fail(ENOTSUP, "tls: cipher not supported by kTLS (AES-GCM and ChaCha20-Poly1305 only)");
  }
  if (!ok) return fail(EIO, "tls: getrandom failed for the TLS 1.2 explicit nonce");
  return out;
}

}  // namespace egw::tls

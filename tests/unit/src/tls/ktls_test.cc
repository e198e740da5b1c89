// The kTLS hand-off, verified without kTLS (this kernel has no tls module):
// after a real handshake, the crypto info extracted for one direction must
// decrypt the very next records that direction carries, using nothing but the
// bytes the kernel would be given.
#include "src/tls/ktls.h"

// wolfSSL: options.h must come before any other wolfSSL header.
#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
//
#include <gtest/gtest.h>
#include <linux/tls.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "src/tls/context.h"
#include "src/tls/session.h"
#include "tests/support/tls_certs.h"

namespace egw::tls {
namespace {

using Status = Session::Status;

const test::SharedPki& pki() {
  const test::SharedPki* p = test::shared_pki();
  EXPECT_NE(p, nullptr);
  return *p;
}

// What the kernel would read out of CryptoInfo::bytes.
struct Material {
  int version = 0;
  int cipher = 0;
  std::vector<uint8_t> key;
  std::vector<uint8_t> salt;
  std::vector<uint8_t> iv;
  uint64_t seq = 0;
};

uint64_t be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | p[i];
  return v;
}

template <class Info>
void take(const CryptoInfo& info, Material* m, bool has_salt) {
  Info s;
  ASSERT_EQ(info.bytes.size(), sizeof(s));
  std::memcpy(&s, info.bytes.data(), sizeof(s));
  EXPECT_EQ(s.info.version, info.version);
  EXPECT_EQ(s.info.cipher_type, info.cipher_type);
  m->version = s.info.version;
  m->cipher = s.info.cipher_type;
  m->key.assign(s.key, s.key + sizeof(s.key));
  if (has_salt) m->salt.assign(s.salt, s.salt + sizeof(s.salt));
  m->iv.assign(s.iv, s.iv + sizeof(s.iv));
  m->seq = be64(s.rec_seq);
}

Material parse(const CryptoInfo& info) {
  Material m;
  switch (info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
      take<tls12_crypto_info_aes_gcm_128>(info, &m, true);
      break;
    case TLS_CIPHER_AES_GCM_256:
      take<tls12_crypto_info_aes_gcm_256>(info, &m, true);
      break;
    case TLS_CIPHER_CHACHA20_POLY1305:
      take<tls12_crypto_info_chacha20_poly1305>(info, &m, false);
      break;
    default:
      ADD_FAILURE() << "unexpected cipher type " << info.cipher_type;
  }
  return m;
}

constexpr size_t kTag = 16;

// Decrypts one application-data record (header included) as the kernel
// would, with the record sequence number `seq`. nullopt when it does not
// authenticate.
std::optional<std::string> open_record(const Material& m, const uint8_t* rec, size_t len,
                                       uint64_t seq) {
  if (len < 5 + kTag) return std::nullopt;
  const size_t body_len = (size_t{rec[3]} << 8) | rec[4];
  if (body_len + 5 != len || rec[0] != 23) return std::nullopt;
  const uint8_t* body = rec + 5;
  const bool tls13 = m.version == TLS_1_3_VERSION;
  const bool chacha = m.cipher == TLS_CIPHER_CHACHA20_POLY1305;

  uint8_t nonce[12];
  const uint8_t* ct = body;
  size_t ct_len = body_len - kTag;
  if (chacha || tls13) {
    // nonce = static IV XOR the sequence number (left-padded), RFC 8446 §5.3
    // and RFC 7905 §2.
    if (chacha) {
      std::memcpy(nonce, m.iv.data(), 12);
    } else {
      std::memcpy(nonce, m.salt.data(), 4);
      std::memcpy(nonce + 4, m.iv.data(), 8);
    }
    for (int i = 0; i < 8; ++i)
      nonce[4 + i] ^= static_cast<uint8_t>(seq >> (56 - 8 * i));
  } else {
    // TLS 1.2 AES-GCM: nonce = salt || explicit nonce (RFC 5288 §3).
    if (body_len < 8 + kTag) return std::nullopt;
    std::memcpy(nonce, m.salt.data(), 4);
    std::memcpy(nonce + 4, body, 8);
    ct = body + 8;
    ct_len = body_len - 8 - kTag;
  }
  const uint8_t* tag = body + body_len - kTag;

  // AAD: TLS 1.3 = the record header; TLS 1.2 = seq || type || version ||
  // plaintext length.
  uint8_t aad[13];
  size_t aad_len;
  if (tls13) {
    std::memcpy(aad, rec, 5);
    aad_len = 5;
  } else {
    for (int i = 0; i < 8; ++i)
      aad[i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
    aad[8] = rec[0];
    aad[9] = rec[1];
    aad[10] = rec[2];
    aad[11] = static_cast<uint8_t>(ct_len >> 8);
    aad[12] = static_cast<uint8_t>(ct_len);
    aad_len = 13;
  }

  std::vector<uint8_t> out(ct_len);
  int rc;
  if (chacha) {
    rc = wc_ChaCha20Poly1305_Decrypt(m.key.data(), nonce, aad, static_cast<word32>(aad_len), ct,
                                     static_cast<word32>(ct_len), tag, out.data());
  } else {
    Aes aes;
    wc_AesInit(&aes, nullptr, INVALID_DEVID);
    rc = wc_AesGcmSetKey(&aes, m.key.data(), static_cast<word32>(m.key.size()));
    if (rc == 0) {
      rc = wc_AesGcmDecrypt(&aes, out.data(), ct, static_cast<word32>(ct_len), nonce, 12, tag, kTag,
                            aad, static_cast<word32>(aad_len));
    }
    wc_AesFree(&aes);
  }
  if (rc != 0) return std::nullopt;
  if (tls13) {
    // TLSInnerPlaintext: content || type || zero padding.
    while (!out.empty() && out.back() == 0)
      out.pop_back();
    if (out.empty() || out.back() != 23) return std::nullopt;
    out.pop_back();
  }
  return std::string(out.begin(), out.end());
}

// Splits a byte stream into records.
std::vector<std::vector<uint8_t>> records(const std::vector<uint8_t>& bytes) {
  std::vector<std::vector<uint8_t>> out;
  for (size_t at = 0; at + 5 <= bytes.size();) {
    const size_t len = 5 + ((size_t{bytes[at + 3]} << 8) | bytes[at + 4]);
    if (at + len > bytes.size()) break;
    out.emplace_back(bytes.begin() + static_cast<ptrdiff_t>(at),
                     bytes.begin() + static_cast<ptrdiff_t>(at + len));
    at += len;
  }
  return out;
}

struct Suite {
  const char* name;
  const char* max_version;
  const char* cipher_list;
  int cipher_type;
  int version;
};

class KtlsHandOff : public ::testing::TestWithParam<Suite> {
 protected:
  void SetUp() override {
    const Suite& s = GetParam();
    ServerOptions so;
    so.certificates = {{pki().ecdsa_leaf.cert_file, pki().ecdsa_leaf.key_file}};
    std::string detail;
    auto server = ServerContext::create(so, nullptr, &detail);
    ASSERT_TRUE(server.has_value()) << detail;
    ClientOptions co;
    co.ca_file = pki().ca.cert_file;
    co.max_version = s.max_version;
    co.cipher_list = s.cipher_list;
    auto client = ClientContext::create(co, &detail);
    ASSERT_TRUE(client.has_value()) << detail;
    server_ = *server;
    client_ = *client;
    pair_ = std::make_unique<test::TlsPair>(Session::client(*client_, "default.test"),
                                            Session::server(*server_));
    ASSERT_TRUE(pair_->handshake()) << pair_->client().error() << " / " << pair_->server().error();
    // The client reads what followed the handshake (the TLS 1.3 ticket), so
    // that both sides are idle: the hand-off's precondition.
    pair_->pump();
    ASSERT_EQ(pair_->server().buffered_input(), 0u);
    ASSERT_EQ(pair_->client().buffered_input(), 0u);
  }

  // Extracts `from`'s TX info and `to`'s RX info, then has `from` write two
  // records and checks that both infos decrypt them with consecutive
  // sequence numbers.
  void check_direction(Session& from, Session& to, std::vector<uint8_t>& wire) {
    const Suite& s = GetParam();
    auto tx = crypto_info(from, true);
    ASSERT_TRUE(tx.has_value()) << tx.error().message();
    auto rx = crypto_info(to, false);
    ASSERT_TRUE(rx.has_value()) << rx.error().message();
    EXPECT_EQ(tx->version, s.version);
    EXPECT_EQ(tx->cipher_type, s.cipher_type);
    EXPECT_EQ(rx->version, s.version);
    EXPECT_EQ(rx->cipher_type, s.cipher_type);
    const Material mt = parse(*tx);
    const Material mr = parse(*rx);
    EXPECT_EQ(mt.key, mr.key);
    EXPECT_EQ(mt.salt, mr.salt);
    EXPECT_EQ(mt.seq, mr.seq);
    if (s.version == TLS_1_2_VERSION && s.cipher_type != TLS_CIPHER_CHACHA20_POLY1305) {
      EXPECT_EQ(mr.iv, std::vector<uint8_t>(8, 0));  // RX takes the nonce from the records
    } else {
      EXPECT_EQ(mt.iv, mr.iv);
    }

    const std::string first = "the first record after the hand-off";
    const std::string second(3000, 'k');
    wire.clear();
    ASSERT_EQ(from.write(reinterpret_cast<const uint8_t*>(first.data()), first.size()),
              Status::kOk);
    ASSERT_EQ(from.write(reinterpret_cast<const uint8_t*>(second.data()), second.size()),
              Status::kOk);
    const auto recs = records(wire);
    ASSERT_EQ(recs.size(), 2u);
    for (const Material* m : {&mt, &mr}) {
      EXPECT_EQ(open_record(*m, recs[0].data(), recs[0].size(), m->seq), first);
      EXPECT_EQ(open_record(*m, recs[1].data(), recs[1].size(), m->seq + 1), second);
      // The wrong sequence number does not authenticate.
      EXPECT_EQ(open_record(*m, recs[0].data(), recs[0].size(), m->seq + 1), std::nullopt);
    }
    if (s.version == TLS_1_2_VERSION && s.cipher_type != TLS_CIPHER_CHACHA20_POLY1305) {
      // The kernel's first explicit nonce must not be one wolfSSL used.
      const std::vector<uint8_t> used(recs[1].begin() + 5, recs[1].begin() + 13);
      EXPECT_NE(mt.iv, used);
      RecordProperty("wolfssl_explicit_nonce_seq",
                     std::to_string(be64(used.data())) + " at seq " + std::to_string(mt.seq + 1));
    }
    // The receiving session still accepts the records (nothing was consumed).
    to.feed(wire.data(), wire.size());
    std::string got;
    EXPECT_EQ(to.read([&got](const uint8_t* p, size_t n) {
      got.append(reinterpret_cast<const char*>(p), n);
    }),
              Status::kWantInput);
    EXPECT_EQ(got, first + second);
    wire.clear();
  }

  std::shared_ptr<ServerContext> server_;
  std::shared_ptr<ClientContext> client_;
  std::unique_ptr<test::TlsPair> pair_;
};

TEST_P(KtlsHandOff, ServerTxAndClientRxDecryptTheNextRecords) {
  check_direction(pair_->server(), pair_->client(), pair_->to_client);
}

TEST_P(KtlsHandOff, ClientTxAndServerRxDecryptTheNextRecords) {
  check_direction(pair_->client(), pair_->server(), pair_->to_server);
}

INSTANTIATE_TEST_SUITE_P(
    Suites, KtlsHandOff,
    ::testing::Values(Suite{"Tls13Aes128Gcm", "1.3", "TLS13-AES128-GCM-SHA256",
                            TLS_CIPHER_AES_GCM_128, TLS_1_3_VERSION},
                      Suite{"Tls13Aes256Gcm", "1.3", "TLS13-AES256-GCM-SHA384",
                            TLS_CIPHER_AES_GCM_256, TLS_1_3_VERSION},
                      Suite{"Tls12EcdheEcdsaAes128Gcm", "1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
                            TLS_CIPHER_AES_GCM_128, TLS_1_2_VERSION},
                      Suite{"Tls12EcdheEcdsaAes256Gcm", "1.2", "ECDHE-ECDSA-AES256-GCM-SHA384",
                            TLS_CIPHER_AES_GCM_256, TLS_1_2_VERSION},
                      Suite{"Tls13Chacha20", "1.3", "TLS13-CHACHA20-POLY1305-SHA256",
                            TLS_CIPHER_CHACHA20_POLY1305, TLS_1_3_VERSION},
                      Suite{"Tls12EcdheEcdsaChacha20", "1.2", "ECDHE-ECDSA-CHACHA20-POLY1305",
                            TLS_CIPHER_CHACHA20_POLY1305, TLS_1_2_VERSION}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Ktls, RefusesBeforeTheHandshakeAndWithBufferedInput) {
  ServerOptions so;
  so.certificates = {{pki().ecdsa_leaf.cert_file, pki().ecdsa_leaf.key_file}};
  std::string detail;
  auto server = ServerContext::create(so, nullptr, &detail);
  ASSERT_TRUE(server.has_value()) << detail;
  ClientOptions co;
  co.ca_file = pki().ca.cert_file;
  auto client = ClientContext::create(co, &detail);
  ASSERT_TRUE(client.has_value()) << detail;

  test::TlsPair p(Session::client(**client, "default.test"), Session::server(**server));
  auto early = crypto_info(p.server(), true);
  ASSERT_FALSE(early.has_value());
  EXPECT_EQ(early.error().code, EINVAL);
  ASSERT_TRUE(p.handshake());
  p.pump();

  const uint8_t partial[] = {0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3};
  p.server().feed(partial, sizeof(partial));
  auto busy = crypto_info(p.server(), false);
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().code, EBUSY);
}

TEST(Ktls, CryptoInfoWipesItsKey) {
  CryptoInfo info;
  info.bytes.assign(40, 0xab);
  info.wipe();
  EXPECT_EQ(info.bytes, std::vector<uint8_t>(40, 0));
}

}  // namespace
}  // namespace egw::tls

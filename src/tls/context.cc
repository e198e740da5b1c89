#include "src/tls/context.h"

// wolfSSL: options.h must come before any other wolfSSL header.
#include <wolfssl/options.h>

#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/pem.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/ecc.h>
//
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace egw::tls {

void WolfCtxDeleter::operator()(WOLFSSL_CTX* ctx) const {
  wolfSSL_CTX_free(ctx);
}

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { wolfSSL_Init(); });
}

bool has_aes_ni() {
#if defined(WOLFSSL_AESNI)
  return true;
#else
  return false;
#endif
}

const char* default_cipher_list() {
  return has_aes_ni() ? kAesFirstCipherList : kChachaFirstCipherList;
}

void release_thread_state() {
#ifdef FP_ECC
  wc_ecc_fp_free();
#endif
}

namespace {

enum class Version : uint8_t { k12, k13 };

bool parse_version(std::string_view s, Version* out) {
  if (s == "1.2") {
    *out = Version::k12;
  } else if (s == "1.3") {
    *out = Version::k13;
  } else {
    return false;
  }
  return true;
}

// Sets *detail (when given) and returns the unexpected value.
std::unexpected<Error> config_error(std::string* detail, std::string message) {
  if (detail) *detail = std::move(message);
  return fail(EINVAL, "tls: invalid configuration");
}

std::string wolf_reason(int code) {
  const char* reason = wolfSSL_ERR_reason_error_string(static_cast<unsigned long>(code));
  return fmt::format("{} (wolfSSL error {})", reason ? reason : "unknown error", code);
}

// Empty when `path` can be opened for reading, else why not.
std::string unreadable(const std::string& path) {
  if (path.empty()) return "no file given";
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::strerror(errno);
  std::fclose(f);
  return {};
}

// Picks the wolfSSL method for [min, max]; null with *detail set on a bad range.
WOLFSSL_METHOD* method_for(bool server, std::string_view min_s, std::string_view max_s,
                           std::string* detail, Version* min_out) {
  Version min, max;
  if (!parse_version(min_s, &min)) {
    *detail = fmt::format("min_version \"{}\": expected \"1.2\" or \"1.3\"", min_s);
    return nullptr;
  }
  if (!parse_version(max_s, &max)) {
    *detail = fmt::format("max_version \"{}\": expected \"1.2\" or \"1.3\"", max_s);
    return nullptr;
  }
  if (min == Version::k13 && max == Version::k12) {
    *detail = fmt::format("min_version {} is above max_version {}", min_s, max_s);
    return nullptr;
  }
  *min_out = min;
  if (max == Version::k12)
    return server ? wolfTLSv1_2_server_method() : wolfTLSv1_2_client_method();
  if (min == Version::k13)
    return server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method();
  return server ? wolfSSLv23_server_method() : wolfSSLv23_client_method();
}

bool method_is_tls12_only(std::string_view max_s) {
  return max_s == "1.2";
}

// Creates a context for the version range, with ciphers and groups applied.
WolfCtxPtr new_ctx(bool server, std::string_view min_s, std::string_view max_s,
                   const std::string& cipher_list, const std::string& groups_s,
                   std::string* detail) {
  Version min;
  WOLFSSL_METHOD* method = method_for(server, min_s, max_s, detail, &min);
  if (!method) return nullptr;
  WolfCtxPtr ctx(wolfSSL_CTX_new(method));  // takes ownership of `method`
  if (!ctx) {
    *detail = "wolfSSL_CTX_new failed (out of memory)";
    return nullptr;
  }
  if (min == Version::k12 &&
      wolfSSL_CTX_SetMinVersion(ctx.get(), WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
    *detail = "cannot set the minimum version to TLS 1.2";
    return nullptr;
  }
  const std::string& ciphers =
      cipher_list.empty() ? std::string(default_cipher_list()) : cipher_list;
  if (wolfSSL_CTX_set_cipher_list(ctx.get(), ciphers.c_str()) != WOLFSSL_SUCCESS) {
    *detail = fmt::format("cipher_list \"{}\": wolfSSL accepts none of these suites", ciphers);
    return nullptr;
  }

  // Groups: our own parser, for precise messages.
  const std::string_view list_s = groups_s.empty() ? std::string_view(kDefaultGroups) : groups_s;
  std::string_view list = list_s;
  int ids[8];
  int count = 0;
  while (!list.empty()) {
    const size_t colon = list.find(':');
    const std::string_view name = list.substr(0, colon);
    list = colon == std::string_view::npos ? std::string_view() : list.substr(colon + 1);
    int id;
    if (name == "X25519" || name == "x25519") {
      id = WOLFSSL_ECC_X25519;
    } else if (name == "X448" || name == "x448") {
      id = WOLFSSL_ECC_X448;
    } else if (name == "P-256" || name == "prime256v1" || name == "secp256r1") {
      id = WOLFSSL_ECC_SECP256R1;
    } else if (name == "P-384" || name == "secp384r1") {
      id = WOLFSSL_ECC_SECP384R1;
    } else if (name == "P-521" || name == "secp521r1") {
      id = WOLFSSL_ECC_SECP521R1;
    } else {
      *detail = fmt::format(
          "groups: unknown group \"{}\" (known: X25519, X448, P-256, P-384, P-521)", name);
      return nullptr;
    }
    if (count == static_cast<int>(std::size(ids))) {
      *detail = "groups: too many groups (at most 8)";
      return nullptr;
    }
    ids[count++] = id;
  }
  if (count == 0) {
    *detail = "groups: empty list";
    return nullptr;
  }
  // wolfSSL_CTX_set_groups (key-share order) takes only TLS 1.3-capable
  // contexts; a TLS 1.2-only one gets the supported_groups list instead.
  const bool tls12_only = method_is_tls12_only(max_s);
  bool ok = true;
  if (tls12_only) {
    for (int i = 0; i < count && ok; ++i) {
      ok = wolfSSL_CTX_UseSupportedCurve(ctx.get(), static_cast<word16>(ids[i])) == WOLFSSL_SUCCESS;
    }
  } else {
    ok = wolfSSL_CTX_set_groups(ctx.get(), ids, count) == WOLFSSL_SUCCESS;
  }
  if (!ok) {
    *detail = fmt::format("groups \"{}\": rejected by wolfSSL", list_s);
    return nullptr;
  }
  return ctx;
}

// Whether `key_file`'s private key belongs to the (first) certificate of
// `cert_file`: a signature made with the key must verify with the
// certificate's public key. (wolfSSL_CTX_check_private_key() in this build
// accepts any ECC key of the right curve.)
bool key_matches_certificate(const std::string& cert_file, const std::string& key_file) {
  WOLFSSL_X509* cert = wolfSSL_X509_load_certificate_file(cert_file.c_str(), WOLFSSL_FILETYPE_PEM);
  WOLFSSL_EVP_PKEY* pub = cert ? wolfSSL_X509_get_pubkey(cert) : nullptr;
  WOLFSSL_BIO* bio = wolfSSL_BIO_new_file(key_file.c_str(), "rb");
  WOLFSSL_EVP_PKEY* priv =
      bio ? wolfSSL_PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  bool ok = false;
  if (pub && priv) {
    static constexpr unsigned char kMessage[] = "expressgateway key check";
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    WOLFSSL_EVP_MD_CTX* sign = wolfSSL_EVP_MD_CTX_new();
    WOLFSSL_EVP_MD_CTX* verify = wolfSSL_EVP_MD_CTX_new();
    ok = sign && verify &&
         wolfSSL_EVP_DigestSignInit(sign, nullptr, wolfSSL_EVP_sha256(), nullptr, priv) ==
             WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestSignUpdate(sign, kMessage, sizeof(kMessage)) == WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestSignFinal(sign, sig, &sig_len) == WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestVerifyInit(verify, nullptr, wolfSSL_EVP_sha256(), nullptr, pub) ==
             WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestVerifyUpdate(verify, kMessage, sizeof(kMessage)) == WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestVerifyFinal(verify, sig, sig_len) == WOLFSSL_SUCCESS;
    wolfSSL_EVP_MD_CTX_free(sign);
    wolfSSL_EVP_MD_CTX_free(verify);
  }
  wolfSSL_EVP_PKEY_free(priv);
  if (bio) wolfSSL_BIO_free(bio);
  wolfSSL_EVP_PKEY_free(pub);
  wolfSSL_X509_free(cert);
  return ok;
}

// Loads a certificate chain and its key into `ctx` and checks they match.
bool load_certificate(WOLFSSL_CTX* ctx, const CertificateFiles& files, std::string_view what,
                      std::string* detail) {
  if (auto why = unreadable(files.cert_file); !why.empty()) {
    *detail = fmt::format("{}.cert_file \"{}\": {}", what, files.cert_file, why);
    return false;
  }
  if (auto why = unreadable(files.key_file); !why.empty()) {
    *detail = fmt::format("{}.key_file \"{}\": {}", what, files.key_file, why);
    return false;
  }
  int rc = wolfSSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str());
  if (rc != WOLFSSL_SUCCESS) {
    *detail = fmt::format("{}.cert_file \"{}\": not a usable PEM certificate chain: {}", what,
                          files.cert_file, wolf_reason(rc));
    return false;
  }
  rc = wolfSSL_CTX_use_PrivateKey_file(ctx, files.key_file.c_str(), WOLFSSL_FILETYPE_PEM);
  if (rc != WOLFSSL_SUCCESS) {
    *detail = fmt::format("{}.key_file \"{}\": not a usable PEM private key: {}", what,
                          files.key_file, wolf_reason(rc));
    return false;
  }
  if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS ||
      !key_matches_certificate(files.cert_file, files.key_file)) {
    *detail = fmt::format("{}: key_file \"{}\" does not match the certificate in \"{}\"", what,
                          files.key_file, files.cert_file);
    return false;
  }
  return true;
}

bool load_ca(WOLFSSL_CTX* ctx, const std::string& file, std::string_view what,
             std::string* detail) {
  if (auto why = unreadable(file); !why.empty()) {
    *detail = fmt::format("{} \"{}\": {}", what, file, why);
    return false;
  }
  const int rc = wolfSSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr);
  if (rc != WOLFSSL_SUCCESS) {
    *detail = fmt::format("{} \"{}\": no usable CA certificate: {}", what, file, wolf_reason(rc));
    return false;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The DNS names the leaf (first) certificate of `path` answers for: its SAN
// DNS entries, or its subject CN when it has none.
bool read_names(const std::string& path, std::vector<std::string>* names, std::string* detail) {
  WOLFSSL_X509* x509 = wolfSSL_X509_load_certificate_file(path.c_str(), WOLFSSL_FILETYPE_PEM);
  if (!x509) {
    *detail = fmt::format("cannot parse the leaf certificate of \"{}\"", path);
    return false;
  }
  auto* sans = static_cast<WOLFSSL_GENERAL_NAMES*>(
      wolfSSL_X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    const int n = wolfSSL_sk_GENERAL_NAME_num(sans);
    for (int i = 0; i < n; ++i) {
      WOLFSSL_GENERAL_NAME* gn = wolfSSL_sk_GENERAL_NAME_value(sans, i);
      if (!gn || gn->type != ASN_DNS_TYPE || !gn->d.dNSName) continue;
      const unsigned char* data = wolfSSL_ASN1_STRING_get0_data(gn->d.dNSName);
      const int len = wolfSSL_ASN1_STRING_length(gn->d.dNSName);
      if (data && len > 0) {
        names->push_back(lower({reinterpret_cast<const char*>(data), static_cast<size_t>(len)}));
      }
    }
    wolfSSL_GENERAL_NAMES_free(sans);
  }
  if (names->empty()) {
    char cn[256];
    const int len = wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(x509),
                                                      NID_commonName, cn, sizeof(cn));
    if (len > 0) names->push_back(lower({cn, static_cast<size_t>(len)}));
  }
  wolfSSL_X509_free(x509);
  return true;
}

// Session-ticket callback (wolfSSL's SessionTicketEncCb contract): seal when
// `enc` is 1, else open; `user` is the context's TicketKeys.
int ticket_callback(WOLFSSL*, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                    unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                    unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char* ticket,
                    int in_len, int* out_len, void* user) {
  static_assert(TicketKeys::kNameSize == WOLFSSL_TICKET_NAME_SZ &&
                TicketKeys::kIvSize == WOLFSSL_TICKET_IV_SZ &&
                TicketKeys::kMacSize == WOLFSSL_TICKET_MAC_SZ);
  auto* keys = static_cast<TicketKeys*>(user);
  if (enc) {
    return keys->seal(key_name, iv, mac, ticket, in_len, out_len) ? WOLFSSL_TICKET_RET_OK
                                                                  : WOLFSSL_TICKET_RET_FATAL;
  }
  switch (keys->open(key_name, iv, mac, ticket, in_len, out_len)) {
    case TicketKeys::Opened::kOk:
      return WOLFSSL_TICKET_RET_OK;
    case TicketKeys::Opened::kRenew:
      return WOLFSSL_TICKET_RET_CREATE;
    case TicketKeys::Opened::kReject:
      break;
  }
  return WOLFSSL_TICKET_RET_REJECT;
}

// ALPN (OpenSSL-style select callback): the first protocol of the server's
// list that the client offered. No overlap: no ALPN, and the handshake goes
// on. `in` is the client's wire-format list.
int alpn_select(WOLFSSL*, const unsigned char** out, unsigned char* out_len,
                const unsigned char* in, unsigned int in_len, void* arg) {
  const auto* server = static_cast<const ServerContext*>(arg);
  const std::span<const uint8_t> prefs = server->alpn_wire();
  for (size_t p = 0; p < prefs.size(); p += 1u + prefs[p]) {
    const uint8_t plen = prefs[p];
    for (unsigned int c = 0; c < in_len;) {
      const uint8_t clen = in[c];
      if (c + 1u + clen > in_len) break;  // malformed tail: ignore
      if (clen == plen && std::memcmp(in + c + 1, prefs.data() + p + 1, plen) == 0) {
        *out = in + c + 1;
        *out_len = clen;
        return SSL_TLSEXT_ERR_OK;
      }
      c += 1u + clen;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

bool build_alpn_wire(const std::vector<std::string>& names, std::vector<uint8_t>* wire,
                     std::string* detail) {
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 255) {
      *detail = fmt::format("alpn: protocol name \"{}\" must be 1 to 255 bytes", n);
      return false;
    }
    wire->push_back(static_cast<uint8_t>(n.size()));
    wire->insert(wire->end(), n.begin(), n.end());
  }
  return true;
}

}  // namespace

ServerContext::~ServerContext() = default;

Result<std::shared_ptr<ServerContext>> ServerContext::create(const ServerOptions& options,
                                                             std::shared_ptr<TicketKeys> tickets,
                                                             std::string* error_detail) {
  init_library();
  std::string detail;
  if (options.certificates.empty()) {
    return config_error(error_detail, "certificates: at least one certificate is required");
  }
  if (options.require_client_cert && options.client_ca_file.empty()) {
    return config_error(error_detail, "require_client_cert needs client_ca_file");
  }
  if (options.session_tickets && options.ticket_lifetime_s == 0) {
    return config_error(error_detail,
                        "ticket_lifetime_s must be at least 1 (session_tickets = false issues "
                        "none)");
  }
  std::shared_ptr<ServerContext> self(new ServerContext());
  self->options_ = options;
  self->tickets_ = tickets ? std::move(tickets) : std::make_shared<TicketKeys>();
  if (!build_alpn_wire(options.alpn, &self->alpn_wire_, &detail)) {
    return config_error(error_detail, std::move(detail));
  }

  for (size_t i = 0; i < options.certificates.size(); ++i) {
    const std::string what = fmt::format("certificates[{}]", i);
    WolfCtxPtr ctx = new_ctx(true, options.min_version, options.max_version, options.cipher_list,
                             options.groups, &detail);
    if (!ctx) return config_error(error_detail, std::move(detail));
    if (!load_certificate(ctx.get(), options.certificates[i], what, &detail)) {
      return config_error(error_detail, std::move(detail));
    }
    std::vector<std::string> names;
    if (!read_names(options.certificates[i].cert_file, &names, &detail)) {
      return config_error(error_detail, what + ": " + detail);
    }

    int mode = WOLFSSL_VERIFY_NONE;
    if (!options.client_ca_file.empty()) {
      if (!load_ca(ctx.get(), options.client_ca_file, "client_ca_file", &detail)) {
        return config_error(error_detail, std::move(detail));
      }
      mode = WOLFSSL_VERIFY_PEER;
      if (options.require_client_cert) mode |= WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    wolfSSL_CTX_set_verify(ctx.get(), mode, nullptr);

    // Resumption only through our tickets: wolfSSL's session cache is one
    // process-wide table behind a lock, which workers must not share.
    wolfSSL_CTX_set_session_cache_mode(ctx.get(), WOLFSSL_SESS_CACHE_OFF);
    if (options.session_tickets) {
      wolfSSL_CTX_set_TicketEncCb(ctx.get(), ticket_callback);
      wolfSSL_CTX_set_TicketEncCtx(ctx.get(), self->tickets_.get());
      wolfSSL_CTX_set_TicketHint(ctx.get(), static_cast<int>(options.ticket_lifetime_s));
      wolfSSL_CTX_set_timeout(ctx.get(), options.ticket_lifetime_s);
    } else {
      // The TLS 1.3 switch returns 0 on success, and refuses a TLS 1.2-only
      // context (which never sends a TLS 1.3 ticket anyway).
      const bool off12 = wolfSSL_CTX_NoTicketTLSv12(ctx.get()) == WOLFSSL_SUCCESS;
      const bool off13 =
          method_is_tls12_only(options.max_version) || wolfSSL_CTX_no_ticket_TLSv13(ctx.get()) == 0;
      if (!off12 || !off13) {
        return config_error(error_detail, "session_tickets = false: wolfSSL cannot turn them off");
      }
    }
    if (!self->alpn_wire_.empty()) {
      wolfSSL_CTX_set_alpn_select_cb(ctx.get(), alpn_select, self.get());
    }

    // SNI index: first certificate wins for a name.
    for (const std::string& name : names) {
      if (name.size() > 2 && name[0] == '*' && name[1] == '.') {
        self->wildcard_.emplace(name.substr(2), i);
      } else {
        self->exact_.emplace(name, i);
      }
    }
    self->names_.push_back(std::move(names));
    self->ctxs_.push_back(std::move(ctx));
  }
  return self;
}

size_t ServerContext::select(std::string_view server_name) const {
  // DNS names are at most 253 bytes; anything longer matches nothing.
  char buf[256];
  if (server_name.empty() || server_name.size() >= sizeof(buf)) return 0;
  for (size_t i = 0; i < server_name.size(); ++i) {
    const char c = server_name[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string_view name(buf, server_name.size());
  if (name.back() == '.') name.remove_suffix(1);  // absolute form "host.example."
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  // "*.example" matches "x.example" (exactly one label before the suffix).
  const size_t dot = name.find('.');
  if (dot != std::string_view::npos && dot > 0) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  }
  return 0;
}

ClientContext::~ClientContext() = default;

Result<std::shared_ptr<ClientContext>> ClientContext::create(const ClientOptions& options,
                                                             std::string* error_detail) {
  init_library();
  std::string detail;
  std::shared_ptr<ClientContext> self(new ClientContext());
  self->options_ = options;
  for (const std::string& n : options.alpn) {
    if (n.empty() || n.size() > 255 || n.find(',') != std::string::npos) {
      return config_error(error_detail,
                          fmt::format("alpn: protocol name \"{}\" must be 1 to 255 bytes without "
                                      "a comma",
                                      n));
    }
    if (!self->alpn_list_.empty()) self->alpn_list_ += ',';
    self->alpn_list_ += n;
  }
  self->ctx_ = new_ctx(false, options.min_version, options.max_version, options.cipher_list,
                       options.groups, &detail);
  if (!self->ctx_) return config_error(error_detail, std::move(detail));
  WOLFSSL_CTX* ctx = self->ctx_.get();
  if (options.verify) {
    if (options.ca_file.empty()) {
      if (wolfSSL_CTX_load_system_CA_certs(ctx) != WOLFSSL_SUCCESS) {
        return config_error(error_detail, "verify without ca_file: no system CA store found");
      }
    } else if (!load_ca(ctx, options.ca_file, "ca_file", &detail)) {
      return config_error(error_detail, std::move(detail));
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, nullptr);
  } else {
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, nullptr);
  }
  if (!options.certificate.cert_file.empty() &&
      !load_certificate(ctx, options.certificate, "certificate", &detail)) {
    return config_error(error_detail, std::move(detail));
  }
  // Sessions are saved and offered explicitly (Session::save / resume).
  wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
  wolfSSL_CTX_UseSessionTicket(ctx);
  return self;
}

}  // namespace egw::tls

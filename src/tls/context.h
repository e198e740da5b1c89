// TLS contexts: the configuration shared by every Session of one listener
// (ServerContext) or of one upstream cluster (ClientContext).
//
// A context is built once at start-up or reload (create(): loads and checks
// every file, so configuration errors surface there with a precise message)
// and is then shared read-only by every worker: Sessions hold a shared_ptr to
// their context, so a context outlives the last Session made from it even
// after a reload dropped it.
//
// No wolfSSL header leaks from here: WOLFSSL_CTX is forward-declared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "egw/result.h"
#include "src/tls/ticket_keys.h"

struct WOLFSSL_CTX;

namespace egw::tls {

struct CertificateFiles {
  std::string cert_file;  // PEM; may hold the chain (leaf first)
  std::string key_file;   // PEM (PKCS#8 or traditional)
};

struct ServerOptions {
  // [0] is the default when no SNI matches. Each certificate answers for the
  // SAN DNS names it holds (its subject CN only when it has none).
  std::vector<CertificateFiles> certificates;
  std::string min_version = "1.2";  // "1.2" | "1.3"
  std::string max_version = "1.3";
  // wolfSSL/OpenSSL cipher-list syntax. Empty = default_cipher_list().
  std::string cipher_list;
  // Colon-separated: X25519, X448, P-256, P-384, P-521 (aliases prime256v1,
  // secp256r1, secp384r1, secp521r1). Empty = "X25519:P-256:P-384".
  std::string groups;
  // Protocols offered, in the server's order of preference ({"h2",
  // "http/1.1"}). The server picks the first of these that the client also
  // offers; with no overlap the handshake goes on without ALPN.
  std::vector<std::string> alpn;
  // mTLS: client certificates are verified against this CA file (PEM).
  std::string client_ca_file;
  // Fail the handshake when the client sends no certificate (needs
  // client_ca_file).
  bool require_client_cert = false;
  // Resumption: false issues no session tickets (TLS 1.2 and 1.3) and opens
  // none, so every handshake is a full one. There is no session-ID cache
  // either way.
  bool session_tickets = true;
  uint32_t ticket_lifetime_s = 7200;      // announced in each ticket; at least 1 with tickets on
  uint32_t handshake_timeout_ms = 10000;  // enforced by the caller; carried here for it
};

// TLS 1.3 suites, then ECDHE with AEAD only for TLS 1.2, in the server's
// order of preference: AES-GCM first where wolfCrypt has AES-NI, else
// ChaCha20-Poly1305 first (software AES-GCM is ~2.3x slower than
// software ChaCha20-Poly1305 in wolfCrypt: benchmarks/src/tls_bench.cc).
inline constexpr const char* kAesFirstCipherList =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kChachaFirstCipherList =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
// The default for this build of wolfSSL (one of the two above).
const char* default_cipher_list();
// Whether this build of wolfCrypt uses AES-NI.
bool has_aes_ni();
inline constexpr const char* kDefaultGroups = "X25519:P-256:P-384";

// Frees a WOLFSSL_CTX (wolfSSL_CTX_free).
struct WolfCtxDeleter {
  void operator()(WOLFSSL_CTX* ctx) const;
};
using WolfCtxPtr = std::unique_ptr<WOLFSSL_CTX, WolfCtxDeleter>;

// One WOLFSSL_CTX per certificate; SNI picks which one a Session is made from
// (see Session: the ClientHello is read before the WOLFSSL object exists, so
// no context switch happens mid-handshake).
class ServerContext : public std::enable_shared_from_this<ServerContext> {
 public:
  // Loads every certificate and key (checking that they match), the client
  // CA, ciphers, groups and ALPN. `tickets` may be shared by any number of
  // contexts and workers; null makes a private TicketKeys (tickets then only
  // resume on this context). On failure, *error_detail (if given) says which
  // file or option and what wolfSSL said.
  static Result<std::shared_ptr<ServerContext>> create(const ServerOptions& options,
                                                       std::shared_ptr<TicketKeys> tickets,
                                                       std::string* error_detail);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // The certificate index for a requested server name: a certificate with an
  // exact SAN match, else one whose "*.suffix" SAN matches a name with
  // exactly one label before ".suffix", else 0. Earlier certificates win
  // ties. Case-insensitive; never allocates.
  size_t select(std::string_view server_name) const;

  size_t certificate_count() const { return ctxs_.size(); }
  WOLFSSL_CTX* native(size_t index) const { return ctxs_[index].get(); }
  // The DNS names certificate `index` answers for (lower case, as read).
  const std::vector<std::string>& names(size_t index) const { return names_[index]; }
  const ServerOptions& options() const { return options_; }
  TicketKeys& ticket_keys() const { return *tickets_; }
  // The ALPN preference list in wire format (length-prefixed names).
  std::span<const uint8_t> alpn_wire() const { return alpn_wire_; }

 private:
  ServerContext() = default;

  // Transparent hashing so that lookups take a string_view.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using NameMap = std::unordered_map<std::string, size_t, NameHash, std::equal_to<>>;

  ServerOptions options_;
  std::shared_ptr<TicketKeys> tickets_;
  std::vector<WolfCtxPtr> ctxs_;
  std::vector<std::vector<std::string>> names_;
  NameMap exact_;     // "host.example" -> certificate index
  NameMap wildcard_;  // "example" for "*.example" -> certificate index
  std::vector<uint8_t> alpn_wire_;
};

struct ClientOptions {
  // CA file (PEM) to verify the server against; empty = the system store.
  std::string ca_file;
  // Check the chain, and the name against the SNI when one is set.
  bool verify = true;
  std::string sni;                // default SNI (Session::client may override)
  std::vector<std::string> alpn;  // offered, in preference order
  std::string min_version = "1.2";
  std::string max_version = "1.3";
  std::string cipher_list;  // empty = default_cipher_list()
  std::string groups;       // empty = kDefaultGroups; the first gets the key share
  // Optional client certificate (mTLS towards the upstream).
  CertificateFiles certificate;
};

class ClientContext : public std::enable_shared_from_this<ClientContext> {
 public:
  static Result<std::shared_ptr<ClientContext>> create(const ClientOptions& options,
                                                       std::string* error_detail);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  WOLFSSL_CTX* native() const { return ctx_.get(); }
  const ClientOptions& options() const { return options_; }
  // The ALPN list in wolfSSL_UseALPN's format ("h2,http/1.1"); empty = none.
  const std::string& alpn_list() const { return alpn_list_; }

 private:
  ClientContext() = default;

  ClientOptions options_;
  WolfCtxPtr ctx_;
  std::string alpn_list_;
};

// Initialises wolfSSL once per process (idempotent, thread-safe). create()
// calls it; nothing else needs to.
void init_library();

// Frees what wolfSSL keeps per thread (this build's fixed-point ECC cache:
// a few MB once a thread has done handshakes). Every thread that ran TLS
// handshakes calls it before it exits, else that memory leaks.
void release_thread_state();

}  // namespace egw::tls

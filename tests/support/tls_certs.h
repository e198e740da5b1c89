// Test PKI: keys and certificates generated at test time (never committed),
// with the `openssl` command-line tool, into a private temporary directory
// that is removed when the TestPki is destroyed.
//
//   TestPki pki;                                   // makes the directory
//   auto ca = pki.make_ca("ca", "Test CA", KeyType::kEcdsaP256);
//   auto leaf = pki.make_leaf("web", "web.test", {"web.test", "*.web.test"},
//                             KeyType::kRsa2048, *ca);
//   // leaf->cert_file, leaf->key_file: PEM paths for ServerOptions.
//
// Every call returns nullopt (after recording a GoogleTest failure with the
// command that failed) when generation fails, so tests can ASSERT on it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/tls/session.h"

namespace egw::test {

enum class KeyType { kEcdsaP256, kRsa2048 };

// PEM file paths inside the TestPki directory.
struct PemFiles {
  std::string cert_file;
  std::string key_file;
};

class TestPki {
 public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  // False when the temporary directory could not be made.
  bool ok() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }

  // A self-signed CA (basicConstraints CA:TRUE, keyCertSign). `tag` names the
  // files (<tag>.pem, <tag>.key) and must be unique within this TestPki.
  std::optional<PemFiles> make_ca(std::string_view tag, std::string_view common_name, KeyType key);

  // A server/client leaf certificate signed by `ca`, with subject CN
  // `common_name` and the given SAN DNS names (wildcards such as "*.x.test"
  // are written as given; empty = no SAN extension). EKU serverAuth and
  // clientAuth. With `append_ca`, the cert file holds the chain leaf + CA.
  std::optional<PemFiles> make_leaf(std::string_view tag, std::string_view common_name,
                                    const std::vector<std::string>& dns_names, KeyType key,
                                    const PemFiles& ca, bool append_ca = false);

 private:
  bool make_key(const std::string& path, KeyType key);
  bool run(const std::string& command);
  std::string path(std::string_view tag, std::string_view ext) const;

  std::string dir_;
  unsigned serial_ = 1000;
};

// One process-wide PKI for the TLS unit tests, made on first use (keys take a
// moment, RSA especially) and removed at exit.
struct SharedPki {
  PemFiles ca;            // ECDSA P-256 root that signs everything below
  PemFiles other_ca;      // an unrelated root (for "wrong CA" cases)
  PemFiles ecdsa_leaf;    // CN=default.test, SAN default.test
  PemFiles rsa_leaf;      // CN=rsa.test, SAN rsa.test, RSA 2048
  PemFiles wildcard;      // CN=wild.test, SAN *.wild.test (ECDSA)
  PemFiles multi;         // CN=multi.test, SANs a.multi.test, b.multi.test (ECDSA)
  PemFiles client;        // CN=client.test, signed by `ca`
  PemFiles rogue_client;  // CN=rogue.test, signed by `other_ca`
  PemFiles chain_leaf;    // CN=chain.test, SAN chain.test; cert file = leaf + ca
};
// nullptr (with a test failure recorded) when generation failed.
const SharedPki* shared_pki();

// A client Session and a server Session wired back to back in memory: each
// side's output queues up until pump() delivers it to the other side.
// Not movable (the output callbacks point at the queues).
class TlsPair {
 public:
  using Status = tls::Session::Status;

  TlsPair(std::unique_ptr<tls::Session> client, std::unique_ptr<tls::Session> server);
  TlsPair(const TlsPair&) = delete;
  TlsPair& operator=(const TlsPair&) = delete;

  // Runs both handshakes until both report kOk or one fails (then the other
  // side is given the alert too). True when both completed.
  bool handshake(int max_rounds = 32);
  // Delivers the queued ciphertext both ways and reads on both sides (into
  // client_rx / server_rx) until nothing moves.
  void pump();

  tls::Session& client() { return *client_; }
  tls::Session& server() { return *server_; }
  Status client_status() const { return client_status_; }
  Status server_status() const { return server_status_; }

  std::vector<uint8_t> to_server;  // client output not yet delivered
  std::vector<uint8_t> to_client;  // server output not yet delivered
  std::string client_rx;           // plaintext the client read
  std::string server_rx;           // plaintext the server read

 private:
  std::unique_ptr<tls::Session> client_;
  std::unique_ptr<tls::Session> server_;
  Status client_status_ = Status::kWantInput;
  Status server_status_ = Status::kWantInput;
};

}  // namespace egw::test

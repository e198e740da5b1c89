#include "tests/support/tls_certs.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace egw::test {

namespace {

// Single-quotes `s` for /bin/sh. Test inputs never hold a quote; one that does
// is refused rather than escaped.
std::string quote(std::string_view s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

bool quotable(std::string_view s) {
  return s.find('\'') == std::string_view::npos;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TestPki::TestPki() {
  char tmpl[] = "/tmp/egw-tls-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
}

TestPki::~TestPki() {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string TestPki::path(std::string_view tag, std::string_view ext) const {
  std::string p = dir_;
  p += '/';
  p += tag;
  p += ext;
  return p;
}

bool TestPki::run(const std::string& command) {
  const std::string log = dir_ + "/openssl.log";
  const std::string full = command + " >" + quote(log) + " 2>&1";
  const int rc = std::system(full.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "command failed (" << rc << "): " << command << "\n" << read_all(log);
    return false;
  }
  return true;
}

bool TestPki::make_key(const std::string& key_path, KeyType key) {
  std::string cmd = "openssl genpkey -out " + quote(key_path);
  if (key == KeyType::kEcdsaP256) {
    cmd += " -algorithm EC -pkeyopt ec_paramgen_curve:P-256";
  } else {
    cmd += " -algorithm RSA -pkeyopt rsa_keygen_bits:2048";
  }
  return run(cmd);
}

std::optional<PemFiles> TestPki::make_ca(std::string_view tag, std::string_view common_name,
                                         KeyType key) {
  if (!ok() || !quotable(tag) || !quotable(common_name)) return std::nullopt;
  PemFiles f{path(tag, ".pem"), path(tag, ".key")};
  if (!make_key(f.key_file, key)) return std::nullopt;
  std::string cmd = "openssl req -x509 -new -sha256 -days 3 -key " + quote(f.key_file) + " -subj " +
                    quote("/CN=" + std::string(common_name)) + " -set_serial " +
                    std::to_string(serial_++) +
                    " -addext 'basicConstraints=critical,CA:TRUE'"
                    " -addext 'keyUsage=critical,keyCertSign,cRLSign'"
                    " -addext 'subjectKeyIdentifier=hash' -out " +
                    quote(f.cert_file);
  if (!run(cmd)) return std::nullopt;
  return f;
}

std::optional<PemFiles> TestPki::make_leaf(std::string_view tag, std::string_view common_name,
                                           const std::vector<std::string>& dns_names, KeyType key,
                                           const PemFiles& ca, bool append_ca) {
  if (!ok() || !quotable(tag) || !quotable(common_name)) return std::nullopt;
  PemFiles f{path(tag, ".pem"), path(tag, ".key")};
  const std::string csr = path(tag, ".csr");
  const std::string ext = path(tag, ".ext");
  if (!make_key(f.key_file, key)) return std::nullopt;

  {
    std::ofstream out(ext);
    out << "basicConstraints=critical,CA:FALSE\n"
        << "keyUsage=critical,digitalSignature,keyEncipherment\n"
        << "extendedKeyUsage=serverAuth,clientAuth\n"
        << "subjectKeyIdentifier=hash\n"
        << "authorityKeyIdentifier=keyid\n";
    if (!dns_names.empty()) {
      out << "subjectAltName=";
      for (size_t i = 0; i < dns_names.size(); ++i) {
        if (!quotable(dns_names[i])) return std::nullopt;
        out << (i ? ",DNS:" : "DNS:") << dns_names[i];
      }
      out << "\n";
    }
    if (!out) {
      ADD_FAILURE() << "cannot write " << ext;
      return std::nullopt;
    }
  }
  if (!run("openssl req -new -sha256 -key " + quote(f.key_file) + " -subj " +
           quote("/CN=" + std::string(common_name)) + " -out " + quote(csr))) {
    return std::nullopt;
  }
  const std::string leaf_only = append_ca ? path(tag, ".leaf.pem") : f.cert_file;
  if (!run("openssl x509 -req -sha256 -days 3 -in " + quote(csr) + " -CA " + quote(ca.cert_file) +
           " -CAkey " + quote(ca.key_file) + " -set_serial " + std::to_string(serial_++) +
           " -extfile " + quote(ext) + " -out " + quote(leaf_only))) {
    return std::nullopt;
  }
  if (append_ca) {
    std::ofstream out(f.cert_file);
    out << read_all(leaf_only) << read_all(ca.cert_file);
    if (!out) return std::nullopt;
  }
  return f;
}

const SharedPki* shared_pki() {
  // Built once; the TestPki (and its directory) lives until exit.
  static TestPki* pki = new TestPki();
  static std::unique_ptr<SharedPki> shared = []() -> std::unique_ptr<SharedPki> {
    auto s = std::make_unique<SharedPki>();
    auto ca = pki->make_ca("ca", "EGW Test CA", KeyType::kEcdsaP256);
    auto other = pki->make_ca("other-ca", "EGW Other CA", KeyType::kEcdsaP256);
    if (!ca || !other) return nullptr;
    s->ca = *ca;
    s->other_ca = *other;
    struct Leaf {
      PemFiles* out;
      const char* tag;
      const char* cn;
      std::vector<std::string> sans;
      KeyType key;
      const PemFiles* ca;
      bool chain;
    };
    const Leaf leaves[] = {
        {&s->ecdsa_leaf,
         "default",
         "default.test",
         {"default.test"},
         KeyType::kEcdsaP256,
         &*ca,
         false},
        {&s->rsa_leaf, "rsa", "rsa.test", {"rsa.test"}, KeyType::kRsa2048, &*ca, false},
        {&s->wildcard, "wild", "wild.test", {"*.wild.test"}, KeyType::kEcdsaP256, &*ca, false},
        {&s->multi,
         "multi",
         "multi.test",
         {"a.multi.test", "b.multi.test"},
         KeyType::kEcdsaP256,
         &*ca,
         false},
        {&s->client, "client", "client.test", {}, KeyType::kEcdsaP256, &*ca, false},
        {&s->rogue_client, "rogue", "rogue.test", {}, KeyType::kEcdsaP256, &*other, false},
        {&s->chain_leaf, "chain", "chain.test", {"chain.test"}, KeyType::kEcdsaP256, &*ca, true},
    };
    for (const Leaf& l : leaves) {
      auto f = pki->make_leaf(l.tag, l.cn, l.sans, l.key, *l.ca, l.chain);
      if (!f) return nullptr;
      *l.out = *f;
    }
    return s;
  }();
  static const bool cleanup_registered = [] {
    std::atexit([] { delete pki; });
    return true;
  }();
  (void)cleanup_registered;
  if (!shared) ADD_FAILURE() << "test PKI generation failed";
  return shared.get();
}

TlsPair::TlsPair(std::unique_ptr<tls::Session> client, std::unique_ptr<tls::Session> server)
    : client_(std::move(client)), server_(std::move(server)) {
  client_->set_output(
      [this](const uint8_t* p, size_t n) { to_server.insert(to_server.end(), p, p + n); });
  server_->set_output(
      [this](const uint8_t* p, size_t n) { to_client.insert(to_client.end(), p, p + n); });
}

bool TlsPair::handshake(int max_rounds) {
  for (int i = 0; i < max_rounds; ++i) {
    if (client_status_ != Status::kOk && client_status_ != Status::kError) {
      client_status_ = client_->handshake();
    }
    if (!to_server.empty()) {
      server_->feed(to_server.data(), to_server.size());
      to_server.clear();
    }
    if (server_status_ != Status::kOk && server_status_ != Status::kError) {
      server_status_ = server_->handshake();
    }
    if (!to_client.empty()) {
      client_->feed(to_client.data(), to_client.size());
      to_client.clear();
      // A client that finished may be handed an alert: let it see it.
      if (client_status_ == Status::kOk) {
        client_status_ = client_->read([this](const uint8_t* p, size_t n) {
          client_rx.append(reinterpret_cast<const char*>(p), n);
        });
        if (client_status_ == Status::kWantInput) client_status_ = Status::kOk;
      }
    }
    const bool done = client_status_ == Status::kOk && server_status_ == Status::kOk;
    const bool failed = client_status_ == Status::kError || server_status_ == Status::kError;
    if ((done || failed) && to_server.empty() && to_client.empty()) return done;
  }
  return false;
}

void TlsPair::pump() {
  for (int i = 0; i < 64; ++i) {
    const bool moved = !to_server.empty() || !to_client.empty();
    if (!to_server.empty()) {
      server_->feed(to_server.data(), to_server.size());
      to_server.clear();
    }
    server_status_ = server_->read([this](const uint8_t* p, size_t n) {
      server_rx.append(reinterpret_cast<const char*>(p), n);
    });
    if (!to_client.empty()) {
      client_->feed(to_client.data(), to_client.size());
      to_client.clear();
    }
    client_status_ = client_->read([this](const uint8_t* p, size_t n) {
      client_rx.append(reinterpret_cast<const char*>(p), n);
    });
    if (!moved && to_server.empty() && to_client.empty()) return;
  }
}

}  // namespace egw::test

#include "src/tls/context.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tests/support/tls_certs.h"

namespace egw::tls {
namespace {

const test::SharedPki& pki() {
  const test::SharedPki* p = test::shared_pki();
  EXPECT_NE(p, nullptr);
  return *p;
}

CertificateFiles files(const test::PemFiles& f) {
  return {f.cert_file, f.key_file};
}

// Expects create() to fail with a detail that contains every one of `parts`.
void expect_server_error(const ServerOptions& o, std::initializer_list<std::string> parts) {
  std::string detail;
  auto r = ServerContext::create(o, nullptr, &detail);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EINVAL);
  for (const std::string& part : parts) {
    EXPECT_NE(detail.find(part), std::string::npos)
        << "detail: " << detail << "\nmissing: " << part;
  }
}

TEST(TlsServerContext, ReadsSanNamesAndSelects) {
  ServerOptions o;
  o.certificates = {files(pki().ecdsa_leaf), files(pki().rsa_leaf), files(pki().wildcard),
                    files(pki().multi)};
  std::string detail;
  auto r = ServerContext::create(o, nullptr, &detail);
  ASSERT_TRUE(r.has_value()) << detail;
  const ServerContext& ctx = **r;
  ASSERT_EQ(ctx.certificate_count(), 4u);
  EXPECT_EQ(ctx.names(0), std::vector<std::string>{"default.test"});
  EXPECT_EQ(ctx.names(2), std::vector<std::string>{"*.wild.test"});
  auto multi = ctx.names(3);
  std::sort(multi.begin(), multi.end());
  EXPECT_EQ(multi, (std::vector<std::string>{"a.multi.test", "b.multi.test"}));

  EXPECT_EQ(ctx.select("default.test"), 0u);
  EXPECT_EQ(ctx.select("rsa.test"), 1u);
  EXPECT_EQ(ctx.select("RSA.TEST"), 1u);
  EXPECT_EQ(ctx.select("rsa.test."), 1u);
  EXPECT_EQ(ctx.select("www.wild.test"), 2u);
  EXPECT_EQ(ctx.select("wild.test"), 0u);
  EXPECT_EQ(ctx.select("a.b.wild.test"), 0u);
  EXPECT_EQ(ctx.select(".wild.test"), 0u);
  EXPECT_EQ(ctx.select("b.multi.test"), 3u);
  EXPECT_EQ(ctx.select("nothing.test"), 0u);
  EXPECT_EQ(ctx.select(""), 0u);
  EXPECT_EQ(ctx.select(std::string(300, 'a')), 0u);
}

TEST(TlsServerContext, ExactNameBeatsWildcard) {
  ServerOptions o;
  o.certificates = {files(pki().ecdsa_leaf), files(pki().wildcard), files(pki().rsa_leaf)};
  std::string detail;
  auto r = ServerContext::create(o, nullptr, &detail);
  ASSERT_TRUE(r.has_value()) << detail;
  EXPECT_EQ((*r)->select("rsa.test"), 2u);
  EXPECT_EQ((*r)->select("x.wild.test"), 1u);
}

TEST(TlsServerContext, ConfigErrorsNameTheFileAndTheProblem) {
  ServerOptions none;
  expect_server_error(none, {"at least one certificate"});

  ServerOptions missing;
  missing.certificates = {{"/nonexistent/cert.pem", pki().ecdsa_leaf.key_file}};
  expect_server_error(missing,
                      {"certificates[0].cert_file", "/nonexistent/cert.pem", "No such file"});

  ServerOptions mismatch;
  mismatch.certificates = {files(pki().ecdsa_leaf),
                           {pki().rsa_leaf.cert_file, pki().ecdsa_leaf.key_file}};
  expect_server_error(mismatch, {"certificates[1]", "does not match", pki().rsa_leaf.cert_file});

  ServerOptions not_pem;
  not_pem.certificates = {{pki().ecdsa_leaf.key_file, pki().ecdsa_leaf.key_file}};
  expect_server_error(not_pem, {"certificates[0].cert_file", "wolfSSL"});

  ServerOptions version;
  version.certificates = {files(pki().ecdsa_leaf)};
  version.min_version = "1.1";
  expect_server_error(version, {"min_version", "1.1"});
  version.min_version = "1.3";
  version.max_version = "1.2";
  expect_server_error(version, {"above max_version"});

  ServerOptions groups;
  groups.certificates = {files(pki().ecdsa_leaf)};
  groups.groups = "X25519:P-999";
  expect_server_error(groups, {"unknown group", "P-999"});

  ServerOptions ciphers;
  ciphers.certificates = {files(pki().ecdsa_leaf)};
  ciphers.cipher_list = "NOT-A-CIPHER";
  expect_server_error(ciphers, {"cipher_list", "NOT-A-CIPHER"});

  ServerOptions mtls;
  mtls.certificates = {files(pki().ecdsa_leaf)};
  mtls.require_client_cert = true;
  expect_server_error(mtls, {"client_ca_file"});
  mtls.client_ca_file = "/nonexistent/ca.pem";
  expect_server_error(mtls, {"client_ca_file", "/nonexistent/ca.pem"});

  ServerOptions alpn;
  alpn.certificates = {files(pki().ecdsa_leaf)};
  alpn.alpn = {"h2", ""};
  expect_server_error(alpn, {"alpn"});

  ServerOptions lifetime;
  lifetime.certificates = {files(pki().ecdsa_leaf)};
  lifetime.ticket_lifetime_s = 0;
  expect_server_error(lifetime, {"ticket_lifetime_s", "session_tickets = false"});
  lifetime.session_tickets = false;  // then the lifetime does not matter
  std::string detail;
  EXPECT_TRUE(ServerContext::create(lifetime, nullptr, &detail).has_value()) << detail;
  lifetime.max_version = "1.2";
  EXPECT_TRUE(ServerContext::create(lifetime, nullptr, &detail).has_value()) << detail;
  lifetime.min_version = lifetime.max_version = "1.3";
  EXPECT_TRUE(ServerContext::create(lifetime, nullptr, &detail).has_value()) << detail;
}

TEST(TlsClientContext, ConfigErrors) {
  std::string detail;
  ClientOptions o;
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(ClientContext::create(o, &detail).has_value());
  EXPECT_NE(detail.find("/nonexistent/ca.pem"), std::string::npos) << detail;

  ClientOptions v;
  v.ca_file = pki().ca.cert_file;
  v.min_version = "tls1.2";
  EXPECT_FALSE(ClientContext::create(v, &detail).has_value());
  EXPECT_NE(detail.find("min_version"), std::string::npos) << detail;

  ClientOptions ok;
  ok.ca_file = pki().ca.cert_file;
  ok.alpn = {"h2", "http/1.1"};
  auto r = ClientContext::create(ok, &detail);
  ASSERT_TRUE(r.has_value()) << detail;
  EXPECT_EQ((*r)->alpn_list(), "h2,http/1.1");
}

}  // namespace
}  // namespace egw::tls

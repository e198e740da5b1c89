// Access log formats: the JSON line (every key, escapes), the combined
// format, templates and their errors, and lines that do not fit.
#include "src/accesslog/format.h"

#include <gtest/gtest.h>

#include <string>

namespace egw::accesslog {
namespace {

Record sample(const SocketAddress& client) {
  Record r;
  r.time_ns = 1796320907123456789ull;  // 2026-12-03T18:01:47.123Z
  r.client = &client;
  r.listener = "web";
  r.protocol = "h1";
  r.version = "HTTP/1.1";
  r.method = "GET";
  r.authority = "example.com";
  r.path = "/a?b=1";
  r.status = 200;
  r.bytes_in = 5;
  r.bytes_out = 1234;
  r.cluster = "app";
  r.endpoint = "10.0.0.1:80";
  r.retries = 1;
  r.termination = "done";
  r.user_agent = "curl/7.88";
  r.phase_us = {10, -1, -1, 300, 4000, 5000};
  return r;
}

std::string line(const Format& f, const Record& r) {
  char buf[4096];
  const size_t n = f.append(r, buf, sizeof(buf));
  EXPECT_GT(n, 0u);
  return std::string(buf, n);
}

Format make(std::string_view spec) {
  Format f;
  std::string err;
  EXPECT_TRUE(Format::compile(spec, f, err)) << err;
  return f;
}

std::string compile_error(std::string_view spec) {
  Format f;
  std::string err;
  EXPECT_FALSE(Format::compile(spec, f, err)) << spec;
  return err;
}

TEST(AccessLogFormat, JsonHasEveryKeyInOrder) {
  const auto client = *SocketAddress::parse("192.0.2.7:5555");
  const std::string l = line(make("json"), sample(client));
  EXPECT_EQ(l,
            "{\"time\":\"2026-12-03T18:01:47.123Z\",\"client\":\"192.0.2.7\",\"client_port\":5555,"
            "\"listener\":\"web\",\"protocol\":\"h1\",\"version\":\"HTTP/1.1\",\"method\":\"GET\","
            "\"authority\":\"example.com\",\"path\":\"/a?b=1\",\"status\":200,\"bytes_in\":5,"
            "\"bytes_out\":1234,\"cluster\":\"app\",\"endpoint\":\"10.0.0.1:80\",\"retries\":1,"
            "\"termination\":\"done\",\"tls_version\":null,\"tls_cipher\":null,\"sni\":null,"
            "\"user_agent\":\"curl/7.88\",\"referer\":null,\"accept_to_headers_us\":10,"
            "\"tls_handshake_us\":null,\"queue_wait_us\":null,\"connect_us\":300,"
            "\"ttfb_us\":4000,\"total_us\":5000}\n");
}

TEST(AccessLogFormat, JsonEscapesWhatClientsSend) {
  const auto client = *SocketAddress::parse("[2001:db8::1]:443");
  Record r = sample(client);
  r.user_agent = "a\"b\\c\x01\xc3\xa9\n";
  r.status = 0;
  const std::string l = line(make("json"), r);
  EXPECT_NE(l.find("\"client\":\"2001:db8::1\",\"client_port\":443"), std::string::npos) << l;
  EXPECT_NE(l.find("\"user_agent\":\"a\\\"b\\\\c\\u0001\\u00c3\\u00a9\\n\""), std::string::npos)
      << l;
  EXPECT_NE(l.find("\"status\":null"), std::string::npos);
  EXPECT_EQ(l.find('\n'), l.size() - 1) << "one line, whatever the client sent";
}

TEST(AccessLogFormat, Combined) {
  const auto client = *SocketAddress::parse("192.0.2.7:5555");
  Record r = sample(client);
  r.referer = "http://x/\"y\"";
  EXPECT_EQ(line(make("combined"), r),
            "192.0.2.7 - - [03/Dec/2026:18:01:47 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234 "
            "\"http://x/\\\"y\\\"\" \"curl/7.88\"\n");
  Record tcp;
  tcp.time_ns = r.time_ns;
  tcp.client = &client;
  tcp.protocol = "tcp";
  tcp.bytes_out = 9;
  EXPECT_EQ(line(make("combined"), tcp),
            "192.0.2.7 - - [03/Dec/2026:18:01:47 +0000] \"- - tcp\" - 9 \"-\" \"-\"\n");
}

TEST(AccessLogFormat, Templates) {
  const auto client = *SocketAddress::parse("192.0.2.7:5555");
  const Record r = sample(client);
  EXPECT_EQ(line(make("%client:%client_port %status %total_us us 100%% %{method}X"), r),
            "192.0.2.7:5555 200 5000 us 100% GETX\n");
  EXPECT_EQ(line(make("%tls_version|%queue_wait_us|%referer|%path"), r), "-|-|-|/a?b=1\n");
  Record odd = r;
  odd.path = "/\x7f\"\\";
  EXPECT_EQ(line(make("%path"), odd), "/\\x7f\\\"\\\\\n");
  EXPECT_EQ(line(make("plain text"), r), "plain text\n");
}

TEST(AccessLogFormat, TemplateErrorsSayWhat) {
  EXPECT_NE(compile_error("%nope").find("unknown field '%nope' (fields: time, client"),
            std::string::npos);
  EXPECT_NE(compile_error("100%").find("without a field name"), std::string::npos);
  EXPECT_NE(compile_error("% x").find("without a field name at column 1"), std::string::npos);
  EXPECT_NE(compile_error("%{status").find("without '}'"), std::string::npos);
  EXPECT_NE(compile_error("a\nb").find("control byte at column 2"), std::string::npos);
  EXPECT_NE(compile_error("").find("empty format"), std::string::npos);
  for (size_t k = 0; k < static_cast<size_t>(Field::kCount); ++k)
    make(std::string("%") + name(static_cast<Field>(k)));
}

TEST(AccessLogFormat, ALineThatDoesNotFitIsNotWritten) {
  const auto client = *SocketAddress::parse("192.0.2.7:5555");
  const Record r = sample(client);
  const Format f = make("json");
  const std::string whole = line(f, r);
  char buf[4096];
  EXPECT_EQ(f.append(r, buf, whole.size() - 1), 0u);
  EXPECT_EQ(f.append(r, buf, whole.size()), whole.size());
  EXPECT_EQ(f.append(r, buf, 0), 0u);
}

TEST(AccessLogFormat, TerminationOfStatus) {
  EXPECT_STREQ(termination_of(404), "no_route");
  EXPECT_STREQ(termination_of(504), "gateway_timeout");
  EXPECT_STREQ(termination_of(418), "proxy_error");
}

}  // namespace
}  // namespace egw::accesslog

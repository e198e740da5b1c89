// The forwarding policy over neutral heads, and the HTTP/1.1 heads written
// from it.
#include "src/http/forwarding.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "proto/h1/parser.h"
#include "src/http/h1_heads.h"

namespace egw::http {
namespace {

namespace ph = proto::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

struct Collect final : ph::FieldSink {
  Fields out;
  size_t limit = 1000;
  bool field(std::string_view n, std::string_view v) override {
    if (out.size() >= limit) return false;
    out.emplace_back(n, v);
    return true;
  }
  std::vector<std::string> values(std::string_view name) const {
    std::vector<std::string> r;
    for (const auto& [n, v] : out)
      if (ph::iequals(n, name)) r.push_back(v);
    return r;
  }
  bool has(std::string_view name) const { return !values(name).empty(); }
};

struct Env {
  config::HttpConfig http;
  SocketAddress peer = *SocketAddress::parse("192.0.2.7:5555");
  SocketAddress endpoint = *SocketAddress::parse("127.0.0.1:3000");
  RequestContext ctx() {
    RequestContext c;
    c.http = &http;
    c.peer = &peer;
    c.endpoint = &endpoint;
    return c;
  }
};

ph::RequestHead request(std::span<const ph::Field> fields,
                        std::string_view authority = "a.example") {
  ph::RequestHead r;
  r.method = ph::Method::kGet;
  r.method_text = "GET";
  r.path = "/x";
  r.authority = authority;
  r.fields = fields;
  return r;
}

TEST(ForwardingPolicy, DropsHopByHopFramingAndConnectionListedFields) {
  const ph::Field f[] = {{"Host", "a.example"},
                         {"Connection", "keep-alive, X-Hop"},
                         {"X-Hop", "secret"},
                         {"Keep-Alive", "timeout=5"},
                         {"TE", "trailers"},
                         {"Content-Length", "5"},
                         {"Content-Length", "5"},
                         {"Transfer-Encoding", "chunked"},
                         {"HTTP2-Settings", "AAMA"},
                         {"Upgrade", "h2c"},
                         {"Proxy-Connection", "close"},
                         {"X-Keep", "1"}};
  Env env;
  Collect out;
  ASSERT_TRUE(forward_request_fields(request(f), env.ctx(), out));
  for (const char* gone : {"connection", "x-hop", "keep-alive", "te", "content-length",
                           "transfer-encoding", "http2-settings", "upgrade", "proxy-connection"}) {
    EXPECT_FALSE(out.has(gone)) << gone;
  }
  EXPECT_EQ(out.values("x-keep"), std::vector<std::string>{"1"});
  EXPECT_EQ(out.values("host"), std::vector<std::string>{"a.example"});
  EXPECT_EQ(out.out.front().first, "Host");  // Host first
}

TEST(ForwardingPolicy, ForwardedForProtoAndVia) {
  const ph::Field f[] = {{"X-Forwarded-For", "10.0.0.1"}, {"X-Forwarded-Proto", "https"}};
  Env env;
  env.http.forwarded = true;
  {
    Collect out;
    ASSERT_TRUE(forward_request_fields(request(f), env.ctx(), out));
    EXPECT_EQ(out.values("x-forwarded-for"), (std::vector<std::string>{"10.0.0.1", "192.0.2.7"}));
    EXPECT_EQ(out.values("x-forwarded-proto"), std::vector<std::string>{"http"});  // ours wins
    EXPECT_EQ(out.values("forwarded"), std::vector<std::string>{"for=192.0.2.7;proto=http"});
    EXPECT_EQ(out.values("via"), std::vector<std::string>{"1.1 expressgateway"});
  }
  env.http.x_forwarded_for = config::HttpConfig::ForwardedFor::kReplace;
  {
    Collect out;
    auto ctx = env.ctx();
    ctx.tls = true;
    ph::RequestHead r = request(f);
    r.version = 20;
    ASSERT_TRUE(forward_request_fields(r, ctx, out));
    EXPECT_EQ(out.values("x-forwarded-for"), std::vector<std::string>{"192.0.2.7"});
    EXPECT_EQ(out.values("x-forwarded-proto"), std::vector<std::string>{"https"});
    EXPECT_EQ(out.values("via"), std::vector<std::string>{"2 expressgateway"});
  }
  env.http.x_forwarded_for = config::HttpConfig::ForwardedFor::kOff;
  env.http.via = false;
  {
    Collect out;
    ASSERT_TRUE(forward_request_fields(request(f), env.ctx(), out));
    EXPECT_EQ(out.values("x-forwarded-for"), std::vector<std::string>{"10.0.0.1"});  // untouched
    EXPECT_FALSE(out.has("via"));
  }
}

TEST(ForwardingPolicy, HostRules) {
  Env env;
  // No authority and no Host (HTTP/1.0): the endpoint's address.
  {
    Collect out;
    ASSERT_TRUE(forward_request_fields(request({}, ""), env.ctx(), out));
    EXPECT_EQ(out.values("host"), std::vector<std::string>{"127.0.0.1:3000"});
  }
  // An empty Host field stays as it is.
  {
    const ph::Field f[] = {{"Host", ""}};
    Collect out;
    ASSERT_TRUE(forward_request_fields(request(f, ""), env.ctx(), out));
    EXPECT_EQ(out.values("host"), std::vector<std::string>{""});
  }
  // The authority replaces a different Host (absolute-form).
  {
    const ph::Field f[] = {{"Host", "wrong"}};
    Collect out;
    ASSERT_TRUE(forward_request_fields(request(f, "right:8080"), env.ctx(), out));
    EXPECT_EQ(out.values("host"), std::vector<std::string>{"right:8080"});
  }
  // A route rule that sets Host wins.
  {
    config::HeaderRulesConfig rules;
    rules.set = {{"Host", "internal"}};
    const ph::Field f[] = {{"Host", "a.example"}};
    auto ctx = env.ctx();
    ctx.rules = &rules;
    Collect out;
    ASSERT_TRUE(forward_request_fields(request(f), ctx, out));
    EXPECT_EQ(out.values("host"), std::vector<std::string>{"internal"});
  }
}

TEST(ForwardingPolicy, RouteRulesAndClientSubject) {
  Env env;
  config::HeaderRulesConfig rules;
  rules.set = {{"X-Env", "prod"}};
  rules.add = {{"X-Added", "yes"}};
  rules.remove = {"x-debug"};
  const ph::Field f[] = {{"X-Env", "dev"}, {"X-Debug", "1"}, {"X-Client-Subject", "forged"}};
  auto ctx = env.ctx();
  ctx.rules = &rules;
  ctx.tls = true;
  ctx.subject_header = "x-client-subject";
  ctx.subject = "CN=client-one";
  Collect out;
  ASSERT_TRUE(forward_request_fields(request(f), ctx, out));
  EXPECT_EQ(out.values("x-env"), std::vector<std::string>{"prod"});
  EXPECT_EQ(out.values("x-added"), std::vector<std::string>{"yes"});
  EXPECT_FALSE(out.has("x-debug"));
  EXPECT_EQ(out.values("x-client-subject"), std::vector<std::string>{"CN=client-one"});
  // A subject with control characters is never forwarded.
  ctx.subject = "CN=a\r\nX-Evil: 1";
  Collect bad;
  ASSERT_TRUE(forward_request_fields(request(f), ctx, bad));
  EXPECT_FALSE(bad.has("x-client-subject"));
}

TEST(ForwardingPolicy, ResponseFields) {
  config::HttpConfig http;
  config::HeaderRulesConfig rules;
  rules.remove = {"x-remove-me"};
  rules.set = {{"X-Served-By", "egw"}};
  const ph::Field f[] = {
      {"Content-Length", "3"}, {"Connection", "close"}, {"X-Remove-Me", "1"}, {"X-Backend", "yes"}};
  ph::ResponseHead r;
  r.status = 200;
  r.fields = f;
  r.version = 10;
  ResponseContext ctx{&http, &rules};
  Collect out;
  ASSERT_TRUE(forward_response_fields(r, ctx, out));
  EXPECT_EQ(out.out,
            (Fields{{"X-Backend", "yes"}, {"X-Served-By", "egw"}, {"Via", "1.0 expressgateway"}}));
}

TEST(ForwardingPolicy, StopsAtTheFirstRefusedField) {
  const ph::Field f[] = {{"A", "1"}, {"B", "2"}, {"C", "3"}};
  Env env;
  Collect out;
  out.limit = 2;
  EXPECT_FALSE(forward_request_fields(request(f), env.ctx(), out));
}

std::string upstream(const ph::RequestHead& r, RequestContext ctx) {
  char buf[1024];
  const size_t n = write_upstream_request(r, ctx, buf, sizeof(buf));
  return std::string(buf, n);
}

TEST(H1Heads, UpstreamRequestFramesTheBodyItself) {
  Env env;
  env.http.x_forwarded_for = config::HttpConfig::ForwardedFor::kOff;
  env.http.x_forwarded_proto = false;
  env.http.via = false;
  const ph::Field f[] = {{"Host", "a.example"}, {"Content-Length", "5"}, {"Content-Length", "5"}};
  ph::RequestHead r = request(f);
  r.method = ph::Method::kPost;
  r.method_text = "POST";
  r.body = ph::Body::kLength;
  r.content_length = 5;
  EXPECT_EQ(upstream(r, env.ctx()),
            "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\n");
  r.body = ph::Body::kUnknown;  // e.g. HTTP/2 DATA without content-length
  EXPECT_EQ(upstream(r, env.ctx()),
            "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(H1Heads, UpgradeTokensWithoutH2c) {
  Env env;
  env.http.x_forwarded_for = config::HttpConfig::ForwardedFor::kOff;
  env.http.x_forwarded_proto = false;
  env.http.via = false;
  ph::RequestHead r = request({});
  r.upgrade = "h2c, websocket, H2C";
  EXPECT_EQ(
      upstream(r, env.ctx()),
      "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
  r.method = ph::Method::kConnect;
  r.method_text = "CONNECT";
  r.upgrade = {};
  r.authority = "h.example:443";
  EXPECT_EQ(upstream(r, env.ctx()),
            "CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n");
}

TEST(H1Heads, ClientResponseFraming) {
  config::HttpConfig http;
  http.via = false;
  const ph::Field f[] = {{"Content-Length", "9"}, {"Transfer-Encoding", "chunked"}, {"X-A", "1"}};
  ph::ResponseHead r;
  r.status = 200;
  r.fields = f;
  r.body = ph::Body::kUnknown;
  ResponseContext ctx{&http, nullptr};
  char buf[512];
  ClientResponse how;
  how.framing = Framing::kChunked;
  size_t n = write_client_response(r, ctx, how, buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, n), "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  // HTTP/1.0 client, read until close.
  how.client_minor = 0;
  how.framing = Framing::kUntilClose;
  how.keep_alive = false;
  n = write_client_response(r, ctx, how, buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, n), "HTTP/1.0 200 OK\r\nX-A: 1\r\nConnection: close\r\n\r\n");
  // A response to HEAD keeps the origin's announced length.
  r.body = ph::Body::kNone;
  r.has_length = true;
  r.content_length = 1234;
  how = ClientResponse{};
  n = write_client_response(r, ctx, how, buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, n), "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 1234\r\n\r\n");
  // A 2xx to CONNECT: no framing fields at all.
  how.tunnel = true;
  n = write_client_response(r, ctx, how, buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, n), "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n");
}

}  // namespace
}  // namespace egw::http

// The neutral heads, and how an HTTP/1.1 head becomes one.
#include "proto/http/message.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "proto/h1/parser.h"

namespace egw::proto::http {
namespace {

TEST(HttpMessage, ListsAndConnectionTokens) {
  std::vector<std::string> seen;
  for_each_list_element(" a, b ,,\tc\t,", [&](std::string_view e) { seen.emplace_back(e); });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(list_has("keep-alive, Upgrade", "upgrade"));
  EXPECT_FALSE(list_has("keep-alive, Upgraded", "upgrade"));
  const Field fields[] = {{"Connection", "close, X-Hop"}, {"X-Hop", "1"}};
  EXPECT_TRUE(connection_lists(fields, "x-hop"));
  EXPECT_FALSE(connection_lists(fields, "x-other"));
  EXPECT_TRUE(is_hop_by_hop("Transfer-Encoding") && is_hop_by_hop("te"));
  EXPECT_FALSE(is_hop_by_hop("content-length"));
  EXPECT_TRUE(idempotent(Method::kPut) && !idempotent(Method::kPost));
}

struct Parsed {
  std::array<h1::Header, 16> storage;
  std::optional<h1::RequestParser> parser;
  const h1::RequestHead& parse(std::string_view raw) {
    parser.emplace(h1::Limits{}, storage);
    EXPECT_EQ(parser->parse(raw), h1::ParseStatus::kComplete) << raw;
    return parser->head();
  }
};

TEST(HttpMessage, OriginFormTakesTheAuthorityFromHost) {
  Parsed p;
  const RequestHead r =
      p.parse("POST /a/b?c=d HTTP/1.1\r\nHost: x.example:81\r\nContent-Length: 3\r\n\r\n")
          .neutral();
  EXPECT_EQ(r.method, Method::kPost);
  EXPECT_EQ(r.method_text, "POST");
  EXPECT_EQ(r.scheme, "");
  EXPECT_EQ(r.authority, "x.example:81");
  EXPECT_EQ(r.path, "/a/b?c=d");
  EXPECT_EQ(r.body, Body::kLength);
  EXPECT_EQ(r.content_length, 3u);
  EXPECT_EQ(r.version, 11);
  EXPECT_EQ(r.fields.size(), 2u);
  EXPECT_TRUE(r.upgrade.empty());
}

TEST(HttpMessage, AbsoluteFormAuthorityWinsOverHost) {
  Parsed p;
  const RequestHead r =
      p.parse("GET http://b.example:8080/p?q=1 HTTP/1.1\r\nHost: wrong\r\n\r\n").neutral();
  EXPECT_EQ(r.scheme, "http");
  EXPECT_EQ(r.authority, "b.example:8080");
  EXPECT_EQ(r.path, "/p?q=1");
  Parsed p2;
  const RequestHead bare =
      p2.parse("GET http://c.example HTTP/1.1\r\nHost: c.example\r\n\r\n").neutral();
  EXPECT_EQ(bare.authority, "c.example");
  EXPECT_EQ(bare.path, "/");
}

TEST(HttpMessage, ConnectAsteriskChunkedAndHttp10) {
  Parsed a;
  const RequestHead c =
      a.parse("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n").neutral();
  EXPECT_EQ(c.method, Method::kConnect);
  EXPECT_EQ(c.authority, "h.example:443");
  EXPECT_EQ(c.path, "");
  Parsed b;
  EXPECT_EQ(b.parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").neutral().path, "*");
  Parsed d;
  const RequestHead ch =
      d.parse("PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n").neutral();
  EXPECT_EQ(ch.body, Body::kUnknown);
  Parsed e;
  const RequestHead old = e.parse("GET / HTTP/1.0\r\n\r\n").neutral();
  EXPECT_EQ(old.version, 10);
  EXPECT_EQ(old.authority, "");
  EXPECT_EQ(old.body, Body::kNone);
}

TEST(HttpMessage, AnH2cUpgradeIsNoUpgrade) {
  Parsed a;
  EXPECT_EQ(a.parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    "Upgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n")
                .neutral()
                .upgrade,
            "");
  Parsed b;
  EXPECT_EQ(
      b.parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: H2C, websocket\r\n\r\n")
          .neutral()
          .upgrade,
      "H2C, websocket");
  Parsed c;
  EXPECT_EQ(
      c.parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
          .neutral()
          .upgrade,
      "websocket");
  // Upgrade without Connection: upgrade is not an upgrade either.
  Parsed d;
  EXPECT_EQ(d.parse("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").neutral().upgrade,
            "");
}

TEST(HttpMessage, ResponsesKeepTheAnnouncedLength) {
  std::array<h1::Header, 8> storage;
  h1::ResponseParser p(h1::Limits{}, storage);
  ASSERT_EQ(p.parse("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", Method::kHead),
            h1::ParseStatus::kComplete);
  const ResponseHead r = p.head().neutral();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, Body::kNone);  // a response to HEAD
  EXPECT_TRUE(r.has_length);
  EXPECT_EQ(r.content_length, 42u);
  h1::ResponseParser q(h1::Limits{}, storage);
  ASSERT_EQ(q.parse("HTTP/1.0 200 OK\r\n\r\n", Method::kGet), h1::ParseStatus::kComplete);
  const ResponseHead u = q.head().neutral();
  EXPECT_EQ(u.body, Body::kUnknown);
  EXPECT_FALSE(u.has_length);
  EXPECT_EQ(u.version, 10);
}

}  // namespace
}  // namespace egw::proto::http

#include "src/route/router.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace egw::route {
namespace {

using config::HeaderMatchConfig;
using config::RouteConfig;
using config::RouteMatchConfig;
using proto::h1::Header;
using Kind = HeaderMatchConfig::Kind;

// Builds a RouteMatchConfig field by field (designated initializers would
// trip GCC's -Wmissing-field-initializers).
class Match {
 public:
  Match& hosts(std::vector<std::string> v) { return set(c_.hosts, std::move(v)); }
  Match& path(std::string v) { return set(c_.path, std::move(v)); }
  Match& path_prefix(std::string v) { return set(c_.path_prefix, std::move(v)); }
  Match& path_regex(std::string v) { return set(c_.path_regex, std::move(v)); }
  Match& methods(std::vector<std::string> v) { return set(c_.methods, std::move(v)); }
  Match& headers(std::vector<HeaderMatchConfig> v) { return set(c_.headers, std::move(v)); }
  Match& sources(std::vector<std::string> v) { return set(c_.sources, std::move(v)); }
  operator RouteMatchConfig() const { return c_; }

 private:
  template <class T>
  Match& set(T& field, T value) {
    field = std::move(value);
    return *this;
  }
  RouteMatchConfig c_;
};

RouteConfig route(RouteMatchConfig match) {
  RouteConfig r;
  r.match = std::move(match);
  return r;
}

Router must_build(const std::vector<RouteConfig>& routes) {
  auto r = Router::build(routes);
  EXPECT_TRUE(r.has_value()) << r.error().to_string();
  return r ? std::move(*r) : Router();
}

// A single-route router.
Router one(RouteMatchConfig match) {
  return must_build({route(std::move(match))});
}

// The message build() gives for a single route, or "" when it builds.
std::string build_error(RouteMatchConfig match) {
  const std::vector<RouteConfig> routes = {route({}), route(std::move(match))};
  auto r = Router::build(routes);
  if (r) return "";
  EXPECT_EQ(r.error().route, 1u);
  return r.error().to_string();
}

struct Request {
  std::string method = "GET";
  std::string host = "example.com";
  std::string path = "/";
  std::vector<Header> headers;
  std::optional<SocketAddress> peer = SocketAddress::parse("192.0.2.1:40000");

  RequestView view() const { return {method, host, path, headers, peer ? &*peer : nullptr}; }
};

Request with_host(std::string host) {
  Request r;
  r.host = std::move(host);
  return r;
}
Request with_path(std::string path) {
  Request r;
  r.path = std::move(path);
  return r;
}
Request with_method(std::string method) {
  Request r;
  r.method = std::move(method);
  return r;
}
Request with_headers(std::vector<Header> headers) {
  Request r;
  r.headers = std::move(headers);
  return r;
}
Request with_peer(std::string_view peer) {
  Request r;
  r.peer = SocketAddress::parse(peer);
  EXPECT_TRUE(r.peer.has_value()) << peer;
  return r;
}

bool matches(const Router& router, const Request& req) {
  return router.match(req.view()) == 0;
}

// --- order --------------------------------------------------------------------

TEST(Router, FirstMatchingRouteWins) {
  const Router r = must_build({
      route(Match().path_prefix("/api/")),
      route(Match().path_prefix("/api/v2/")),  // shadowed by route 0
      route(Match().path_prefix("/")),
  });
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.match(with_path("/api/v2/x").view()), 0);
  EXPECT_EQ(r.match(with_path("/api/v1").view()), 0);
  EXPECT_EQ(r.match(with_path("/other").view()), 2);
}

TEST(Router, LaterRouteWinsWhenEarlierOnesFail) {
  const Router r = must_build({
      route(Match().methods({"POST"})),
      route(Match().hosts({"other.example.com"})),
      route(Match().path("/x")),
  });
  EXPECT_EQ(r.match(with_path("/x").view()), 2);
}

TEST(Router, NoMatchingRouteIsMinusOne) {
  EXPECT_EQ(one(Match().path("/a")).match(with_path("/b").view()), -1);
  EXPECT_EQ(Router().match(Request().view()), -1);
  EXPECT_EQ(must_build({}).match(Request().view()), -1);
}

TEST(Router, EmptyMatchMatchesEverything) {
  const Router r = one({});
  Request req = with_host("");
  req.peer.reset();
  EXPECT_TRUE(matches(r, req));
}

TEST(Router, EveryMatcherMustHold) {
  const Router r = one(Match()
                           .hosts({"api.example.com"})
                           .path_prefix("/v1/")
                           .methods({"GET"})
                           .headers({{Kind::kPresent, "x-key", ""}})
                           .sources({"10.0.0.0/8"}));
  Request good = with_host("api.example.com");
  good.path = "/v1/users";
  good.headers = {{"X-Key", "k"}};
  good.peer = SocketAddress::parse("10.1.1.1:5");
  EXPECT_TRUE(matches(r, good));

  Request bad = good;
  bad.host = "www.example.com";
  EXPECT_FALSE(matches(r, bad));
  bad = good;
  bad.path = "/v2/users";
  EXPECT_FALSE(matches(r, bad));
  bad = good;
  bad.method = "PUT";
  EXPECT_FALSE(matches(r, bad));
  bad = good;
  bad.headers.clear();
  EXPECT_FALSE(matches(r, bad));
  bad = good;
  bad.peer = SocketAddress::parse("11.1.1.1:5");
  EXPECT_FALSE(matches(r, bad));
}

// --- hosts --------------------------------------------------------------------

TEST(Router, HostIsCaseInsensitive) {
  const Router r = one(Match().hosts({"api.example.com"}));
  EXPECT_TRUE(matches(r, with_host("api.example.com")));
  EXPECT_TRUE(matches(r, with_host("API.Example.COM")));
  EXPECT_FALSE(matches(r, with_host("api.example.org")));
  EXPECT_FALSE(matches(r, with_host("api.example.co")));
  EXPECT_FALSE(matches(r, with_host("xapi.example.com")));

  EXPECT_TRUE(matches(one(Match().hosts({"API.EXAMPLE.com"})), with_host("api.example.com")));
}

TEST(Router, HostPortIsIgnored) {
  const Router r = one(Match().hosts({"api.example.com"}));
  EXPECT_TRUE(matches(r, with_host("API.example.com:8080")));
  EXPECT_TRUE(matches(r, with_host("api.example.com:")));
  EXPECT_FALSE(matches(r, with_host("api.example.org:8080")));
}

TEST(Router, HostTrailingDotIsIgnored) {
  EXPECT_TRUE(matches(one(Match().hosts({"api.example.com"})), with_host("api.example.com.")));
  EXPECT_TRUE(matches(one(Match().hosts({"api.example.com"})), with_host("api.example.com.:443")));
  EXPECT_TRUE(matches(one(Match().hosts({"api.example.com."})), with_host("api.example.com")));
  EXPECT_FALSE(matches(one(Match().hosts({"api.example.com"})), with_host("api.example.com..")));
}

TEST(Router, HostIpv6Literal) {
  for (const char* pattern : {"[::1]", "::1"}) {
    const Router r = one(Match().hosts({pattern}));
    EXPECT_TRUE(matches(r, with_host("[::1]:8080"))) << pattern;
    EXPECT_TRUE(matches(r, with_host("[::1]"))) << pattern;
    EXPECT_FALSE(matches(r, with_host("[::2]:8080"))) << pattern;
    EXPECT_FALSE(matches(r, with_host("[::1"))) << pattern;
  }
  EXPECT_TRUE(matches(one(Match().hosts({"[FE80::1]"})), with_host("[fe80::1]:443")));
}

TEST(Router, HostIpv4Literal) {
  const Router r = one(Match().hosts({"192.0.2.7"}));
  EXPECT_TRUE(matches(r, with_host("192.0.2.7:8080")));
  EXPECT_FALSE(matches(r, with_host("192.0.2.70")));
}

TEST(Router, WildcardHostMatchesAnyDepthOfSubdomain) {
  const Router r = one(Match().hosts({"*.example.com"}));
  EXPECT_TRUE(matches(r, with_host("a.example.com")));
  EXPECT_TRUE(matches(r, with_host("a.b.example.com")));
  EXPECT_TRUE(matches(r, with_host("A.Example.COM:443")));
  EXPECT_FALSE(matches(r, with_host("example.com")));
  EXPECT_FALSE(matches(r, with_host("badexample.com")));
  EXPECT_FALSE(matches(r, with_host(".example.com")));
  EXPECT_FALSE(matches(r, with_host("a.example.com.evil")));
  EXPECT_FALSE(matches(r, with_host("")));
}

TEST(Router, VeryLongHostIsStillMatchedCaseInsensitively) {
  // Past the buffer that match() lower-cases hosts into.
  const std::string label(300, 'A');
  EXPECT_TRUE(matches(one(Match().hosts({"*.example.com"})), with_host(label + ".Example.com:80")));
  EXPECT_FALSE(matches(one(Match().hosts({"*.example.com"})), with_host(label + ".example.org")));
  const std::string exact = std::string(300, 'b') + ".example.com";
  EXPECT_TRUE(
      matches(one(Match().hosts({exact})), with_host(std::string(300, 'B') + ".EXAMPLE.com")));
  EXPECT_FALSE(
      matches(one(Match().hosts({exact})), with_host(std::string(299, 'B') + ".EXAMPLE.com")));
}

TEST(Router, HostListMatchesAnyEntry) {
  const Router r = one(Match().hosts({"a.example.com", "*.example.org", "b.example.com"}));
  EXPECT_TRUE(matches(r, with_host("a.example.com")));
  EXPECT_TRUE(matches(r, with_host("b.example.com")));
  EXPECT_TRUE(matches(r, with_host("x.example.org")));
  EXPECT_FALSE(matches(r, with_host("c.example.com")));
}

TEST(Router, EmptyHostListMatchesAnyHostAndNone) {
  const Router r = one(Match().path_prefix("/"));
  EXPECT_TRUE(matches(r, with_host("anything.example")));
  EXPECT_TRUE(matches(r, with_host("")));
}

TEST(Router, HostListDoesNotMatchARequestWithoutHost) {
  EXPECT_FALSE(matches(one(Match().hosts({"example.com"})), with_host("")));
}

TEST(HostForRouting, StripsPortAndTrailingDot) {
  EXPECT_EQ(host_for_routing("API.example.com:8080"), "API.example.com");
  EXPECT_EQ(host_for_routing("example.com"), "example.com");
  EXPECT_EQ(host_for_routing("example.com."), "example.com");
  EXPECT_EQ(host_for_routing("[::1]:8080"), "[::1]");
  EXPECT_EQ(host_for_routing("[::1]"), "[::1]");
  EXPECT_EQ(host_for_routing(""), "");
  EXPECT_EQ(host_for_routing("."), ".");
}

// --- paths --------------------------------------------------------------------

TEST(Router, PathIsExact) {
  const Router r = one(Match().path("/a/b"));
  EXPECT_TRUE(matches(r, with_path("/a/b")));
  EXPECT_FALSE(matches(r, with_path("/a/b/")));
  EXPECT_FALSE(matches(r, with_path("/a/bc")));
  EXPECT_FALSE(matches(r, with_path("/a")));
  EXPECT_FALSE(matches(r, with_path("/A/b")));
}

TEST(Router, PathPrefixIsABytePrefix) {
  const Router r = one(Match().path_prefix("/api"));
  EXPECT_TRUE(matches(r, with_path("/api")));
  EXPECT_TRUE(matches(r, with_path("/api/users")));
  EXPECT_TRUE(matches(r, with_path("/apix")));  // bytes, not segments
  EXPECT_FALSE(matches(r, with_path("/ap")));
  EXPECT_FALSE(matches(r, with_path("/x/api")));
  EXPECT_FALSE(matches(r, with_path("/API")));
}

TEST(Router, PathRegexIsAFullMatch) {
  const Router r = one(Match().path_regex("/users/[0-9]+"));
  EXPECT_TRUE(matches(r, with_path("/users/42")));
  EXPECT_FALSE(matches(r, with_path("/users/42/x")));
  EXPECT_FALSE(matches(r, with_path("/x/users/42")));
  EXPECT_FALSE(matches(r, with_path("/users/")));
}

TEST(Router, PathMatchersCombine) {
  const Router r = one(Match().path_prefix("/img/").path_regex(".*\\.png"));
  EXPECT_TRUE(matches(r, with_path("/img/a.png")));
  EXPECT_FALSE(matches(r, with_path("/img/a.jpg")));
  EXPECT_FALSE(matches(r, with_path("/doc/a.png")));
}

// --- methods ------------------------------------------------------------------

TEST(Router, MethodIsExactAndCaseSensitive) {
  const Router r = one(Match().methods({"GET"}));
  EXPECT_TRUE(matches(r, with_method("GET")));
  EXPECT_FALSE(matches(r, with_method("get")));
  EXPECT_FALSE(matches(r, with_method("GETX")));
  EXPECT_FALSE(matches(r, with_method("POST")));
}

TEST(Router, MethodListMatchesAnyEntry) {
  const Router r = one(Match().methods({"PUT", "PATCH"}));
  EXPECT_TRUE(matches(r, with_method("PUT")));
  EXPECT_TRUE(matches(r, with_method("PATCH")));
  EXPECT_FALSE(matches(r, with_method("GET")));
}

// --- headers ------------------------------------------------------------------

TEST(Router, HeaderPresent) {
  const Router r = one(Match().headers({{Kind::kPresent, "X-Canary", ""}}));
  EXPECT_TRUE(matches(r, with_headers({{"X-Canary", "1"}})));
  EXPECT_TRUE(matches(r, with_headers({{"Accept", "*/*"}, {"X-Canary", ""}})));
  EXPECT_FALSE(matches(r, with_headers({{"Accept", "*/*"}})));
  EXPECT_FALSE(matches(r, with_headers({{"X-Canary-Not", "1"}})));
  EXPECT_FALSE(matches(r, with_headers({})));
}

TEST(Router, HeaderNamesAreCaseInsensitive) {
  EXPECT_TRUE(matches(one(Match().headers({{Kind::kPresent, "X-Canary", ""}})),
                      with_headers({{"x-cAnArY", "1"}})));
  EXPECT_TRUE(matches(one(Match().headers({{Kind::kEquals, "x-canary", "on"}})),
                      with_headers({{"X-CANARY", "on"}})));
  EXPECT_FALSE(matches(one(Match().headers({{Kind::kAbsent, "x-canary", ""}})),
                       with_headers({{"X-Canary", "on"}})));
}

TEST(Router, HeaderAbsent) {
  const Router r = one(Match().headers({{Kind::kAbsent, "Authorization", ""}}));
  EXPECT_TRUE(matches(r, with_headers({})));
  EXPECT_TRUE(matches(r, with_headers({{"Accept", "*/*"}})));
  EXPECT_FALSE(matches(r, with_headers({{"Authorization", "Bearer x"}})));
  EXPECT_FALSE(matches(r, with_headers({{"Authorization", ""}})));
  EXPECT_FALSE(matches(r, with_headers({{"Accept", "a"}, {"authorization", "b"}})));
}

TEST(Router, HeaderEqualsIsExact) {
  const Router r = one(Match().headers({{Kind::kEquals, "X-Env", "staging"}}));
  EXPECT_TRUE(matches(r, with_headers({{"X-Env", "staging"}})));
  EXPECT_FALSE(matches(r, with_headers({{"X-Env", "Staging"}})));
  EXPECT_FALSE(matches(r, with_headers({{"X-Env", "staging2"}})));
  EXPECT_FALSE(matches(r, with_headers({{"X-Env", "stag"}})));
  EXPECT_FALSE(matches(r, with_headers({{"X-Other", "staging"}})));
  EXPECT_FALSE(matches(r, with_headers({})));
}

TEST(Router, HeaderRegexIsAFullMatchOnTheValue) {
  const Router r = one(Match().headers({{Kind::kRegex, "User-Agent", "curl/[0-9.]+"}}));
  EXPECT_TRUE(matches(r, with_headers({{"User-Agent", "curl/8.1.2"}})));
  EXPECT_FALSE(matches(r, with_headers({{"User-Agent", "curl/8.1.2 extra"}})));
  EXPECT_FALSE(matches(r, with_headers({{"User-Agent", "Mozilla curl/8"}})));
  EXPECT_FALSE(matches(r, with_headers({{"X-Agent", "curl/8"}})));
  EXPECT_FALSE(matches(r, with_headers({})));
}

TEST(Router, RepeatedHeaderMatchesWhenAnyOccurrenceDoes) {
  const std::vector<Header> fields = {{"X-Tag", "a"}, {"x-tag", "b"}, {"X-TAG", "c"}};
  EXPECT_TRUE(matches(one(Match().headers({{Kind::kEquals, "x-tag", "b"}})), with_headers(fields)));
  EXPECT_TRUE(matches(one(Match().headers({{Kind::kEquals, "x-tag", "c"}})), with_headers(fields)));
  EXPECT_FALSE(
      matches(one(Match().headers({{Kind::kEquals, "x-tag", "d"}})), with_headers(fields)));
  EXPECT_TRUE(
      matches(one(Match().headers({{Kind::kRegex, "x-tag", "[c-z]"}})), with_headers(fields)));
  EXPECT_FALSE(
      matches(one(Match().headers({{Kind::kRegex, "x-tag", "[d-z]"}})), with_headers(fields)));
}

TEST(Router, HeaderAbsentFailsWhenAnyOccurrenceIsThere) {
  const Router r = one(Match().headers({{Kind::kAbsent, "x-tag", ""}}));
  EXPECT_FALSE(matches(r, with_headers({{"A", "1"}, {"B", "2"}, {"X-Tag", "3"}})));
  EXPECT_TRUE(matches(r, with_headers({{"A", "1"}, {"B", "2"}, {"X-Tog", "3"}})));
}

TEST(Router, AllListedHeadersMustHold) {
  const Router r = one(Match().headers({{Kind::kPresent, "a", ""},
                                        {Kind::kEquals, "b", "2"},
                                        {Kind::kRegex, "c", "[0-9]+"},
                                        {Kind::kAbsent, "d", ""}}));
  const std::vector<Header> all = {{"A", "1"}, {"B", "2"}, {"C", "33"}};
  EXPECT_TRUE(matches(r, with_headers(all)));
  for (size_t drop = 0; drop < all.size(); ++drop) {
    std::vector<Header> fewer = all;
    fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(drop));
    EXPECT_FALSE(matches(r, with_headers(fewer))) << "without " << all[drop].name;
  }
  std::vector<Header> extra = all;
  extra.push_back({"D", "4"});
  EXPECT_FALSE(matches(r, with_headers(extra)));
  std::vector<Header> wrong = all;
  wrong[2].value = "3x";
  EXPECT_FALSE(matches(r, with_headers(wrong)));
}

TEST(Router, RegexSeesBytesNotUtf8) {
  // obs-text is legal in a field value; '.' must match it.
  const Router r = one(Match().headers({{Kind::kRegex, "x-name", "caf.."}}));
  EXPECT_TRUE(matches(r, with_headers({{"X-Name", "caf\xc3\xa9"}})));
  EXPECT_TRUE(matches(one(Match().headers({{Kind::kRegex, "x-name", ".*"}})),
                      with_headers({{"X-Name", "\xff\xfe"}})));
  // A non-ASCII literal matches its UTF-8 bytes.
  EXPECT_TRUE(matches(one(Match().headers({{Kind::kRegex, "x-name", "caf\xc3\xa9"}})),
                      with_headers({{"X-Name", "caf\xc3\xa9"}})));
}

// --- sources ------------------------------------------------------------------

TEST(Router, SourceIpv4Cidr) {
  const Router r = one(Match().sources({"10.0.0.0/8"}));
  EXPECT_TRUE(matches(r, with_peer("10.1.2.3:1000")));
  EXPECT_FALSE(matches(r, with_peer("11.1.2.3:1000")));
  EXPECT_FALSE(matches(r, with_peer("[2001:db8::1]:1000")));
}

TEST(Router, SourceIpv6Cidr) {
  const Router r = one(Match().sources({"2001:db8::/32"}));
  EXPECT_TRUE(matches(r, with_peer("[2001:db8:1::5]:1000")));
  EXPECT_FALSE(matches(r, with_peer("[2001:db9::5]:1000")));
  EXPECT_FALSE(matches(r, with_peer("10.0.0.1:1000")));
}

TEST(Router, SourceIpv4MappedPeerMatchesIpv4Cidr) {
  const Router r = one(Match().sources({"10.0.0.0/8"}));
  EXPECT_TRUE(matches(r, with_peer("[::ffff:10.1.2.3]:1000")));
  EXPECT_FALSE(matches(r, with_peer("[::ffff:11.1.2.3]:1000")));
}

TEST(Router, SourceBareAddressIsASingleHost) {
  EXPECT_TRUE(matches(one(Match().sources({"127.0.0.1"})), with_peer("127.0.0.1:5")));
  EXPECT_FALSE(matches(one(Match().sources({"127.0.0.1"})), with_peer("127.0.0.2:5")));
  EXPECT_TRUE(matches(one(Match().sources({"::1"})), with_peer("[::1]:5")));
  EXPECT_FALSE(matches(one(Match().sources({"::1"})), with_peer("[::2]:5")));
}

TEST(Router, SourceListMatchesAnyEntry) {
  const Router r = one(Match().sources({"10.0.0.0/8", "::1", "192.168.0.0/16"}));
  EXPECT_TRUE(matches(r, with_peer("10.0.0.1:1")));
  EXPECT_TRUE(matches(r, with_peer("[::1]:1")));
  EXPECT_TRUE(matches(r, with_peer("192.168.3.4:1")));
  EXPECT_FALSE(matches(r, with_peer("172.16.0.1:1")));
}

TEST(Router, SourcesNeverMatchWithoutAnIpPeer) {
  const Router r = one(Match().sources({"0.0.0.0/0", "::/0"}));
  Request req;
  req.peer.reset();
  EXPECT_FALSE(matches(r, req));
  req.peer = SocketAddress();  // not IP (as for a Unix socket)
  EXPECT_FALSE(matches(r, req));
  EXPECT_TRUE(matches(r, with_peer("1.2.3.4:5")));
}

// --- build errors -------------------------------------------------------------

TEST(RouterBuild, RejectsBadRegexWithRe2Message) {
  const std::string e = build_error(Match().path_regex("/users/(["));
  EXPECT_NE(e.find("route 1"), std::string::npos) << e;
  EXPECT_NE(e.find("path_regex"), std::string::npos) << e;
  EXPECT_NE(e.find("missing ]"), std::string::npos) << e;  // RE2's words

  const std::string h = build_error(Match().headers({{Kind::kRegex, "x-a", "a{2,1}"}}));
  EXPECT_NE(h.find("headers[0]"), std::string::npos) << h;
  EXPECT_NE(h.find("invalid repetition size"), std::string::npos) << h;
}

TEST(RouterBuild, RejectsBadCidr) {
  const std::string e = build_error(Match().sources({"10.0.0.0/8", "10.0.0.1/8"}));
  EXPECT_NE(e.find("route 1: sources[1] \"10.0.0.1/8\""), std::string::npos) << e;
  EXPECT_NE(build_error(Match().sources({"bogus"})), "");
}

TEST(RouterBuild, RejectsBadHosts) {
  EXPECT_NE(build_error(Match().hosts({"example.com:8080"})).find("port"), std::string::npos);
  EXPECT_NE(build_error(Match().hosts({""})), "");
  EXPECT_NE(build_error(Match().hosts({"*"})), "");
  EXPECT_NE(build_error(Match().hosts({"*."})), "");
  EXPECT_NE(build_error(Match().hosts({"a.*.com"})), "");
  EXPECT_NE(build_error(Match().hosts({"*example.com"})), "");
  EXPECT_NE(build_error(Match().hosts({"exa mple.com"})), "");
  EXPECT_NE(build_error(Match().hosts({"[::1]:80"})), "");
  EXPECT_NE(build_error(Match().hosts({"[zz::1]"})), "");
  EXPECT_EQ(build_error(Match().hosts({"*.example.com", "[::1]", "::1", "a_b.example"})), "");
}

TEST(RouterBuild, RejectsPathsThatCouldNeverMatch) {
  EXPECT_NE(build_error(Match().path("api")), "");
  EXPECT_NE(build_error(Match().path_prefix("/a/../b")).find("write \"/b\""), std::string::npos);
  EXPECT_NE(build_error(Match().path("/%7euser")).find("write \"/~user\""), std::string::npos);
  EXPECT_NE(build_error(Match().path("/a b")), "");
  EXPECT_EQ(build_error(Match().path("/a/%2F").path_prefix("/a/")), "");
}

TEST(RouterBuild, RejectsBadMethodsAndFieldNames) {
  EXPECT_NE(build_error(Match().methods({""})), "");
  EXPECT_NE(build_error(Match().methods({"GE T"})), "");
  EXPECT_NE(build_error(Match().headers({{Kind::kPresent, "", ""}})), "");
  EXPECT_NE(build_error(Match().headers({{Kind::kPresent, "x:y", ""}})), "");
}

}  // namespace
}  // namespace egw::route

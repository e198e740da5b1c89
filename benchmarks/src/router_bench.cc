// Router: the per-request cost of picking a route, and of normalising the
// path first. Both run for every HTTP request and must show 0 allocs.
//
// The route table has 20 routes with mixed matchers (hosts, wildcards,
// prefixes, methods, headers, CIDRs, regexes); the request matches only the
// last, and the routes before it fail at different matchers, some of them
// late (after a host and prefix check passed), as real tables do.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "src/route/path.h"
#include "src/route/router.h"

namespace {

using egw::config::HeaderMatchConfig;
using egw::config::RouteConfig;
using egw::config::RouteMatchConfig;
using egw::proto::h1::Header;
using egw::route::RequestView;
using egw::route::Router;
using Kind = HeaderMatchConfig::Kind;

RouteConfig route(RouteMatchConfig m) {
  RouteConfig r;
  r.match = std::move(m);
  return r;
}

RouteMatchConfig hosts(std::vector<std::string> h) {
  RouteMatchConfig m;
  m.hosts = std::move(h);
  return m;
}

RouteMatchConfig prefix(std::string p) {
  RouteMatchConfig m;
  m.path_prefix = std::move(p);
  return m;
}

std::vector<RouteConfig> twenty_routes() {
  std::vector<RouteConfig> r;
  r.push_back(route(hosts({"static.example.com", "cdn.example.com"})));  // 0: host
  r.push_back(route(hosts({"*.example.org"})));                          // 1: wildcard
  r.push_back(route(prefix("/admin/")));                                 // 2: prefix
  r.push_back(route(prefix("/api/v1/")));                                // 3: prefix
  {
    RouteMatchConfig m;  // 4: method
    m.methods = {"POST", "PUT", "DELETE"};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m;  // 5: header present (absent in the request)
    m.headers = {{Kind::kPresent, "X-Canary", ""}};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m;  // 6: header absent (present in the request)
    m.headers = {{Kind::kAbsent, "Authorization", ""}};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m;  // 7: source
    m.sources = {"192.168.0.0/16", "172.16.0.0/12", "fd00::/8"};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m = prefix("/api/");  // 8: path regex, after the prefix held
    m.path_regex = "/api/v[0-9]+/users/[0-9]+";
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m;  // 9: header regex
    m.headers = {{Kind::kRegex, "User-Agent", "curl/.*"}};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m = hosts({"api.example.com"});  // 10: host and prefix hold, header value not
    m.path_prefix = "/api/v2/";
    m.headers = {{Kind::kEquals, "X-Tenant", "beta"}};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m = hosts({"*.example.com"});  // 11: host holds, source not
    m.sources = {"10.99.0.0/16"};
    r.push_back(route(m));
  }
  r.push_back(route(hosts({"www.example.com", "example.com", "api.example.net"})));  // 12
  r.push_back(route(prefix("/api/v2/carts/")));                                      // 13
  {
    RouteMatchConfig m;  // 14: exact path
    m.path = "/api/v2/orders";
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m = prefix("/api/v2/");  // 15: method after prefix
    m.methods = {"PATCH"};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m = hosts({"*.example.com"});  // 16: header equals, several fields
    m.headers = {{Kind::kPresent, "Accept", ""}, {Kind::kEquals, "X-Debug", "1"}};
    r.push_back(route(m));
  }
  {
    RouteMatchConfig m = prefix("/api/");  // 17: regex that fails late
    m.path_regex = "/api/v2/orders/[0-9]+/items";
    r.push_back(route(m));
  }
  r.push_back(route(hosts({"internal.example.com"})));  // 18
  {
    RouteMatchConfig m = hosts({"*.example.com", "api.example.net"});  // 19: the winner
    m.path_prefix = "/api/";
    m.path_regex = "/api/v[0-9]+/orders/[0-9]+";
    m.methods = {"GET", "HEAD"};
    m.headers = {{Kind::kRegex, "X-Tenant", "[a-z]+"}};
    m.sources = {"10.0.0.0/8"};
    r.push_back(route(m));
  }
  return r;
}

const std::array<Header, 8> kHeaders = {{
    {"Host", "API.example.com:8443"},
    {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"},
    {"Accept", "application/json"},
    {"Accept-Encoding", "gzip, deflate, br"},
    {"Authorization",
     "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo"},
    {"X-Request-Id", "3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f8a9b0c"},
    {"X-Tenant", "acme"},
    {"Cookie", "session=abc123; theme=dark"},
}};

Router build_or_die() {
  const auto routes = twenty_routes();
  auto r = Router::build(routes);
  if (!r) {
    fprintf(stderr, "%s\n", r.error().to_string().c_str());
    abort();
  }
  return std::move(*r);
}

const egw::SocketAddress kPeer = *egw::SocketAddress::parse("10.20.30.40:51234");

void BM_MatchLastOf20(benchmark::State& state) {
  const Router router = build_or_die();
  const RequestView req{"GET", "API.example.com:8443", "/api/v2/orders/12345", kHeaders, &kPeer};
  if (router.match(req) != 19) state.SkipWithError("wrong route");
  egw::bench::AllocCounter allocs;
  for (auto _ : state)
    benchmark::DoNotOptimize(router.match(req));
  allocs.report(state);
}
BENCHMARK(BM_MatchLastOf20);

// As above, but every request has a different order number and tenant, so
// the regexes see inputs they have not seen before (RE2's lazy DFA may grow).
void BM_MatchLastOf20VaryingInputs(benchmark::State& state) {
  const Router router = build_or_die();
  std::vector<std::string> paths;
  std::vector<std::array<Header, 8>> headers;
  for (int i = 0; i < 1024; ++i)
    paths.push_back("/api/v2/orders/" + std::to_string(1000003u * static_cast<unsigned>(i)));
  static const char* kTenants[] = {"acme", "globex", "initech", "umbrella", "hooli", "x"};
  for (const char* t : kTenants) {
    headers.push_back(kHeaders);
    headers.back()[6].value = t;
  }
  egw::bench::AllocCounter allocs;
  size_t i = 0;
  for (auto _ : state) {
    const RequestView req{"GET", "API.example.com:8443", paths[i % paths.size()],
                          headers[i % headers.size()], &kPeer};
    benchmark::DoNotOptimize(router.match(req));
    ++i;
  }
  allocs.report(state);
}
BENCHMARK(BM_MatchLastOf20VaryingInputs);

// No route matches: every route is tried.
void BM_MatchNoneOf20(benchmark::State& state) {
  const Router router = build_or_die();
  const egw::SocketAddress peer = *egw::SocketAddress::parse("[2001:db8::1]:443");
  const RequestView req{"GET", "api.example.com", "/api/v2/orders/12345", kHeaders, &peer};
  if (router.match(req) != -1) state.SkipWithError("wrong route");
  egw::bench::AllocCounter allocs;
  for (auto _ : state)
    benchmark::DoNotOptimize(router.match(req));
  allocs.report(state);
}
BENCHMARK(BM_MatchNoneOf20);

void run_normalize(benchmark::State& state, std::string_view path) {
  std::string out(path.size(), '\0');
  if (!egw::route::normalize_path(path, out.data())) state.SkipWithError("rejected");
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    auto n = egw::route::normalize_path(path, out.data());
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(out.data());
  }
  allocs.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * path.size()));
}
BENCHMARK_CAPTURE(run_normalize, typical, "/api/v2/orders/12345/items");
// Escapes of both kinds, encoded and plain dot-segments, empty segments.
BENCHMARK_CAPTURE(run_normalize, nasty,
                  "/a/./b/../%2e%2E/c/%7Euser/%2f/./../x/%41%42//..%2F../d/./e/f/../../"
                  "caf%c3%a9/%2E/g/..%2f%2E%2e/%7e%7E/.");

}  // namespace

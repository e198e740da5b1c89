// Router: picks the route of an HTTP request (listener.route in the config).
//
// Routes are checked in configuration order; the first whose every matcher
// holds wins. Within a route, every non-empty matcher must hold (AND) and a
// list inside one matcher is an OR. The matchers:
//
//   hosts     the request's host (host_for_routing(): port and one trailing
//             dot dropped), ASCII case-insensitive. "api.example.com" is
//             exact; "*.example.com" matches any name ending in
//             ".example.com" with at least one byte before it, so
//             "a.example.com" and "a.b.example.com" but neither
//             "example.com" nor "badexample.com". IPv6 literals are written
//             "[::1]" or "::1" and compared as text, so write them as clients
//             send them (RFC 5952 form). An empty list matches any host,
//             including a request without one; a non-empty list never matches
//             a request without one.
//   path      byte-exact; path_prefix: byte prefix; path_regex: RE2 full
//             match. All three see the normalised path (src/route/path.h), so
//             build() rejects a path or path_prefix that normalisation would
//             change (it could never match).
//   methods   byte-exact, so case-sensitive ("get" is not "GET").
//   headers   each listed condition must hold. Names are ASCII
//             case-insensitive. present: some field of that name; absent: no
//             field of that name; equals: some field's value is byte-equal;
//             regex: some field's value is an RE2 full match. Values are the
//             parser's (leading and trailing whitespace trimmed), one field
//             line at a time: "Accept: a, b" is one value "a, b".
//   sources   the client's address is in one of the blocks (src/route/cidr.h:
//             IPv4-mapped peers count as IPv4). A request whose peer is null
//             or not IP never matches a route with sources.
//
// Regexes are RE2 full matches over bytes (Latin-1 mode); see
// src/route/regex.h for what that means for non-ASCII patterns.
//
// Threads: match() is const and safe to call from several threads, but each
// RE2 guards its lazily built DFA with a reader-writer lock, so a Router
// shared by workers makes them write one shared cache line per regex match.
// Give each worker its own Router (build() is cheap next to a reload).
//
// Allocation: build() allocates; match() does not, except that RE2 builds its
// DFA lazily and may allocate when a match reaches a DFA state that no earlier
// match reached (src/route/regex.h). build() warms every regex up, so after
// the first few requests this is rare and bounded.
#pragma once

#include <cstddef>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "egw/address.h"
#include "proto/h1/parser.h"
#include "src/config/config.h"
#include "src/route/path.h"  // normalize_path(), which callers run before match()

namespace egw::route {

// What a route is matched against. Views point into the request and must
// outlive the match() call only.
struct RequestView {
  std::string_view method;
  // The Host value (or the authority of an absolute-form target, which wins
  // over Host) as received, possibly with ":port"; empty when there is none.
  std::string_view host;
  // The request path without its query, already normalised (normalize_path).
  std::string_view path;
  std::span<const proto::h1::Header> headers;
  const SocketAddress* peer = nullptr;  // client address; may be null
};

// The name a host matcher sees in a Host value: "API.example.com:8080" ->
// "API.example.com", "[::1]:8080" -> "[::1]", "example.com." ->
// "example.com". Case is kept (matching ignores it). A view into `host`.
std::string_view host_for_routing(std::string_view host);

// Why build() refused a route list.
struct RouteError {
  size_t route = 0;     // index into the list given to build()
  std::string message;  // the field and what is wrong with it
  // "route 3: path_regex \"(a\": missing ): (a"
  std::string to_string() const;
};

class Router {
 public:
  // No routes: match() is always -1.
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Compiles every matcher: RE2 regexes (and runs each once, see above),
  // CIDR blocks, lower-cased host names and header names. Returns the first
  // route that cannot be compiled, naming the field and the reason (RE2's
  // message for a bad regex). The config loader validates the same things
  // first; this is the second line. Allocates.
  //
  // (This returns RouteError rather than egw::Error because Error carries
  // only a static string and the message here names a route and a pattern.)
  static std::expected<Router, RouteError> build(std::span<const config::RouteConfig> routes);

  // Index of the first route whose every matcher holds, or -1. Never
  // allocates, bar RE2's lazy DFA (see above).
  int match(const RequestView& req) const;

  size_t size() const;

 private:
  struct Route;
  std::vector<Route> routes_;
};

}  // namespace egw::route

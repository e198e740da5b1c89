#include "src/route/router.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>

#include "src/route/cidr.h"
#include "src/route/path.h"
#include "src/route/regex.h"

namespace egw::route {
namespace {

using HeaderKind = config::HeaderMatchConfig::Kind;

constexpr std::array<char, 256> make_lower_table() {
  std::array<char, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return t;
}
constexpr std::array<char, 256> kLower = make_lower_table();

char to_lower(char c) {
  return kLower[static_cast<unsigned char>(c)];
}

// `a` equals `lower` ignoring ASCII case; `lower` is already lower-case.
bool equals_lower(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != lower[i]) return false;
  }
  return true;
}

// A Host longer than this is not a DNS name (253 bytes at most) nor an IPv6
// literal; match() lower-cases shorter ones once into a buffer of this size.
constexpr size_t kMaxLoweredHost = 256;

std::string lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = to_lower(c);
  return out;
}

// RFC 9110 §5.6.2 tchar.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool is_host_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_text(std::string_view s) {
  char buf[INET6_ADDRSTRLEN];
  if (s.empty() || s.size() >= sizeof(buf)) return false;
  s.copy(buf, s.size());
  buf[s.size()] = '\0';
  in6_addr a;
  return inet_pton(AF_INET6, buf, &a) == 1;
}

struct HostPattern {
  // Lower-case. Exact: the name ("api.example.com", "[::1]"). Wildcard: the
  // suffix with its dot (".example.com").
  std::string text;
  bool wildcard = false;
};

struct HeaderMatcher {
  std::string name;  // lower-case
  HeaderKind kind = HeaderKind::kPresent;
  std::string value;           // kEquals
  std::optional<Regex> regex;  // kRegex
};

// Lower-cases and checks one entry of `hosts`; on failure sets `error`.
std::optional<HostPattern> compile_host(std::string_view entry, std::string& error) {
  HostPattern p;
  std::string h = lower_copy(entry);
  if (h.size() > 1 && h.back() == '.') h.pop_back();  // as host_for_routing() does
  if (h.empty()) {
    error = "empty host";
    return std::nullopt;
  }
  if (h.front() == '[' || h.find(':') != std::string::npos) {
    // An IPv6 literal, bracketed or bare; one ':' outside brackets is a port.
    std::string_view inner = h;
    if (h.front() == '[') {
      if (h.back() != ']') {
        error = "an IPv6 literal in brackets must end with ']' (a port is never matched)";
        return std::nullopt;
      }
      inner = inner.substr(1, inner.size() - 2);
    } else if (h.find(':') == h.rfind(':')) {
      error = "a host must not carry a port (the request's port is ignored)";
      return std::nullopt;
    }
    if (!is_ipv6_text(inner)) {
      error = "not an IPv6 address";
      return std::nullopt;
    }
    p.text = fmt::format("[{}]", inner);
    return p;
  }
  std::string_view name = h;
  if (name.starts_with("*.")) {
    p.wildcard = true;
    name.remove_prefix(1);  // keep the dot: ".example.com"
    if (name.size() < 2 || name[1] == '.') {
      error = "a wildcard needs a domain after \"*.\"";
      return std::nullopt;
    }
  }
  for (char c : name) {
    if (c == '*') {
      error = "'*' is only allowed as a whole first label (\"*.example.com\")";
      return std::nullopt;
    }
    if (!is_host_name_char(c)) {
      error = fmt::format("character '{}' is not allowed in a host name", c);
      return std::nullopt;
    }
  }
  p.text = std::string(name);
  return p;
}

// A configured path or path_prefix must be in normalised form, or it could
// never match a normalised request path.
std::optional<std::string> check_normalised(std::string_view path) {
  std::string buf(path.size(), '\0');
  const auto n = normalize_path(path, buf.data());
  if (!n) return std::string(to_string(n.error()));
  buf.resize(*n);
  if (buf != path) {
    return fmt::format("not in normalised form, so it would never match (write \"{}\")", buf);
  }
  return std::nullopt;
}

// `host` is lower-case when `lowered`; the patterns always are.
bool host_matches(std::span<const HostPattern> patterns, std::string_view host, bool lowered) {
  const auto same = [lowered](std::string_view h, std::string_view pattern) {
    return lowered ? h == pattern : equals_lower(h, pattern);
  };
  for (const HostPattern& p : patterns) {
    if (p.wildcard) {
      if (host.size() > p.text.size() && same(host.substr(host.size() - p.text.size()), p.text)) {
        return true;
      }
    } else if (same(host, p.text)) {
      return true;
    }
  }
  return false;
}

// The non-regex header conditions; regexes are left to header_regexes_match().
bool header_fields_match(std::span<const HeaderMatcher> matchers,
                         std::span<const proto::h1::Header> fields) {
  for (const HeaderMatcher& m : matchers) {
    if (m.kind == HeaderKind::kRegex) continue;
    bool found = false;
    for (const proto::h1::Header& f : fields) {
      if (!equals_lower(f.name, m.name)) continue;
      if (m.kind != HeaderKind::kEquals || f.value == m.value) {
        found = true;
        break;
      }
    }
    if (found != (m.kind != HeaderKind::kAbsent)) return false;
  }
  return true;
}

bool header_regexes_match(std::span<const HeaderMatcher> matchers,
                          std::span<const proto::h1::Header> fields) {
  for (const HeaderMatcher& m : matchers) {
    if (m.kind != HeaderKind::kRegex) continue;
    bool found = false;
    for (const proto::h1::Header& f : fields) {
      if (equals_lower(f.name, m.name) && m.regex->full_match(f.value)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

std::string_view host_for_routing(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  host = host.substr(0, host.find(':'));
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
  return host;
}

std::string RouteError::to_string() const {
  return fmt::format("route {}: {}", route, message);
}

struct Router::Route {
  std::vector<std::string> methods;
  std::vector<HostPattern> hosts;
  std::string path;         // empty: no condition
  std::string path_prefix;  // empty: no condition
  std::optional<Regex> path_regex;
  std::vector<HeaderMatcher> headers;
  bool has_header_regex = false;
  std::vector<Cidr> sources;

  // Cheapest conditions first; every one must hold, so order changes only the
  // cost. `host` is host_for_routing(req.host), lower-cased when
  // `host_lowered`; `ip` is the peer's address bytes, or empty.
  bool matches(const RequestView& req, std::string_view host, bool host_lowered,
               std::string_view ip) const {
    if (!methods.empty() &&
        std::find(methods.begin(), methods.end(), req.method) == methods.end()) {
      return false;
    }
    if (!path.empty() && req.path != path) return false;
    if (!path_prefix.empty() && !req.path.starts_with(path_prefix)) return false;
    if (!hosts.empty() && !host_matches(hosts, host, host_lowered)) return false;
    if (!sources.empty() && std::none_of(sources.begin(), sources.end(),
                                         [ip](const Cidr& c) { return c.contains(ip); })) {
      return false;
    }
    if (!header_fields_match(headers, req.headers)) return false;
    if (path_regex && !path_regex->full_match(req.path)) return false;
    if (has_header_regex && !header_regexes_match(headers, req.headers)) return false;
    return true;
  }
};

Router::Router() = default;
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

size_t Router::size() const {
  return routes_.size();
}

std::expected<Router, RouteError> Router::build(std::span<const config::RouteConfig> routes) {
  Router router;
  router.routes_.reserve(routes.size());
  for (size_t index = 0; index < routes.size(); ++index) {
    const config::RouteMatchConfig& mc = routes[index].match;
    auto reject = [index](std::string message) {
      return std::unexpected(RouteError{index, std::move(message)});
    };
    Route r;
    std::string error;

    for (size_t i = 0; i < mc.methods.size(); ++i) {
      if (!is_token(mc.methods[i])) {
        return reject(fmt::format("methods[{}] \"{}\": not a method token", i, mc.methods[i]));
      }
      r.methods.push_back(mc.methods[i]);
    }

    for (size_t i = 0; i < mc.hosts.size(); ++i) {
      auto p = compile_host(mc.hosts[i], error);
      if (!p) return reject(fmt::format("hosts[{}] \"{}\": {}", i, mc.hosts[i], error));
      r.hosts.push_back(std::move(*p));
    }

    if (!mc.path.empty()) {
      if (auto e = check_normalised(mc.path)) {
        return reject(fmt::format("path \"{}\": {}", mc.path, *e));
      }
      r.path = mc.path;
    }
    if (!mc.path_prefix.empty()) {
      if (auto e = check_normalised(mc.path_prefix)) {
        return reject(fmt::format("path_prefix \"{}\": {}", mc.path_prefix, *e));
      }
      r.path_prefix = mc.path_prefix;
    }
    if (!mc.path_regex.empty()) {
      auto re = Regex::compile(mc.path_regex);
      if (!re) return reject(fmt::format("path_regex \"{}\": {}", mc.path_regex, re.error()));
      r.path_regex = std::move(*re);
    }

    for (size_t i = 0; i < mc.headers.size(); ++i) {
      const config::HeaderMatchConfig& hc = mc.headers[i];
      if (!is_token(hc.name)) {
        return reject(fmt::format("headers[{}] \"{}\": not a field name", i, hc.name));
      }
      HeaderMatcher m;
      m.name = lower_copy(hc.name);
      m.kind = hc.kind;
      if (hc.kind == HeaderKind::kEquals) m.value = hc.value;
      if (hc.kind == HeaderKind::kRegex) {
        auto re = Regex::compile(hc.value);
        if (!re) {
          return reject(fmt::format("headers[{}] \"{}\": regex \"{}\": {}", i, hc.name, hc.value,
                                    re.error()));
        }
        m.regex = std::move(*re);
        r.has_header_regex = true;
      }
      r.headers.push_back(std::move(m));
    }

    for (size_t i = 0; i < mc.sources.size(); ++i) {
      auto c = Cidr::parse(mc.sources[i]);
      if (!c) {
        return reject(fmt::format(
            "sources[{}] \"{}\": not a CIDR block (\"10.0.0.0/8\", \"fe80::/10\" or one "
            "address, with no bits set past the prefix)",
            i, mc.sources[i]));
      }
      r.sources.push_back(*c);
    }

    router.routes_.push_back(std::move(r));
  }
  return router;
}

int Router::match(const RequestView& req) const {
  std::string_view host = host_for_routing(req.host);
  // Lower-case the host once rather than once per pattern.
  char lowered[kMaxLoweredHost];
  const bool host_lowered = host.size() <= sizeof(lowered);
  if (host_lowered) {
    for (size_t i = 0; i < host.size(); ++i)
      lowered[i] = to_lower(host[i]);
    host = std::string_view(lowered, host.size());
  }
  const std::string_view ip = req.peer != nullptr ? req.peer->ip_bytes() : std::string_view();
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].matches(req, host, host_lowered, ip)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace egw::route

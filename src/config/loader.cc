// The TOML loader: the only user of toml++ in the project.
//
// One table of key specifications per section (name, type, default, one-line
// description) drives everything: unknown-key detection, defaults, and the
// generated example configuration, so the three can never drift apart.
#include "src/config/loader.h"

#include <fmt/format.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <toml++/toml.h>
#include "src/accesslog/format.h"
#include "src/route/cidr.h"
#include "src/route/regex.h"
#include "src/route/router.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>
#include <algorithm>

#include <cctype>
#include <charconv>
#include <cstring>
#include <set>
#include <span>
#include <thread>

namespace egw::config {
namespace {

enum class Kind : uint8_t { kString, kInt, kBool, kStringOrList, kTable, kArrayOfTables, kArray };

struct KeySpec {
  std::string_view name;
  Kind kind;
  std::string_view def;  // the default as TOML text; "" = required or no default
  std::string_view doc;
  std::string_view example = "";  // for required keys: a value for the example file
};

// --- the defaults table ------------------------------------------------------

constexpr KeySpec kTopKeys[] = {
    {"global", Kind::kTable, "", "process-wide settings"},
    {"admin", Kind::kTable, "", "operator access: the admin socket and the metrics endpoint"},
    {"listener", Kind::kArrayOfTables, "", "where downstream connections arrive"},
    {"cluster", Kind::kArrayOfTables, "", "named sets of upstream endpoints"},
};

constexpr KeySpec kGlobalKeys[] = {
    {"workers", Kind::kInt, "0", "worker threads, one io_uring ring each; 0 = one per CPU"},
    {"grace_period_ms", Kind::kInt, "10000",
     "on SIGTERM (and in the old process of an upgrade): stop accepting, let sessions finish "
     "for this long, then close"},
    {"drain_idle_ms", Kind::kInt, "1000",
     "while draining, an idle HTTP/1.1 keep-alive connection waits this long (at most half the "
     "grace period) for a last request, answered with Connection: close"},
    {"log_level", Kind::kString, "\"info\"", "trace | debug | info | warn | error | off"},
    {"buffer_count", Kind::kInt, "2048", "provided receive buffers per worker (power of two)"},
    {"buffer_size", Kind::kInt, "16384", "bytes per receive buffer"},
    {"max_pipes", Kind::kInt, "1024",
     "splice pipes per worker (2 descriptors each); past it, L4 relays copy"},
    {"pipe_size", Kind::kInt, "1048576", "bytes per splice pipe (capped by fs.pipe-max-size)"},
    {"max_sessions", Kind::kInt, "100000", "sessions per worker; past it, accepts pause"},
    {"tls_ticket_rotation_s", Kind::kInt, "3600",
     "TLS session-ticket keys (shared by all workers) are replaced this often; a ticket stays "
     "valid for one to two periods"},
    {"user", Kind::kString, "\"\"",
     "started as root: become this user once the listeners are bound, keeping only "
     "CAP_NET_BIND_SERVICE (reloads can still bind ports below 1024); \"\" = stay as started"},
    {"group", Kind::kString, "\"\"", "with user: this group instead of the user's primary one"},
};

constexpr KeySpec kAdminKeys[] = {
    {"metrics", Kind::kString, "\"\"",
     "GET /metrics in the Prometheus text format on this address (\"127.0.0.1:9145\"; a "
     "loopback or private address: it has no authentication); \"\" = off"},
    {"socket", Kind::kString, "\"\"",
     "the admin API on this Unix socket (`expressgateway ctl`; \"/run/expressgateway/admin.sock\""
     " under systemd); \"\" = off"},
    {"socket_mode", Kind::kString, "\"0600\"",
     "permissions of the admin socket (octal): whoever may connect may reload and drain"},
    {"socket_user", Kind::kString, "\"\"", "owner of the admin socket; \"\" = the starting user"},
    {"socket_group", Kind::kString, "\"\"",
     "group of the admin socket (with socket_mode = \"0660\": its members may use it)"},
};

constexpr KeySpec kListenerKeys[] = {
    {"name", Kind::kString, "", "required, unique", "\"tcp_in\""},
    {"bind", Kind::kStringOrList, "",
     "required: \"127.0.0.1:9000\", \"[::1]:9000\", or a list of them",
     "[\"127.0.0.1:9000\", \"[::1]:9000\"]"},
    {"protocol", Kind::kString, "\"tcp\"", "tcp (L4 passthrough) | http"},
    {"cluster", Kind::kString, "",
     "the cluster that serves this listener (tcp: required; http: the catch-all after the routes)",
     "\"app\""},
    {"client_idle_timeout_ms", Kind::kInt, "60000",
     "close a session after this long without a byte either way"},
    {"tls", Kind::kTable, "", "TLS termination (keys below)"},
    {"proxy_protocol", Kind::kTable, "",
     "every connection starts with a PROXY protocol header (v1 or v2) from a balancer in "
     "front (keys below)"},
    {"access_log", Kind::kTable, "",
     "a line per request (http) or per session (tcp): { path, format, buffer_kb } (keys "
     "below)"},
    {"route", Kind::kArrayOfTables, "",
     "http: routes (below); tcp: routes on the TLS server name, match = { sni = [...] }"},
};

constexpr KeySpec kTlsListenerKeys[] = {
    {"certificates", Kind::kArray, "",
     "required: [{ cert = \"server.pem\", key = \"server.key\" }, ...]; the first is the "
     "default when the client's SNI matches no certificate's names",
     "[{ cert = \"/etc/expressgateway/site.pem\", key = \"/etc/expressgateway/site.key\" }]"},
    {"min_version", Kind::kString, "\"1.2\"", "1.2 | 1.3"},
    {"max_version", Kind::kString, "\"1.3\"", "1.2 | 1.3"},
    {"ciphers", Kind::kString, "\"\"", "cipher list (OpenSSL syntax); empty = safe defaults"},
    {"groups", Kind::kString, "\"\"", "key exchange groups; empty = X25519:P-256:P-384"},
    {"alpn", Kind::kStringOrList, "",
     "protocols offered, in order of preference; default by protocol (http: h2, http/1.1; "
     "http/1.1 alone with http2 = false)",
     "[\"h2\", \"http/1.1\"]"},
    {"client_ca", Kind::kString, "\"\"", "verify client certificates with this CA (mTLS)"},
    {"require_client_cert", Kind::kBool, "false", "refuse clients without a valid certificate"},
    {"client_subject_header", Kind::kString, "\"X-Client-Subject\"",
     "http with client_ca: the verified client subject goes upstream in this field (a "
     "client's own is dropped); \"\" = off"},
    {"session_tickets", Kind::kBool, "true",
     "issue session tickets (resumption; keys shared by all workers); false: every handshake "
     "is a full one"},
    {"ticket_lifetime_s", Kind::kInt, "7200",
     "how long a session ticket is valid, 1 to 604800 (no tickets: session_tickets = false)"},
    {"handshake_timeout_ms", Kind::kInt, "10000", "a handshake slower than this is closed"},
    {"ktls", Kind::kBool, "true",
     "no effect yet, accepted for forward compatibility: sessions are not handed to kernel TLS "
     "(the start-up feature report says whether the kernel has it)"},
};

constexpr KeySpec kProxyProtocolKeys[] = {
    {"accept", Kind::kBool, "true", "expect the header (false: the table is ignored)"},
    {"trusted", Kind::kStringOrList, "",
     "required: the networks whose headers are believed (CIDRs or addresses); a connection "
     "from anywhere else is closed; [\"0.0.0.0/0\", \"::/0\"] believes any",
     "[\"10.0.0.0/8\"]"},
    {"timeout_ms", Kind::kInt, "5000", "the whole header must arrive within this"},
};

constexpr KeySpec kAccessLogKeys[] = {
    {"path", Kind::kString, "",
     "required: the file (appended to, created 0640) or \"-\" for standard output",
     "\"/var/log/expressgateway/access.log\""},
    {"format", Kind::kString, "\"json\"",
     "json | combined | a template of %fields (docs/operations.md lists them)"},
    {"buffer_kb", Kind::kInt, "256",
     "per worker, twice over: lines past a full buffer are dropped and counted, never waited "
     "for"},
};

constexpr KeySpec kTlsCertKeys[] = {
    {"cert", Kind::kString, "", "PEM certificate (with its chain)"},
    {"key", Kind::kString, "", "PEM private key"},
};

constexpr KeySpec kTlsClusterKeys[] = {
    {"verify", Kind::kBool, "true", "verify the endpoints' certificates (chain and name)"},
    {"ca_file", Kind::kString, "\"\"", "CA bundle for verification (required with verify)",
     "\"/etc/ssl/certs/ca-certificates.crt\""},
    {"sni", Kind::kString, "\"\"", "server name sent and verified; empty = none"},
    {"alpn", Kind::kStringOrList, "",
     "protocols offered to the endpoints; a cluster of an http listener may offer only "
     "http/1.1 (what it speaks upstream)",
     "[\"http/1.1\"]"},
    {"min_version", Kind::kString, "\"1.2\"", "1.2 | 1.3"},
    {"cert", Kind::kString, "\"\"", "client certificate for mTLS to the endpoints"},
    {"key", Kind::kString, "\"\"", "its private key"},
};

// Listener keys that apply to protocol = "http".
constexpr KeySpec kHttpListenerKeys[] = {
    {"http_request_timeout_ms", Kind::kInt, "10000",
     "http: the whole request head must arrive within this (slowloris): 408"},
    {"keep_alive_timeout_ms", Kind::kInt, "60000", "http: idle time allowed between requests"},
    {"min_request_body_rate", Kind::kInt, "1024",
     "http: bytes/s a request body must average over body_rate_window_ms (slow POST); 0 = off"},
    {"body_rate_window_ms", Kind::kInt, "10000", "http: window for min_request_body_rate"},
    {"tunnel_timeout_ms", Kind::kInt, "3600000",
     "http: idle timeout of WebSocket and CONNECT tunnels"},
    {"max_header_bytes", Kind::kInt, "16384", "http: the whole request head: 431 past it"},
    {"max_headers", Kind::kInt, "100", "http: header fields per request: 431 past it"},
    {"max_request_line_bytes", Kind::kInt, "8192", "http: the request line: 414 past it"},
    {"max_body_bytes", Kind::kInt, "1073741824", "http: request body: 413 past it"},
    {"x_forwarded_for", Kind::kString, "\"append\"",
     "http: append | replace | off (X-Forwarded-For with the client address)"},
    {"x_forwarded_proto", Kind::kBool, "true", "http: add X-Forwarded-Proto"},
    {"forwarded", Kind::kBool, "false", "http: add an RFC 7239 Forwarded field"},
    {"via", Kind::kBool, "true", "http: add Via to requests and responses"},
    {"http2", Kind::kBool, "true",
     "http: accept HTTP/2 (TLS: ALPN h2, offered first by default; cleartext: prior knowledge, "
     "on the same port as HTTP/1.1)"},
    {"http2_max_concurrent_streams", Kind::kInt, "100",
     "http: streams one HTTP/2 client may have open (SETTINGS_MAX_CONCURRENT_STREAMS)"},
    {"http2_initial_window_bytes", Kind::kInt, "2097152",
     "http: HTTP/2 request body window per stream (SETTINGS_INITIAL_WINDOW_SIZE)"},
    {"http2_connection_window_bytes", Kind::kInt, "4194304",
     "http: HTTP/2 request body window of a connection: the most request body one client "
     "connection makes the proxy hold"},
    {"http2_max_requests_per_connection", Kind::kInt, "10000",
     "http: streams one HTTP/2 connection may open; then GOAWAY (the client reconnects)"},
    {"http2_settings_timeout_ms", Kind::kInt, "10000",
     "http: a client that does not acknowledge our SETTINGS in time gets GOAWAY "
     "SETTINGS_TIMEOUT"},
    {"http2_stall_timeout_ms", Kind::kInt, "30000",
     "http: an HTTP/2 stream whose response cannot move (the client's window stays shut) is "
     "reset after this long; when every stream is, the connection is closed"},
};

constexpr KeySpec kRouteKeys[] = {
    {"match", Kind::kTable, "", "what the route applies to (all matchers must hold)"},
    {"cluster", Kind::kString, "", "forward to this cluster..."},
    {"respond", Kind::kTable, "", "...or answer: { status, headers, body }"},
    {"request_headers", Kind::kTable, "", "{ set = {..}, add = {..}, remove = [..] } on requests"},
    {"response_headers", Kind::kTable, "", "the same on responses"},
    {"allow_connect", Kind::kBool, "false",
     "forward CONNECT requests (a raw tunnel to what the endpoint reaches); otherwise 405"},
};

constexpr KeySpec kMatchKeys[] = {
    {"host", Kind::kStringOrList, "", "exact or \"*.suffix\" hosts, case-insensitive"},
    {"path", Kind::kString, "", "exact path"},
    {"path_prefix", Kind::kString, "", "path prefix"},
    {"path_regex", Kind::kString, "", "RE2 regular expression, full match on the path"},
    {"method", Kind::kStringOrList, "", "methods, exact"},
    {"header", Kind::kArray, "",
     "{ name = \"x\", present = true } | { name, absent = true } | { name, equals = \"v\" } | "
     "{ name, regex = \"..\" }, or a list of them"},
    {"source", Kind::kStringOrList, "", "client address CIDRs"},
    {"sni", Kind::kStringOrList, "", "tcp listeners: the TLS ClientHello's server name"},
};

constexpr KeySpec kHeaderMatchKeys[] = {
    {"name", Kind::kString, "", "field name"},
    {"present", Kind::kBool, "", "the field is present"},
    {"absent", Kind::kBool, "", "the field is absent"},
    {"equals", Kind::kString, "", "some occurrence equals this"},
    {"regex", Kind::kString, "", "some occurrence fully matches this RE2 expression"},
};

constexpr KeySpec kRespondKeys[] = {
    {"status", Kind::kInt, "200", "status code"},
    {"headers", Kind::kTable, "", "fields to send"},
    {"body", Kind::kString, "\"\"", "the body"},
};

constexpr KeySpec kHeaderRuleKeys[] = {
    {"set", Kind::kTable, "", "replace (or add) these fields"},
    {"add", Kind::kTable, "", "append these fields"},
    {"remove", Kind::kArray, "", "remove these fields"},
};

constexpr KeySpec kClusterKeys[] = {
    {"name", Kind::kString, "", "required, unique", "\"app\""},
    {"balancer", Kind::kString, "\"round_robin\"",
     "round_robin | weighted_round_robin | least_connections | random (power of two choices) | "
     "source_hash (Maglev on the client address)"},
    {"connect_timeout_ms", Kind::kInt, "2000", "upstream connect timeout"},
    {"server_idle_timeout_ms", Kind::kInt, "60000",
     "close a session after this long without a byte either way"},
    {"queue_timeout_ms", Kind::kInt, "5000",
     "how long a session waits for an endpoint below its maxconn"},
    {"max_queue", Kind::kInt, "10000", "sessions waiting per worker; past it, refused at once"},
    {"retries", Kind::kInt, "2", "connect attempts after the first one fails"},
    {"redispatch", Kind::kBool, "true", "retry on another endpoint rather than the same one"},
    {"endpoints", Kind::kArray, "", "required: one table per endpoint (keys below)",
     "[\n  { address = \"127.0.0.1:9001\" },\n  { address = \"127.0.0.1:9002\", weight = 3, "
     "maxconn = 100 },\n  { address = \"127.0.0.1:9003\", backup = true },\n]"},
    {"health_check", Kind::kTable, "", "active health checks (off when absent)"},
    {"keep_alive_max_idle", Kind::kInt, "1024",
     "http: idle upstream connections kept per endpoint and worker"},
    {"keep_alive_timeout_ms", Kind::kInt, "30000",
     "http: how long an idle upstream connection is kept"},
    {"protocol", Kind::kString, "\"http1\"",
     "http: what http listeners speak to the endpoints: http1 | h2 (HTTP/2: ALPN h2 over TLS, "
     "prior knowledge in cleartext; needed for gRPC)"},
    {"h2_max_streams_per_connection", Kind::kInt, "100",
     "h2: concurrent streams per upstream connection (and at most the endpoint's own limit)"},
    {"h2_max_connections", Kind::kInt, "4",
     "h2: connections per endpoint and worker; past it, streams share the least loaded one"},
    {"h2_max_requests_per_connection", Kind::kInt, "0",
     "h2: streams per connection over its life, then a new one (0 = no limit)"},
    {"h2_max_connection_age_ms", Kind::kInt, "0",
     "h2: a connection older than this takes no new stream (0 = no limit)"},
    {"h2_ping_idle_ms", Kind::kInt, "10000",
     "h2: a connection quiet this long is PINGed before a new stream goes on it (0 = never)"},
    {"h2_initial_window_bytes", Kind::kInt, "1048576",
     "h2: response body an endpoint may send on one stream before we credit it "
     "(SETTINGS_INITIAL_WINDOW_SIZE); also what one paused stream may hold"},
    {"h2_connection_window_bytes", Kind::kInt, "16777216",
     "h2: response body an endpoint may send on one connection, all streams together, before "
     "we credit it"},
    {"send_proxy", Kind::kString, "\"off\"",
     "off | v1 | v2: a PROXY protocol header before every connection's first byte (v2 carries "
     "ALPN, SNI and TLS details where we terminated TLS); health checks send a LOCAL header; "
     "an HTTP/1.1 connection is then reused only for the client connection it was opened for"},
    {"tls", Kind::kTable, "", "TLS to the endpoints (keys below)"},
};

constexpr KeySpec kEndpointKeys[] = {
    {"address", Kind::kString, "", "required: \"IPv4:port\" or \"[IPv6]:port\""},
    {"weight", Kind::kInt, "1", "relative share of new sessions (0 = drain), at most 256"},
    {"maxconn", Kind::kInt, "0",
     "concurrent sessions to this endpoint (all workers); 0 = unlimited; excess waits in the "
     "queue"},
    {"backup", Kind::kBool, "false", "used only when no primary endpoint is up"},
};

constexpr KeySpec kHealthKeys[] = {
    {"type", Kind::kString, "\"tcp\"",
     "tcp (connect) | http (request, check the status; over TLS on a cluster with tls)"},
    {"interval_ms", Kind::kInt, "2000", "time between checks of one endpoint"},
    {"timeout_ms", Kind::kInt, "1000", "a check slower than this fails"},
    {"rise", Kind::kInt, "2", "consecutive successes that mark a down endpoint up"},
    {"fall", Kind::kInt, "3", "consecutive failures that mark an up endpoint down"},
    {"path", Kind::kString, "\"/\"", "http: request path"},
    {"expect_status", Kind::kInt, "200", "http: the status that counts as healthy"},
};

// --- reading -----------------------------------------------------------------

SourceLoc loc_of(const toml::source_region& r) {
  return SourceLoc{static_cast<uint32_t>(r.begin.line), static_cast<uint32_t>(r.begin.column)};
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    default:
      return "nothing";
  }
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kString:
      return "a string";
    case Kind::kInt:
      return "an integer";
    case Kind::kBool:
      return "a boolean";
    case Kind::kStringOrList:
      return "a string or an array of strings";
    case Kind::kTable:
      return "a table";
    case Kind::kArrayOfTables:
      return "an array of tables";
    case Kind::kArray:
      return "an array";
  }
  return "?";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

class Context {
 public:
  explicit Context(std::string path) : path_(std::move(path)) {}
  template <class... A>
  void error(SourceLoc loc, fmt::format_string<A...> f, A&&... args) {
    errors_.push_back(ConfigError{path_, loc, fmt::format(f, std::forward<A>(args)...)});
  }
  std::vector<ConfigError>& errors() { return errors_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<ConfigError> errors_;
};

// Reads the keys of one table against its specification. Unknown keys and
// wrong types are reported as they are found; absent keys take the default
// from the spec.
class Reader {
 public:
  Reader(Context& ctx, const toml::table& t, std::string where, std::span<const KeySpec> specs)
      : ctx_(ctx), t_(t), where_(std::move(where)), specs_(specs) {
    for (auto&& [key, value] : t_) {
      const std::string_view k = key.str();
      if (spec(k)) continue;
      std::string expected;
      std::string_view suggestion;
      size_t best = 3;
      for (const auto& s : specs_) {
        if (!expected.empty()) expected += ", ";
        expected += s.name;
        const size_t d = edit_distance(k, s.name);
        if (d < best) {
          best = d;
          suggestion = s.name;
        }
      }
      if (!suggestion.empty()) {
        ctx_.error(loc_of(key.source()), "unknown key '{}' in {}; did you mean '{}'?", k, where_,
                   suggestion);
      } else {
        ctx_.error(loc_of(key.source()), "unknown key '{}' in {} (expected one of: {})", k, where_,
                   expected);
      }
    }
  }

  SourceLoc table_loc() const { return loc_of(t_.source()); }
  SourceLoc loc(std::string_view key) const {
    const toml::node* n = t_.get(key);
    return n ? loc_of(n->source()) : table_loc();
  }
  const toml::node* node(std::string_view key) const { return t_.get(key); }
  const std::string& where() const { return where_; }

  // A required or defaulted string.
  std::string string(std::string_view key) {
    const KeySpec* s = spec(key);
    const toml::node* n = t_.get(key);
    if (!n) {
      if (s && !s->def.empty()) return std::string(s->def.substr(1, s->def.size() - 2));
      if (s && s->def.empty() && s->kind == Kind::kString && required(key)) {
        ctx_.error(table_loc(), "missing required key '{}' in {}", key, where_);
      }
      return {};
    }
    if (auto v = n->value<std::string>()) return *v;
    wrong_type(*n, key, Kind::kString);
    return {};
  }

  uint32_t u32(std::string_view key, uint64_t min, uint64_t max) {
    const KeySpec* s = spec(key);
    const toml::node* n = t_.get(key);
    int64_t v = 0;
    if (!n) {
      if (s) std::from_chars(s->def.data(), s->def.data() + s->def.size(), v);
      return static_cast<uint32_t>(v);
    }
    if (!n->is_integer()) {
      wrong_type(*n, key, Kind::kInt);
      return static_cast<uint32_t>(min);
    }
    v = *n->value<int64_t>();
    if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > max) {
      ctx_.error(loc_of(n->source()), "'{}' in {} must be between {} and {}, found {}", key, where_,
                 min, max, v);
      return static_cast<uint32_t>(min);
    }
    return static_cast<uint32_t>(v);
  }

  // A non-negative 64-bit integer (sizes beyond 4 GiB).
  uint64_t u32_or_u64(std::string_view key) {
    const KeySpec* s = spec(key);
    const toml::node* n = t_.get(key);
    int64_t v = 0;
    if (!n) {
      if (s) std::from_chars(s->def.data(), s->def.data() + s->def.size(), v);
      return static_cast<uint64_t>(v);
    }
    if (!n->is_integer() || *n->value<int64_t>() < 0) {
      ctx_.error(loc_of(n->source()), "'{}' in {} must be a non-negative integer", key, where_);
      return 0;
    }
    return static_cast<uint64_t>(*n->value<int64_t>());
  }

  bool boolean(std::string_view key) {
    const KeySpec* s = spec(key);
    const toml::node* n = t_.get(key);
    if (!n) return s && s->def == "true";
    if (auto v = n->value<bool>()) return *v;
    wrong_type(*n, key, Kind::kBool);
    return false;
  }

  const toml::table* table(std::string_view key) {
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    wrong_type(*n, key, Kind::kTable);
    return nullptr;
  }

  const toml::array* array(std::string_view key, Kind kind) {
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (const toml::array* a = n->as_array()) return a;
    wrong_type(*n, key, kind);
    return nullptr;
  }

  void wrong_type(const toml::node& n, std::string_view key, Kind expected) {
    ctx_.error(loc_of(n.source()), "'{}' in {} must be {}, found {}", key, where_,
               kind_name(expected), type_name(n));
  }

 private:
  const KeySpec* spec(std::string_view key) const {
    for (const auto& s : specs_) {
      if (s.name == key) return &s;
    }
    return nullptr;
  }
  static bool required(std::string_view key) { return key == "name"; }

  Context& ctx_;
  const toml::table& t_;
  std::string where_;
  std::span<const KeySpec> specs_;
};

std::optional<SocketAddress> parse_address(Context& ctx, const toml::node& n, std::string_view what,
                                           std::string* text) {
  auto s = n.value<std::string>();
  if (!s) {
    ctx.error(loc_of(n.source()), "{} must be a string like \"127.0.0.1:9000\", found {}", what,
              type_name(n));
    return std::nullopt;
  }
  if (text) *text = *s;
  auto a = SocketAddress::parse(*s);
  if (!a) {
    ctx.error(loc_of(n.source()),
              "bad {} '{}': expected IPv4:port or [IPv6]:port with a numeric address and a port "
              "of 0-65535",
              what, *s);
  }
  return a;
}

void read_global(Context& ctx, const toml::table* t, GlobalConfig& g) {
  static const toml::table kEmpty;
  Reader r(ctx, t ? *t : kEmpty, "[global]", kGlobalKeys);
  g.workers = r.u32("workers", 0, 1024);
  g.grace_period_ms = r.u32("grace_period_ms", 0, 3'600'000);
  g.drain_idle_ms = r.u32("drain_idle_ms", 0, 3'600'000);
  const std::string level = r.string("log_level");
  if (auto l = log::parse_level(level)) {
    g.log_level = *l;
  } else {
    ctx.error(r.loc("log_level"),
              "log_level '{}' is not one of trace, debug, info, warn, error, off", level);
  }
  g.tls_ticket_rotation_s = r.u32("tls_ticket_rotation_s", 1, 7 * 86400);
  g.user = r.string("user");
  g.group = r.string("group");
  if (!g.user.empty() && ::getpwnam(g.user.c_str()) == nullptr) {
    ctx.error(r.loc("user"), "user '{}' in [global] does not exist on this system", g.user);
  }
  if (!g.group.empty() && g.user.empty()) {
    ctx.error(r.loc("group"), "group in [global] needs user (the user to run as)");
  }
  if (!g.group.empty() && ::getgrnam(g.group.c_str()) == nullptr) {
    ctx.error(r.loc("group"), "group '{}' in [global] does not exist on this system", g.group);
  }
  g.buffer_count = r.u32("buffer_count", 16, 32768);
  if (g.buffer_count & (g.buffer_count - 1)) {
    ctx.error(r.loc("buffer_count"), "buffer_count must be a power of two, found {}",
              g.buffer_count);
  }
  g.buffer_size = r.u32("buffer_size", 1024, 1u << 20);
  if (g.buffer_size % 64) {
    ctx.error(r.loc("buffer_size"), "buffer_size must be a multiple of 64, found {}",
              g.buffer_size);
  }
  g.max_pipes = r.u32("max_pipes", 0, 65536);
  g.pipe_size = r.u32("pipe_size", 4096, 1u << 30);
  g.max_sessions = r.u32("max_sessions", 1, 10'000'000);
}

void read_health(Context& ctx, const toml::table& t, const std::string& where,
                 HealthCheckConfig& h) {
  Reader r(ctx, t, where, kHealthKeys);
  const std::string type = r.string("type");
  if (type == "tcp") {
    h.type = HealthCheckConfig::Type::kTcp;
  } else if (type == "http") {
    h.type = HealthCheckConfig::Type::kHttp;
  } else {
    ctx.error(r.loc("type"), "health check type '{}' is not one of tcp, http", type);
  }
  h.interval_ms = r.u32("interval_ms", 10, 3'600'000);
  h.timeout_ms = r.u32("timeout_ms", 1, 3'600'000);
  h.rise = r.u32("rise", 1, 1000);
  h.fall = r.u32("fall", 1, 1000);
  h.path = r.string("path");
  if (h.path.empty() || h.path.front() != '/') {
    ctx.error(r.loc("path"), "health check path must start with '/', found '{}'", h.path);
  }
  h.expect_status = r.u32("expect_status", 100, 599);
}

// "[[kind]] 'name'" when the table has a string name, else "[[kind]] #n".
std::string section_name(const toml::table& t, std::string_view kind, size_t index) {
  if (auto n = t["name"].value<std::string>(); n && !n->empty()) {
    return fmt::format("[[{}]] '{}'", kind, *n);
  }
  return fmt::format("[[{}]] #{}", kind, index + 1);
}

void read_tls_cluster(Context& ctx, const toml::table& t, const std::string& where,
                      TlsClusterConfig& tls);

void read_cluster(Context& ctx, const toml::table& t, size_t index, ClusterConfig& c) {
  const std::string where = section_name(t, "cluster", index);
  Reader r(ctx, t, where, kClusterKeys);
  c.loc = r.table_loc();
  c.name = r.string("name");
  const std::string bal = r.string("balancer");
  if (auto a = balancer::parse_algorithm(bal)) {
    c.balancer = *a;
  } else {
    ctx.error(r.loc("balancer"),
              "balancer '{}' in {} is not one of round_robin, weighted_round_robin, "
              "least_connections, random, source_hash",
              bal, where);
  }
  c.connect_timeout_ms = r.u32("connect_timeout_ms", 1, 3'600'000);
  c.server_idle_timeout_ms = r.u32("server_idle_timeout_ms", 1, 86'400'000);
  c.queue_timeout_ms = r.u32("queue_timeout_ms", 1, 3'600'000);
  c.max_queue = r.u32("max_queue", 0, 10'000'000);
  c.keep_alive_max_idle = r.u32("keep_alive_max_idle", 0, 100000);
  c.keep_alive_timeout_ms = r.u32("keep_alive_timeout_ms", 1, 86'400'000);
  c.retries = r.u32("retries", 0, 100);
  c.redispatch = r.boolean("redispatch");
  if (const std::string proto = r.string("protocol"); proto == "h2") {
    c.http_protocol = ClusterConfig::HttpProtocol::kH2;
  } else if (proto != "http1") {
    ctx.error(r.loc("protocol"), "protocol '{}' in {} is not one of http1, h2", proto, where);
  }
  c.h2_max_streams = r.u32("h2_max_streams_per_connection", 1, 100000);
  c.h2_max_connections = r.u32("h2_max_connections", 1, 10000);
  c.h2_max_requests = r.u32("h2_max_requests_per_connection", 0, 1'000'000'000);
  c.h2_max_age_ms = r.u32("h2_max_connection_age_ms", 0, 86'400'000 * 7);
  c.h2_ping_idle_ms = r.u32("h2_ping_idle_ms", 0, 86'400'000);
  c.h2_initial_window = r.u32("h2_initial_window_bytes", 65535, (1u << 31) - 1);
  c.h2_connection_window = r.u32("h2_connection_window_bytes", 65535, (1u << 31) - 1);
  if (const std::string sp = r.string("send_proxy"); sp == "v1") {
    c.send_proxy = ClusterConfig::SendProxy::kV1;
  } else if (sp == "v2") {
    c.send_proxy = ClusterConfig::SendProxy::kV2;
  } else if (sp != "off") {
    ctx.error(r.loc("send_proxy"), "send_proxy '{}' in {} is not one of off, v1, v2", sp, where);
  }
  c.health_check.proxy_version = static_cast<uint8_t>(c.send_proxy);
  if (c.send_proxy != ClusterConfig::SendProxy::kOff &&
      c.http_protocol == ClusterConfig::HttpProtocol::kH2) {
    ctx.error(r.loc("send_proxy"),
              "send_proxy in {} cannot be used with protocol = \"h2\": an HTTP/2 connection "
              "carries many clients' streams, and its header could name only one",
              where);
  }
  if (const toml::table* tls = r.table("tls")) {
    read_tls_cluster(ctx, *tls, where + " tls", c.tls.emplace());
  }
  if (const toml::table* h = r.table("health_check")) {
    read_health(ctx, *h, where + " health_check", c.health_check);
  }
  const toml::array* eps = r.array("endpoints", Kind::kArray);
  if (!eps) {
    if (!r.node("endpoints")) ctx.error(c.loc, "missing required key 'endpoints' in {}", where);
    return;
  }
  if (eps->empty()) ctx.error(r.loc("endpoints"), "{} has no endpoints", where);
  for (size_t i = 0; i < eps->size(); ++i) {
    const toml::node& n = *eps->get(i);
    const toml::table* et = n.as_table();
    if (!et) {
      ctx.error(loc_of(n.source()),
                "endpoint #{} of {} must be a table like {{ address = \"127.0.0.1:9001\" }}, "
                "found {}",
                i + 1, where, type_name(n));
      continue;
    }
    EndpointConfig e;
    Reader er(ctx, *et, fmt::format("endpoint #{} of {}", i + 1, where), kEndpointKeys);
    e.loc = er.table_loc();
    if (const toml::node* a = er.node("address")) {
      if (auto addr = parse_address(ctx, *a, "endpoint address", &e.address_text)) {
        e.address = *addr;
        if (addr->port() == 0) ctx.error(loc_of(a->source()), "endpoint port must not be 0");
      }
    } else {
      ctx.error(e.loc, "missing required key 'address' in endpoint #{} of {}", i + 1, where);
    }
    e.weight = er.u32("weight", 0, 256);
    e.maxconn = er.u32("maxconn", 0, 10'000'000);
    e.backup = er.boolean("backup");
    for (const auto& prev : c.endpoints) {
      if (e.address.valid() && prev.address == e.address) {
        ctx.error(e.loc, "duplicate endpoint {} in {} (first at line {})", e.address_text, where,
                  prev.loc.line);
      }
    }
    c.endpoints.push_back(std::move(e));
  }
}

// A string or an array of strings, into `out`; errors name `what`.
void read_string_list(Context& ctx, Reader& r, std::string_view key,
                      std::vector<std::string>& out) {
  const toml::node* n = r.node(key);
  if (!n) return;
  if (auto v = n->value<std::string>()) {
    out.push_back(*v);
    return;
  }
  if (const toml::array* a = n->as_array()) {
    for (const auto& e : *a) {
      if (auto v = e.value<std::string>()) {
        out.push_back(*v);
      } else {
        ctx.error(loc_of(e.source()), "'{}' in {} must list strings, found {}", key, r.where(),
                  type_name(e));
      }
    }
    return;
  }
  r.wrong_type(*n, key, Kind::kStringOrList);
}

// A table of string values ({ "x-env" = "prod" }) into pairs, in file order.
void read_string_table(Context& ctx, const toml::table& t, const std::string& where,
                       std::vector<std::pair<std::string, std::string>>& out) {
  for (auto&& [k, v] : t) {
    if (auto s = v.value<std::string>()) {
      out.emplace_back(std::string(k.str()), *s);
    } else {
      ctx.error(loc_of(v.source()), "'{}' in {} must be a string, found {}", k.str(), where,
                type_name(v));
    }
  }
}

bool valid_field_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    const bool tchar = std::isalnum(static_cast<unsigned char>(c)) ||
                       std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!tchar) return false;
  }
  return true;
}

bool valid_field_value(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

void read_header_rules(Context& ctx, const toml::table& t, const std::string& where,
                       HeaderRulesConfig& rules) {
  Reader r(ctx, t, where, kHeaderRuleKeys);
  if (const toml::table* set = r.table("set"))
    read_string_table(ctx, *set, where + " set", rules.set);
  if (const toml::table* add = r.table("add"))
    read_string_table(ctx, *add, where + " add", rules.add);
  read_string_list(ctx, r, "remove", rules.remove);
  auto check = [&](std::string_view name, std::string_view value, SourceLoc loc) {
    if (!valid_field_name(name))
      ctx.error(loc, "'{}' in {} is not a valid header name", name, where);
    if (!valid_field_value(value)) {
      ctx.error(loc, "the value of '{}' in {} contains control characters", name, where);
    }
  };
  for (const auto& [n, v] : rules.set)
    check(n, v, r.loc("set"));
  for (const auto& [n, v] : rules.add)
    check(n, v, r.loc("add"));
  for (const auto& n : rules.remove)
    check(n, "", r.loc("remove"));
}

bool valid_cidr(std::string_view text) {
  return route::Cidr::parse(text).has_value();
}

void check_regex(Context& ctx, const std::string& pattern, SourceLoc loc,
                 const std::string& where) {
  // The same compilation (byte mode) the router uses.
  if (auto re = route::Regex::compile(pattern); !re) {
    ctx.error(loc, "bad regular expression in {}: {}", where, re.error());
  }
}

void read_route(Context& ctx, const toml::table& t, const std::string& where, RouteConfig& route) {
  Reader r(ctx, t, where, kRouteKeys);
  route.loc = r.table_loc();
  if (const toml::table* m = r.table("match")) {
    const std::string mwhere = where + " match";
    Reader mr(ctx, *m, mwhere, kMatchKeys);
    auto& rm = route.match;
    read_string_list(ctx, mr, "host", rm.hosts);
    if (mr.node("sni")) {
      read_string_list(ctx, mr, "sni", rm.hosts);
      route.by_sni = true;
    }
    for (auto& h : rm.hosts) {
      std::transform(h.begin(), h.end(), h.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (h.empty() || h.find_first_of(" /\t") != std::string::npos) {
        ctx.error(mr.loc("host"), "host '{}' in {} is not a host name", h, mwhere);
      }
    }
    rm.path = mr.string("path");
    rm.path_prefix = mr.string("path_prefix");
    rm.path_regex = mr.string("path_regex");
    for (const std::string* p : {&rm.path, &rm.path_prefix}) {
      if (!p->empty() && p->front() != '/') {
        ctx.error(mr.loc(p == &rm.path ? "path" : "path_prefix"), "paths in {} must start with '/'",
                  mwhere);
      }
    }
    if (!rm.path_regex.empty()) check_regex(ctx, rm.path_regex, mr.loc("path_regex"), mwhere);
    read_string_list(ctx, mr, "method", rm.methods);
    read_string_list(ctx, mr, "source", rm.sources);
    for (const auto& c : rm.sources) {
      if (!valid_cidr(c)) {
        ctx.error(mr.loc("source"),
                  "source '{}' in {} is not an address or CIDR (10.0.0.0/8, ::1/128)", c, mwhere);
      }
    }
    if (const toml::node* hn = mr.node("header")) {
      std::vector<const toml::table*> tables;
      if (const toml::table* one = hn->as_table()) {
        tables.push_back(one);
      } else if (const toml::array* arr = hn->as_array()) {
        for (const auto& e : *arr) {
          if (const toml::table* et = e.as_table()) {
            tables.push_back(et);
          } else {
            ctx.error(loc_of(e.source()), "'header' in {} must list tables, found {}", mwhere,
                      type_name(e));
          }
        }
      } else {
        mr.wrong_type(*hn, "header", Kind::kTable);
      }
      for (const toml::table* ht : tables) {
        const std::string hwhere = mwhere + " header";
        Reader hr(ctx, *ht, hwhere, kHeaderMatchKeys);
        HeaderMatchConfig hm;
        hm.name = hr.string("name");
        if (hm.name.empty()) ctx.error(hr.table_loc(), "{} needs a 'name'", hwhere);
        int kinds = 0;
        if (hr.node("present")) {
          hm.kind = HeaderMatchConfig::Kind::kPresent;
          ++kinds;
          if (!hr.boolean("present")) hm.kind = HeaderMatchConfig::Kind::kAbsent;
        }
        if (hr.node("absent")) {
          hm.kind = hr.boolean("absent") ? HeaderMatchConfig::Kind::kAbsent
                                         : HeaderMatchConfig::Kind::kPresent;
          ++kinds;
        }
        if (hr.node("equals")) {
          hm.kind = HeaderMatchConfig::Kind::kEquals;
          hm.value = hr.string("equals");
          ++kinds;
        }
        if (hr.node("regex")) {
          hm.kind = HeaderMatchConfig::Kind::kRegex;
          hm.value = hr.string("regex");
          check_regex(ctx, hm.value, hr.loc("regex"), hwhere);
          ++kinds;
        }
        if (kinds != 1) {
          ctx.error(hr.table_loc(), "{} needs exactly one of present, absent, equals, regex",
                    hwhere);
        }
        rm.headers.push_back(std::move(hm));
      }
    }
  }
  route.cluster = r.string("cluster");
  route.allow_connect = r.boolean("allow_connect");
  if (const toml::table* resp = r.table("respond")) {
    const std::string rwhere = where + " respond";
    Reader rr(ctx, *resp, rwhere, kRespondKeys);
    RespondConfig rc;
    rc.status = rr.u32("status", 200, 599);
    rc.body = rr.string("body");
    if (const toml::table* h = rr.table("headers")) read_string_table(ctx, *h, rwhere, rc.headers);
    for (const auto& [n, v] : rc.headers) {
      if (!valid_field_name(n) || !valid_field_value(v)) {
        ctx.error(rr.loc("headers"), "header '{}' in {} is not a valid field", n, rwhere);
      }
    }
    route.respond = std::move(rc);
  }
  if (route.cluster.empty() == !route.respond.has_value()) {
    ctx.error(route.loc, "{} needs exactly one of 'cluster' and 'respond'", where);
  }
  if (const toml::table* h = r.table("request_headers")) {
    read_header_rules(ctx, *h, where + " request_headers", route.request_headers);
  }
  if (const toml::table* h = r.table("response_headers")) {
    read_header_rules(ctx, *h, where + " response_headers", route.response_headers);
  }
}

const std::vector<KeySpec>& all_listener_keys() {
  static const std::vector<KeySpec> keys = [] {
    std::vector<KeySpec> v(std::begin(kListenerKeys), std::end(kListenerKeys));
    v.insert(v.end(), std::begin(kHttpListenerKeys), std::end(kHttpListenerKeys));
    return v;
  }();
  return keys;
}

bool check_version(Context& ctx, Reader& r, std::string_view key, const std::string& where,
                   std::string& out) {
  out = r.string(key);
  if (out != "1.2" && out != "1.3") {
    ctx.error(r.loc(key), "{} in {} must be \"1.2\" or \"1.3\", found \"{}\"", key, where, out);
    return false;
  }
  return true;
}

void check_readable(Context& ctx, const std::string& path, SourceLoc loc, std::string_view what) {
  if (path.empty()) return;
  if (::access(path.c_str(), R_OK) != 0) {
    ctx.error(loc, "{} '{}' cannot be read: {}", what, path, std::strerror(errno));
  }
}

void read_tls_listener(Context& ctx, const toml::table& t, const std::string& where,
                       TlsListenerConfig& tls) {
  Reader r(ctx, t, where, kTlsListenerKeys);
  tls.loc = r.table_loc();
  if (const toml::array* certs = r.array("certificates", Kind::kArray)) {
    for (const auto& n : *certs) {
      const toml::table* ct = n.as_table();
      if (!ct) {
        ctx.error(loc_of(n.source()), "certificates in {} must list tables {{ cert, key }}", where);
        continue;
      }
      Reader cr(ctx, *ct, where + " certificate", kTlsCertKeys);
      TlsListenerConfig::Certificate c{cr.string("cert"), cr.string("key")};
      if (c.cert.empty() || c.key.empty()) {
        ctx.error(cr.table_loc(), "a certificate in {} needs both 'cert' and 'key'", where);
      }
      check_readable(ctx, c.cert, cr.loc("cert"), "certificate file");
      check_readable(ctx, c.key, cr.loc("key"), "key file");
      tls.certificates.push_back(std::move(c));
    }
  }
  if (tls.certificates.empty()) {
    ctx.error(tls.loc, "{} needs at least one certificate: certificates = [{{ cert, key }}]",
              where);
  }
  check_version(ctx, r, "min_version", where, tls.min_version);
  check_version(ctx, r, "max_version", where, tls.max_version);
  if (tls.min_version > tls.max_version) {
    ctx.error(r.loc("min_version"), "min_version is above max_version in {}", where);
  }
  tls.ciphers = r.string("ciphers");
  tls.groups = r.string("groups");
  read_string_list(ctx, r, "alpn", tls.alpn);
  tls.client_ca = r.string("client_ca");
  check_readable(ctx, tls.client_ca, r.loc("client_ca"), "client CA file");
  tls.require_client_cert = r.boolean("require_client_cert");
  if (tls.require_client_cert && tls.client_ca.empty()) {
    ctx.error(r.loc("require_client_cert"), "require_client_cert in {} needs client_ca", where);
  }
  tls.client_subject_header = r.string("client_subject_header");
  if (!tls.client_subject_header.empty() && !valid_field_name(tls.client_subject_header)) {
    ctx.error(r.loc("client_subject_header"), "'{}' in {} is not a valid header name",
              tls.client_subject_header, where);
  }
  tls.session_tickets = r.boolean("session_tickets");
  constexpr uint32_t kMaxTicketLifetime = 7 * 86400;  // RFC 8446 4.6.1
  if (const toml::node* n = r.node("ticket_lifetime_s");
      n && n->is_integer() && *n->value<int64_t>() == 0) {
    // 0 is not "off" (a ticket of lifetime 0 would still be issued): say how.
    ctx.error(loc_of(n->source()),
              "'ticket_lifetime_s' in {} must be between 1 and {}, found 0; to issue no session "
              "tickets, set session_tickets = false",
              where, kMaxTicketLifetime);
  } else {
    tls.ticket_lifetime_s = r.u32("ticket_lifetime_s", 1, kMaxTicketLifetime);
  }
  tls.handshake_timeout_ms = r.u32("handshake_timeout_ms", 1, 3'600'000);
  tls.ktls = r.boolean("ktls");
}

void read_tls_cluster(Context& ctx, const toml::table& t, const std::string& where,
                      TlsClusterConfig& tls) {
  Reader r(ctx, t, where, kTlsClusterKeys);
  tls.loc = r.table_loc();
  tls.verify = r.boolean("verify");
  tls.ca_file = r.string("ca_file");
  if (tls.verify && tls.ca_file.empty()) {
    ctx.error(tls.loc, "{} verifies endpoints (verify = true) and needs ca_file", where);
  }
  check_readable(ctx, tls.ca_file, r.loc("ca_file"), "CA file");
  tls.sni = r.string("sni");
  read_string_list(ctx, r, "alpn", tls.alpn);
  tls.alpn_loc = r.loc("alpn");
  check_version(ctx, r, "min_version", where, tls.min_version);
  tls.cert = r.string("cert");
  tls.key = r.string("key");
  if (tls.cert.empty() != tls.key.empty()) {
    ctx.error(tls.loc, "{}: 'cert' and 'key' go together", where);
  }
  check_readable(ctx, tls.cert, r.loc("cert"), "certificate file");
  check_readable(ctx, tls.key, r.loc("key"), "key file");
}

void read_proxy_protocol(Context& ctx, const toml::table& t, const std::string& where,
                         std::optional<ProxyProtocolConfig>& out) {
  Reader r(ctx, t, where, kProxyProtocolKeys);
  ProxyProtocolConfig pp;
  pp.loc = r.table_loc();
  pp.timeout_ms = r.u32("timeout_ms", 1, 3'600'000);
  const bool accept = r.boolean("accept");
  if (!r.node("trusted")) {
    ctx.error(pp.loc,
              "missing required key 'trusted' in {}: the networks whose PROXY headers are "
              "believed, e.g. trusted = [\"10.0.0.0/8\"] ([\"0.0.0.0/0\", \"::/0\"] believes "
              "any source)",
              where);
  }
  read_string_list(ctx, r, "trusted", pp.trusted);
  if (r.node("trusted") && pp.trusted.empty()) {
    ctx.error(r.loc("trusted"), "'trusted' in {} is an empty list: no connection could pass",
              where);
  }
  for (const std::string& c : pp.trusted) {
    if (!valid_cidr(c)) {
      ctx.error(r.loc("trusted"),
                "bad network '{}' in {}: expected a CIDR like \"10.0.0.0/8\" or an address", c,
                where);
    }
  }
  if (accept) out = std::move(pp);
}

void read_access_log(Context& ctx, const toml::table& t, const std::string& where,
                     AccessLogConfig& out) {
  Reader r(ctx, t, where, kAccessLogKeys);
  out.loc = r.table_loc();
  out.path = r.string("path");
  if (!r.node("path")) ctx.error(out.loc, "missing required key 'path' in {}", where);
  out.format = r.string("format");
  out.buffer_bytes = r.u32("buffer_kb", 4, 1u << 20) * 1024u;
  if (!out.path.empty() && out.path != "-" && out.path.front() != '/') {
    ctx.error(r.loc("path"), "access log path '{}' in {} must be absolute (or \"-\")", out.path,
              where);
  }
  accesslog::Format f;
  std::string why;
  if (!accesslog::Format::compile(out.format, f, why)) {
    ctx.error(r.loc("format"), "access log format in {}: {}", where, why);
  }
}

void read_listener(Context& ctx, const toml::table& t, size_t index, ListenerConfig& l) {
  const std::string where = section_name(t, "listener", index);
  Reader r(ctx, t, where, all_listener_keys());
  l.loc = r.table_loc();
  l.name = r.string("name");
  const std::string proto = r.string("protocol");
  if (proto == "tcp") {
    l.protocol = Protocol::kTcp;
  } else if (proto == "http") {
    l.protocol = Protocol::kHttp;
  } else {
    ctx.error(r.loc("protocol"), "protocol '{}' in {} is not one of tcp, http", proto, where);
  }
  l.cluster = r.string("cluster");
  l.client_idle_timeout_ms = r.u32("client_idle_timeout_ms", 1, 86'400'000);
  HttpConfig& h = l.http;
  h.request_timeout_ms = r.u32("http_request_timeout_ms", 1, 3'600'000);
  h.keep_alive_timeout_ms = r.u32("keep_alive_timeout_ms", 1, 86'400'000);
  h.min_request_body_rate = r.u32("min_request_body_rate", 0, 1u << 30);
  h.body_rate_window_ms = r.u32("body_rate_window_ms", 100, 3'600'000);
  h.tunnel_timeout_ms = r.u32("tunnel_timeout_ms", 1, 86'400'000);
  h.max_header_bytes = r.u32("max_header_bytes", 256, 24576);
  h.max_headers = r.u32("max_headers", 1, 1000);
  h.max_request_line_bytes = r.u32("max_request_line_bytes", 64, 24576);
  h.max_body_bytes = r.u32_or_u64("max_body_bytes");
  const std::string xff = r.string("x_forwarded_for");
  if (xff == "append") {
    h.x_forwarded_for = HttpConfig::ForwardedFor::kAppend;
  } else if (xff == "replace") {
    h.x_forwarded_for = HttpConfig::ForwardedFor::kReplace;
  } else if (xff == "off") {
    h.x_forwarded_for = HttpConfig::ForwardedFor::kOff;
  } else {
    ctx.error(r.loc("x_forwarded_for"), "x_forwarded_for '{}' is not one of append, replace, off",
              xff);
  }
  h.x_forwarded_proto = r.boolean("x_forwarded_proto");
  h.forwarded = r.boolean("forwarded");
  h.via = r.boolean("via");
  h.http2 = r.boolean("http2");
  h.http2_max_concurrent_streams = r.u32("http2_max_concurrent_streams", 1, 10000);
  h.http2_initial_window_bytes = r.u32("http2_initial_window_bytes", 65535, (1u << 31) - 1);
  h.http2_connection_window_bytes = r.u32("http2_connection_window_bytes", 65535, (1u << 31) - 1);
  h.http2_max_requests_per_connection = r.u32("http2_max_requests_per_connection", 1, 1u << 30);
  h.http2_settings_timeout_ms = r.u32("http2_settings_timeout_ms", 100, 3'600'000);
  h.http2_stall_timeout_ms = r.u32("http2_stall_timeout_ms", 100, 86'400'000);
  if (const toml::table* tls = r.table("tls")) {
    read_tls_listener(ctx, *tls, where + " tls", l.tls.emplace());
  }
  if (const toml::table* pp = r.table("proxy_protocol")) {
    read_proxy_protocol(ctx, *pp, where + " proxy_protocol", l.proxy_protocol);
  }
  if (const toml::table* al = r.table("access_log")) {
    read_access_log(ctx, *al, where + " access_log", l.access_log.emplace());
  }
  if (const toml::array* routes = r.array("route", Kind::kArrayOfTables)) {
    for (size_t i = 0; i < routes->size(); ++i) {
      const toml::table* rt = routes->get(i)->as_table();
      if (!rt) continue;
      read_route(ctx, *rt, fmt::format("{} route #{}", where, i + 1), l.routes.emplace_back());
    }
  }
  auto add_bind = [&](const toml::node& n) {
    BindConfig b;
    b.loc = loc_of(n.source());
    if (auto a = parse_address(ctx, n, "bind address", &b.text)) {
      b.address = *a;
      l.binds.push_back(std::move(b));
    }
  };
  if (const toml::node* b = r.node("bind")) {
    if (b->is_string()) {
      add_bind(*b);
    } else if (const toml::array* arr = b->as_array()) {
      if (arr->empty()) ctx.error(loc_of(b->source()), "'bind' in {} is an empty list", where);
      for (const auto& n : *arr)
        add_bind(n);
    } else {
      r.wrong_type(*b, "bind", Kind::kStringOrList);
    }
  } else {
    ctx.error(l.loc, "missing required key 'bind' in {}", where);
  }
}

void validate(Context& ctx, Config& cfg) {
  std::vector<std::pair<std::string, SourceLoc>> seen;
  for (const auto& c : cfg.clusters) {
    if (c.name.empty()) continue;
    for (const auto& [n, loc] : seen) {
      if (n == c.name) {
        ctx.error(c.loc, "duplicate cluster name '{}' (first defined at line {})", c.name,
                  loc.line);
      }
    }
    seen.emplace_back(c.name, c.loc);
  }
  seen.clear();
  std::vector<std::pair<SocketAddress, SourceLoc>> binds;
  for (const auto& l : cfg.listeners) {
    if (!l.name.empty()) {
      for (const auto& [n, loc] : seen) {
        if (n == l.name) {
          ctx.error(l.loc, "duplicate listener name '{}' (first defined at line {})", l.name,
                    loc.line);
        }
      }
      seen.emplace_back(l.name, l.loc);
    }
    if (l.protocol == Protocol::kTcp && l.cluster.empty()) {
      ctx.error(l.loc, "missing required key 'cluster' in [[listener]] '{}' (tcp)", l.name);
    }
    for (const auto& route : l.routes) {
      const auto& m = route.match;
      if (l.protocol == Protocol::kTcp) {
        if (route.respond || !m.path.empty() || !m.path_prefix.empty() || !m.path_regex.empty() ||
            !m.methods.empty() || !m.headers.empty() || (!m.hosts.empty() && !route.by_sni) ||
            !route.request_headers.set.empty() || !route.request_headers.add.empty() ||
            !route.request_headers.remove.empty()) {
          ctx.error(route.loc,
                    "listener '{}' is tcp: its routes may match only sni and source, and must "
                    "name a cluster",
                    l.name);
        }
      } else if (route.by_sni) {
        ctx.error(route.loc, "listener '{}': 'sni' matches only on tcp listeners (use 'host')",
                  l.name);
      }
    }
    if (l.tls && l.protocol == Protocol::kHttp) {
      for (const auto& a : l.tls->alpn) {
        if (a == "h2" && !l.http.http2) {
          ctx.error(l.tls->loc, "listener '{}' tls: alpn 'h2' is offered but http2 = false",
                    l.name);
        } else if (a != "http/1.1" && a != "h2") {
          ctx.error(l.tls->loc,
                    "listener '{}' tls: alpn '{}' is not served by an http listener (it speaks "
                    "h2 and http/1.1)",
                    l.name, a);
        }
      }
    }
    if (l.protocol == Protocol::kHttp && l.cluster.empty() && l.routes.empty()) {
      ctx.error(l.loc, "[[listener]] '{}' (http) needs a 'cluster' or at least one route", l.name);
    }
    // What the router itself refuses (hosts with ports, paths that could
    // never match once normalised...), reported at the route's line.
    if (!l.routes.empty()) {
      if (auto router = route::Router::build(l.routes); !router) {
        const size_t i = router.error().route;
        ctx.error(i < l.routes.size() ? l.routes[i].loc : l.loc, "listener '{}': {}", l.name,
                  router.error().to_string());
      }
    }
    for (const auto& route : l.routes) {
      if (!route.cluster.empty() && !cfg.find_cluster(route.cluster)) {
        ctx.error(route.loc, "a route of listener '{}' names cluster '{}', which is not defined",
                  l.name, route.cluster);
      }
    }
    if (!l.cluster.empty() && !cfg.find_cluster(l.cluster)) {
      std::string known;
      for (const auto& c : cfg.clusters)
        known += (known.empty() ? "" : ", ") + c.name;
      ctx.error(l.loc, "listener '{}' names cluster '{}', which is not defined (clusters: {})",
                l.name, l.cluster, known.empty() ? "none" : known);
    }
    for (const auto& b : l.binds) {
      for (const auto& [a, loc] : binds) {
        if (a == b.address && b.address.port() != 0) {
          ctx.error(b.loc, "address {} is bound twice (also at line {})", b.text, loc.line);
        }
      }
      binds.emplace_back(b.address, b.loc);
    }
  }
  // A cluster an http listener forwards to is spoken to in HTTP/1.1 or,
  // with protocol = "h2", HTTP/2: an endpoint must not be able to pick
  // anything else in ALPN. tcp listeners relay bytes: any ALPN goes.
  for (auto& c : cfg.clusters) {
    const bool h2 = c.http_protocol == ClusterConfig::HttpProtocol::kH2;
    c.health_check.h2 = h2;
    if (c.tls && h2 && c.tls->alpn.empty()) c.tls->alpn = {"h2"};
    if (!c.tls) continue;
    const ListenerConfig* http_user = nullptr;
    for (const auto& l : cfg.listeners) {
      if (l.protocol != Protocol::kHttp) continue;
      bool uses = l.cluster == c.name;
      for (const auto& route : l.routes)
        uses = uses || route.cluster == c.name;
      if (uses) {
        http_user = &l;
        break;
      }
    }
    if (!http_user) continue;
    const std::string_view spoken = h2 ? "h2" : "http/1.1";
    std::vector<std::string_view> reported;
    for (const auto& a : c.tls->alpn) {
      if (a == spoken || std::find(reported.begin(), reported.end(), a) != reported.end()) {
        continue;
      }
      reported.push_back(a);
      ctx.error(c.tls->alpn_loc,
                "cluster '{}' tls: alpn '{}' cannot be used: http listener '{}' speaks {} to this "
                "cluster (protocol = \"{}\"), so alpn may list only \"{}\"",
                c.name, a, http_user->name, h2 ? "HTTP/2" : "HTTP/1.1", h2 ? "h2" : "http1",
                spoken);
    }
  }
  if (cfg.listeners.empty()) ctx.error(SourceLoc{}, "no [[listener]] defined: nothing to serve");
}

// [admin] socket and its ownership.
void read_admin_socket(Context& ctx, Reader& r, AdminConfig& a) {
  a.socket = r.string("socket");
  a.socket_loc = r.loc("socket");
  if (!a.socket.empty()) {
    if (a.socket.front() != '/') {
      ctx.error(a.socket_loc, "socket '{}' in [admin] must be an absolute path", a.socket);
    } else if (a.socket.size() >= sizeof(sockaddr_un::sun_path)) {
      ctx.error(a.socket_loc,
                "socket '{}' in [admin] is longer than a Unix socket path may be ({})", a.socket,
                sizeof(sockaddr_un::sun_path) - 1);
    }
  }
  const std::string mode = r.string("socket_mode");
  uint32_t m = 0;
  const auto [end, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), m, 8);
  if (mode.empty() || ec != std::errc{} || end != mode.data() + mode.size() || m > 0777) {
    ctx.error(r.loc("socket_mode"),
              "socket_mode '{}' in [admin] is not an octal permission such as \"0600\" or \"0660\"",
              mode);
  } else if (m & 0007) {
    ctx.error(r.loc("socket_mode"),
              "socket_mode '{}' in [admin] lets every local user in (whoever connects may reload, "
              "drain and upgrade): give access through socket_group instead",
              mode);
  } else {
    a.socket_mode = m;
  }
  a.socket_user = r.string("socket_user");
  a.socket_group = r.string("socket_group");
  if (!a.socket_user.empty() && ::getpwnam(a.socket_user.c_str()) == nullptr) {
    ctx.error(r.loc("socket_user"), "socket_user '{}' in [admin] does not exist on this system",
              a.socket_user);
  }
  if (!a.socket_group.empty() && ::getgrnam(a.socket_group.c_str()) == nullptr) {
    ctx.error(r.loc("socket_group"), "socket_group '{}' in [admin] does not exist on this system",
              a.socket_group);
  }
}

LoadResult load_table(Context& ctx, const toml::table& root) {
  auto cfg = std::make_shared<Config>();
  cfg->path = ctx.path();
  Reader top(ctx, root, "the top level", kTopKeys);
  read_global(ctx, top.table("global"), cfg->global);
  if (const toml::table* admin = top.table("admin")) {
    Reader r(ctx, *admin, "[admin]", kAdminKeys);
    if (const toml::node* m = r.node("metrics")) {
      cfg->admin.metrics_loc = loc_of(m->source());
      if (auto s = m->value<std::string>(); s && s->empty()) {
        // "": off
      } else if (auto a = parse_address(ctx, *m, "metrics address", &cfg->admin.metrics_text)) {
        cfg->admin.metrics = *a;
      }
    }
    read_admin_socket(ctx, r, cfg->admin);
  }
  if (const toml::array* cs = top.array("cluster", Kind::kArrayOfTables)) {
    for (size_t i = 0; i < cs->size(); ++i) {
      if (const toml::table* t = cs->get(i)->as_table()) {
        read_cluster(ctx, *t, i, cfg->clusters.emplace_back());
      }
    }
  }
  if (const toml::array* ls = top.array("listener", Kind::kArrayOfTables)) {
    for (size_t i = 0; i < ls->size(); ++i) {
      if (const toml::table* t = ls->get(i)->as_table()) {
        read_listener(ctx, *t, i, cfg->listeners.emplace_back());
      }
    }
  }
  validate(ctx, *cfg);
  if (cfg->global.workers == 0) {
    cfg->global.workers = std::max(1u, std::thread::hardware_concurrency());
  }
  LoadResult out;
  out.errors = std::move(ctx.errors());
  if (out.errors.empty()) out.config = std::move(cfg);
  return out;
}

LoadResult parse(std::string_view text, const std::string& path) {
  Context ctx(path);
  try {
    toml::table root = toml::parse(text, path);
    return load_table(ctx, root);
  } catch (const toml::parse_error& e) {
    ctx.error(loc_of(e.source()), "TOML syntax: {}", e.description());
  }
  LoadResult out;
  out.errors = std::move(ctx.errors());
  return out;
}

void emit_keys(std::string& out, std::span<const KeySpec> specs) {
  for (const auto& s : specs) {
    if (s.kind == Kind::kTable || s.kind == Kind::kArrayOfTables) continue;
    out += fmt::format("# {}\n", s.doc);
    out += fmt::format("{} = {}\n", s.name, s.def.empty() ? s.example : s.def);
  }
}

// The same, commented out (sections that need files to exist).
void emit_commented_keys(std::string& out, std::span<const KeySpec> specs) {
  for (const auto& s : specs) {
    out += fmt::format("#   # {}\n", s.doc);
    const std::string_view value =
        !s.example.empty() ? s.example : (s.def.empty() ? std::string_view("[]") : s.def);
    out += fmt::format("#   {} = {}\n", s.name, value);
  }
}

}  // namespace

std::string ConfigError::to_string() const {
  if (loc.line == 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, loc.line, loc.column, message);
}

const ClusterConfig* Config::find_cluster(std::string_view name) const {
  for (const auto& c : clusters) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const char* to_string(Protocol p) {
  return p == Protocol::kTcp ? "tcp" : "http";
}

LoadResult load_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    LoadResult out;
    out.errors.push_back(
        ConfigError{path, {}, fmt::format("cannot open: {}", std::strerror(errno))});
    return out;
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    text.append(buf, n);
  std::fclose(f);
  return parse(text, path);
}

LoadResult load_string(std::string_view text, const std::string& path) {
  return parse(text, path);
}

std::string example_config() {
  std::string out =
      "# ExpressGateway example configuration: every key with its default (required keys\n"
      "# with an example value). Generated from the defaults table in\n"
      "# src/config/loader.cc by `expressgateway --print-example`; do not edit by hand.\n\n"
      "[global]\n";
  emit_keys(out, kGlobalKeys);
  out += "\n[admin]\n";
  emit_keys(out, kAdminKeys);
  out += "\n# An L4 listener: TCP passthrough (splice) to a cluster.\n[[listener]]\n";
  emit_keys(out, kListenerKeys);
  out += "\n[[cluster]]\n";
  emit_keys(out, kClusterKeys);
  out += "# Endpoint keys:\n";
  for (const auto& s : kEndpointKeys) {
    out += fmt::format("#   {} = {}: {}\n", s.name, s.def.empty() ? "(required)" : s.def, s.doc);
  }
  out += "\n[cluster.health_check]\n";
  emit_keys(out, kHealthKeys);
  out +=
      "\n# TLS to the endpoints (add to a cluster; the files must exist):\n"
      "#   [cluster.tls]\n";
  emit_commented_keys(out, kTlsClusterKeys);
  out +=
      "\n# An HTTP listener: routes are checked in order; the listener's cluster\n"
      "# (if any) serves what no route matched.\n"
      "[[listener]]\n"
      "name = \"web\"\n"
      "bind = \"127.0.0.1:8080\"\n"
      "protocol = \"http\"\n"
      "cluster = \"app\"\n"
      "client_idle_timeout_ms = 60000\n";
  emit_keys(out, kHttpListenerKeys);
  out +=
      "# TLS termination (add to any listener; the files must exist):\n"
      "#   [listener.tls]\n";
  emit_commented_keys(out, kTlsListenerKeys);
  out +=
      "# PROXY protocol from a balancer in front (add to any listener):\n"
      "#   [listener.proxy_protocol]\n";
  emit_commented_keys(out, kProxyProtocolKeys);
  out +=
      "# An access log (add to any listener):\n"
      "#   [listener.access_log]\n";
  emit_commented_keys(out, kAccessLogKeys);
  out += "# Route keys:\n";
  for (const auto& s : kRouteKeys)
    out += fmt::format("#   {}: {}\n", s.name, s.doc);
  out += "# Match keys:\n";
  for (const auto& s : kMatchKeys)
    out += fmt::format("#   {}: {}\n", s.name, s.doc);
  out +=
      "\n[[listener.route]]\n"
      "match = { path = \"/healthz\" }\n"
      "respond = { status = 200, body = \"ok\\n\" }\n"
      "\n[[listener.route]]\n"
      "match = { host = \"api.example.com\", path_prefix = \"/v1/\" }\n"
      "cluster = \"app\"\n"
      "request_headers = { set = { \"x-env\" = \"prod\" }, remove = [\"x-debug\"] }\n";
  return out;
}

}  // namespace egw::config

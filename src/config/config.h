// Config: the immutable, typed configuration snapshot. Built by the loader
// (src/config/loader.h) from TOML; every value is validated there, so code
// that reads a Config never checks it again. Units are in the key names.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "egw/address.h"
#include "egw/log.h"
#include "src/balancer/balancer.h"

namespace egw::config {

// Where a value came from, for errors found after loading (a bind that fails
// at start-up names the line of its address).
struct SourceLoc {
  uint32_t line = 0;
  uint32_t column = 0;
};

enum class Protocol : uint8_t { kTcp, kHttp };
const char* to_string(Protocol p);

struct GlobalConfig {
  uint32_t workers = 0;  // 0: one per CPU
  uint32_t grace_period_ms = 10000;
  uint32_t drain_idle_ms = 1000;  // an idle keep-alive connection's last chance, while draining
  log::Level log_level = log::Level::info;
  uint32_t buffer_count = 2048;  // provided receive buffers per worker
  uint32_t buffer_size = 16384;
  uint32_t max_pipes = 1024;  // splice pipes per worker (2 fds each)
  uint32_t pipe_size = 1u << 20;
  uint32_t max_sessions = 100000;         // per worker; past it accepts pause
  uint32_t tls_ticket_rotation_s = 3600;  // session-ticket keys are replaced this often
  // Started as root: become this user (and group) once the listeners are
  // bound; "" = stay as started.
  std::string user;
  std::string group;  // "" = the user's primary group
};

struct HealthCheckConfig {
  enum class Type : uint8_t { kNone, kTcp, kHttp } type = Type::kNone;
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t rise = 2;
  uint32_t fall = 3;
  std::string path = "/";        // http
  uint32_t expect_status = 200;  // http
  bool h2 = false;               // http: spoken in HTTP/2 (the cluster's protocol = "h2")
  uint8_t proxy_version = 0;     // the cluster's send_proxy: 1 or 2 sends a LOCAL header first
};

// TLS termination on a listener.
struct TlsListenerConfig {
  struct Certificate {
    std::string cert;  // PEM (may hold the chain)
    std::string key;
  };
  std::vector<Certificate> certificates;  // [0] is the default when SNI matches none
  std::string min_version = "1.2";
  std::string max_version = "1.3";
  std::string ciphers;  // empty: safe defaults
  std::string groups;
  std::vector<std::string> alpn;  // empty: by protocol (http: "http/1.1")
  std::string client_ca;          // mTLS: verify client certificates with this CA
  bool require_client_cert = false;
  // http: the verified client certificate's subject goes upstream in this
  // field (a client's own field of that name is always dropped); "" = off.
  std::string client_subject_header = "X-Client-Subject";
  bool session_tickets = true;        // false: no tickets, no resumption
  uint32_t ticket_lifetime_s = 7200;  // 1..604800 (0 is refused: use session_tickets)
  uint32_t handshake_timeout_ms = 10000;
  // Read and kept, no effect yet: the hand-off to kernel TLS is not done
  // (the key is accepted so that configurations can carry it).
  bool ktls = true;
  SourceLoc loc;
};

// TLS origination to a cluster's endpoints.
struct TlsClusterConfig {
  bool verify = true;
  std::string ca_file;
  std::string sni;  // default: none
  std::vector<std::string> alpn;
  SourceLoc alpn_loc;  // for errors found once the listeners are known
  std::string min_version = "1.2";
  std::string cert;  // client certificate (mTLS to the endpoints), optional
  std::string key;
  SourceLoc loc;
};

struct EndpointConfig {
  SocketAddress address;
  std::string address_text;
  uint32_t weight = 1;
  uint32_t maxconn = 0;  // 0: unlimited
  bool backup = false;
  SourceLoc loc;
};

struct ClusterConfig {
  std::string name;
  balancer::Algorithm balancer = balancer::Algorithm::kRoundRobin;
  uint32_t connect_timeout_ms = 2000;
  uint32_t server_idle_timeout_ms = 60000;
  uint32_t queue_timeout_ms = 5000;
  uint32_t max_queue = 10000;  // waiting sessions per worker; past it, refuse at once
  uint32_t retries = 2;
  bool redispatch = true;
  std::vector<EndpointConfig> endpoints;
  HealthCheckConfig health_check;
  // HTTP: idle upstream connections kept per endpoint and worker, and for how long.
  uint32_t keep_alive_max_idle = 1024;
  uint32_t keep_alive_timeout_ms = 30000;
  // HTTP: what http listeners speak to the endpoints. HTTP/2 over TLS needs
  // ALPN h2 (the default alpn then); cleartext HTTP/2 is prior knowledge.
  enum class HttpProtocol : uint8_t { kHttp1, kH2 } http_protocol = HttpProtocol::kHttp1;
  uint32_t h2_max_streams = 100;     // per connection (and the endpoint's own limit)
  uint32_t h2_max_connections = 4;   // per endpoint and worker
  uint32_t h2_max_requests = 0;      // streams per connection over its life; 0: no limit
  uint32_t h2_max_age_ms = 0;        // 0: no limit
  uint32_t h2_ping_idle_ms = 10000;  // PING a connection this quiet before reusing it; 0: never
  uint32_t h2_initial_window = 1u << 20;      // response body per stream before we credit it
  uint32_t h2_connection_window = 16u << 20;  // and per connection
  // A PROXY protocol header in front of every connection to the endpoints
  // (health checks send a LOCAL one).
  enum class SendProxy : uint8_t { kOff, kV1, kV2 } send_proxy = SendProxy::kOff;
  std::optional<TlsClusterConfig> tls;
  SourceLoc loc;
};

// --- HTTP routing (listener.route) --------------------------------------------

struct HeaderMatchConfig {
  enum class Kind : uint8_t { kPresent, kAbsent, kEquals, kRegex } kind = Kind::kPresent;
  std::string name;   // case-insensitive
  std::string value;  // kEquals: exact (case-sensitive); kRegex: RE2, full match
};

// Every non-empty matcher must hold (AND); a list inside one matcher is OR.
struct RouteMatchConfig {
  std::vector<std::string>
      hosts;         // "api.example.com" or "*.example.com" (any depth), case-insensitive
  std::string path;  // exact
  std::string path_prefix;
  std::string path_regex;            // RE2, full match against the path (no query)
  std::vector<std::string> methods;  // exact, case-sensitive ("GET")
  std::vector<HeaderMatchConfig> headers;
  std::vector<std::string> sources;  // CIDRs: "10.0.0.0/8", "::1/128", or a bare address
};

struct HeaderRulesConfig {
  std::vector<std::pair<std::string, std::string>> set;  // replace every field of that name
  std::vector<std::pair<std::string, std::string>> add;  // append a field
  std::vector<std::string> remove;
};

struct RespondConfig {
  uint32_t status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct RouteConfig {
  RouteMatchConfig match;
  bool by_sni = false;                   // the hosts came from `sni` (tcp listeners)
  std::string cluster;                   // forward here...
  std::optional<RespondConfig> respond;  // ...or answer directly
  HeaderRulesConfig request_headers;
  HeaderRulesConfig response_headers;
  // CONNECT is answered 405 unless the route that matched allows it.
  bool allow_connect = false;
  SourceLoc loc;
};

// PROXY protocol (v1 or v2) from an L4 balancer in front: every connection
// starts with the header, and the address it carries is the client's
// everywhere (routing, X-Forwarded-For, balancing by source, logs).
struct ProxyProtocolConfig {
  std::vector<std::string> trusted;  // CIDRs whose headers are believed; others are closed
  uint32_t timeout_ms = 5000;        // for the whole header
  SourceLoc loc;
};

// access_log = { path, format, buffer_kb } on a listener.
struct AccessLogConfig {
  std::string path;                    // "-": standard output
  std::string format = "json";         // "json" | "combined" | a template with %fields
  uint32_t buffer_bytes = 256 * 1024;  // per worker, twice (one filling, one being written)
  SourceLoc loc;
};

struct BindConfig {
  SocketAddress address;
  std::string text;
  SourceLoc loc;
};

// HTTP listener limits and timeouts (production defaults).
struct HttpConfig {
  uint32_t request_timeout_ms = 10000;     // the whole request head (slowloris)
  uint32_t keep_alive_timeout_ms = 60000;  // idle between requests
  uint32_t min_request_body_rate = 1024;   // bytes/s over body_rate_window_ms (slow POST); 0 = off
  uint32_t body_rate_window_ms = 10000;
  uint32_t tunnel_timeout_ms = 3600000;  // WebSocket / CONNECT tunnels, idle
  uint32_t max_header_bytes = 16384;     // the whole head
  uint32_t max_headers = 100;
  uint32_t max_request_line_bytes = 8192;
  uint64_t max_body_bytes = 1ull << 30;
  enum class ForwardedFor : uint8_t {
    kAppend,
    kReplace,
    kOff
  } x_forwarded_for = ForwardedFor::kAppend;
  bool x_forwarded_proto = true;
  bool forwarded = false;  // RFC 7239
  bool via = true;
  // HTTP/2 from clients (TLS: ALPN "h2"; cleartext: prior knowledge).
  bool http2 = true;
  uint32_t http2_max_concurrent_streams = 100;
  uint32_t http2_initial_window_bytes = 2u << 20;      // per stream (request bodies)
  uint32_t http2_connection_window_bytes = 4u << 20;   // all streams of a connection
  uint32_t http2_max_requests_per_connection = 10000;  // then GOAWAY
  uint32_t http2_settings_timeout_ms = 10000;          // our SETTINGS unacknowledged
  uint32_t http2_stall_timeout_ms = 30000;             // a stream's response made no progress
};

struct ListenerConfig {
  std::string name;
  std::vector<BindConfig> binds;
  Protocol protocol = Protocol::kTcp;
  std::string cluster;  // tcp: required; http: the default route's cluster (optional)
  uint32_t client_idle_timeout_ms = 60000;
  HttpConfig http;
  // http: checked in order, the listener's cluster catches the rest;
  // tcp: routes on the ClientHello's server name (TLS passthrough).
  std::vector<RouteConfig> routes;
  std::optional<TlsListenerConfig> tls;
  std::optional<ProxyProtocolConfig> proxy_protocol;  // set: a header is expected
  std::optional<AccessLogConfig> access_log;          // set: a line per request / session
  SourceLoc loc;
};

// [admin]: how operators see into the running process.
struct AdminConfig {
  // GET /metrics (Prometheus text format) on this address; unset: off.
  std::optional<SocketAddress> metrics;
  std::string metrics_text;
  SourceLoc metrics_loc;
  // The admin API (one command per line, one JSON reply per line) on this
  // Unix socket; empty: off. Created with `socket_mode`, owned by
  // socket_user / socket_group when set (else by the starting user).
  std::string socket;
  uint32_t socket_mode = 0600;
  std::string socket_user, socket_group;
  SourceLoc socket_loc;

  bool operator==(const AdminConfig& o) const {
    return metrics_text == o.metrics_text && socket == o.socket && socket_mode == o.socket_mode &&
           socket_user == o.socket_user && socket_group == o.socket_group;
  }
};

struct Config {
  std::string path;  // the file it was loaded from
  GlobalConfig global;
  AdminConfig admin;
  std::vector<ListenerConfig> listeners;
  std::vector<ClusterConfig> clusters;

  const ClusterConfig* find_cluster(std::string_view name) const;
};

using ConfigPtr = std::shared_ptr<const Config>;

}  // namespace egw::config

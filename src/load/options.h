// The load generator's command line, parsed once at start-up into an
// immutable Options value (docs/load-generator.md lists every option).
//
// Exit codes shared by the whole program live here too, so that the usage
// text, main() and the docs agree.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "egw/address.h"

namespace egw::load {

// 0: the run completed and every measured request got a 2xx response.
inline constexpr int kExitOk = 0;
// 1: the run completed but some requests failed (transport errors, timeouts,
//    non-2xx statuses), or a sweep found no rate that met its objective.
inline constexpr int kExitErrors = 1;
// 2: invalid command line.
inline constexpr int kExitUsage = 2;
// 3: the generator could not run (no io_uring, no memory, output file).
inline constexpr int kExitFailure = 3;

// How requests are issued.
enum class Arrival : uint8_t {
  kConstant,    // open loop: request k is due at t0 + k/R
  kPoisson,     // open loop: exponential gaps of mean 1/R
  kClosedLoop,  // each connection sends its next request when the last completes
};
const char* to_string(Arrival a);

// Where requests go: from --url http[s]://host[:port][/path].
struct Target {
  std::string url;        // as given
  std::string authority;  // for the Host header: "host[:port]" as written
  std::string host;       // without port or brackets
  std::string path;       // origin-form target: "/path?query"
  SocketAddress address;  // resolved once at start-up
  bool tls = false;       // https
};

// TLS for https targets.
struct TlsOptions {
  std::string cacert;     // verify the server against this CA file (PEM)
  bool insecure = false;  // no verification at all
  std::string sni;        // default: the URL's host when it is a name
  bool resume = true;     // new connections offer the last session ticket
  std::string ciphers;    // empty: the library's defaults
  std::string alpn = "http/1.1";
};

// A latency objective for --sweep, e.g. "p99<=1ms".
struct Objective {
  std::string text;        // as given, for the report
  std::string label;       // "p99", "p99.9"
  double percentile = 99;  // 50, 90, 99, 99.9 ...
  uint64_t limit_us = 0;
  bool strict = false;  // "<" rather than "<="

  bool met_by(uint64_t value_us) const {
    return strict ? value_us < limit_us : value_us <= limit_us;
  }
};

struct Options {
  Target target;
  Arrival arrival = Arrival::kConstant;
  double rate = 0;  // requests/s over all threads (open loop; the first step of a sweep)
  uint64_t duration_ns = 10'000'000'000;
  uint64_t warmup_ns = 0;
  unsigned connections = 16;
  unsigned threads = 1;
  uint64_t timeout_ms = 10'000;  // per request, from the moment it is sent
  uint64_t connect_timeout_ms = 2'000;
  bool new_connection_per_request = false;
  // HTTP/2 (prior knowledge on http://, ALPN h2 on https://) with this many
  // concurrent streams per connection.
  bool h2 = false;
  unsigned streams = 10;
  // Open loop: wake this long before each intended send time and poll the
  // ring until it comes (absorbs the kernel's wake-up latency; 0 = sleep).
  uint64_t early_wake_ns = 40'000;
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // in command-line order
  uint64_t body_size = 0;
  std::string json_path;
  std::string hdr_path;
  std::optional<Objective> sweep;
  double sweep_max_rate = 1'000'000;
  uint64_t seed = 1;
  bool quiet = false;  // no per-step lines during a sweep
  TlsOptions tls;

  bool open_loop() const { return arrival != Arrival::kClosedLoop; }
};

// Parses the command line. Returns the options, or the exit code to leave
// with after the message (help text: 0; any error: kExitUsage) was printed.
std::variant<Options, int> parse_command_line(int argc, char** argv);

// Helpers, exposed for the docs' sake and for reuse.
// "10s", "250ms", "1.5s", "500us", "2m"; a bare number is seconds.
std::optional<uint64_t> parse_duration_ns(std::string_view text);
// "p99<=1ms", "p99.9 < 250us", "p50<=2s".
std::expected<Objective, std::string> parse_objective(std::string_view text);
// "http://127.0.0.1:8080/path", "https://host/path" (resolves names with
// getaddrinfo).
std::expected<Target, std::string> parse_url(std::string_view text);

}  // namespace egw::load

#include "src/load/options.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "proto/h1/encoder.h"
#include "proto/h1/parser.h"

namespace egw::load {
namespace {

constexpr uint64_t kMaxBodyBytes = 64ull << 20;  // one request lives in one send buffer
constexpr unsigned kMaxConnections = 100'000;
constexpr unsigned kMaxThreads = 256;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// A non-negative decimal number ("12", "1.5"); nullopt on anything else.
std::optional<double> parse_number(std::string_view s) {
  if (s.empty() || !(s.front() >= '0' && s.front() <= '9')) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Splits "12.5ms" into the number and the unit.
std::pair<std::string_view, std::string_view> split_unit(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
    ++i;
  return {s.substr(0, i), trim(s.substr(i))};
}

std::optional<double> unit_ns(std::string_view unit, bool bare_is_seconds) {
  if (unit.empty()) return bare_is_seconds ? std::optional<double>(1e9) : std::nullopt;
  if (unit == "ns") return 1;
  if (unit == "us") return 1e3;
  if (unit == "ms") return 1e6;
  if (unit == "s") return 1e9;
  if (unit == "m") return 60e9;
  return std::nullopt;
}

// The shortest exact spelling parse_duration_ns() reads back: "10s", "40us".
std::string format_duration(uint64_t ns) {
  if (ns == 0) return "0s";
  if (ns % 1'000'000'000 == 0) return std::to_string(ns / 1'000'000'000) + "s";
  if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
  if (ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
  return std::to_string(ns) + "ns";
}

// Builds the checked header list: "Name: value" per RFC 9110 field syntax.
std::expected<std::pair<std::string, std::string>, std::string> parse_header(std::string_view h) {
  const size_t colon = h.find(':');
  if (colon == std::string_view::npos) {
    return std::unexpected("--header '" + std::string(h) + "': expected \"Name: value\"");
  }
  const std::string_view name = h.substr(0, colon);
  const std::string_view value = trim(h.substr(colon + 1));
  if (!proto::h1::detail::is_token(name)) {
    return std::unexpected("--header '" + std::string(h) +
                           "': the name must be a token (no spaces before the colon)");
  }
  for (char c : value) {
    if (!proto::h1::detail::has_class(c, proto::h1::detail::kCharValue)) {
      return std::unexpected("--header '" + std::string(h) + "': control character in the value");
    }
  }
  return std::pair<std::string, std::string>(std::string(name), std::string(value));
}

}  // namespace

const char* to_string(Arrival a) {
  switch (a) {
    case Arrival::kConstant:
      return "constant";
    case Arrival::kPoisson:
      return "poisson";
    case Arrival::kClosedLoop:
      return "closed-loop";
  }
  return "?";
}

std::optional<uint64_t> parse_duration_ns(std::string_view text) {
  auto [num, unit] = split_unit(trim(text));
  const auto v = parse_number(num);
  const auto scale = unit_ns(unit, true);
  if (!v || !scale) return std::nullopt;
  const double ns = *v * *scale;
  if (!(ns < 1e18)) return std::nullopt;
  return static_cast<uint64_t>(std::llround(ns));
}

std::expected<Objective, std::string> parse_objective(std::string_view text) {
  const std::string what = "--sweep '" + std::string(text) + "': ";
  std::string_view s = trim(text);
  if (s.empty() || s.front() != 'p') {
    return std::unexpected(what + "expected PERCENTILE OP LIMIT, e.g. \"p99<=1ms\"");
  }
  s.remove_prefix(1);
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
    ++i;
  const std::string_view digits = s.substr(0, i);
  s = trim(s.substr(i));
  // "p999" is p99.9 and "p9999" p99.99 (the usual shorthand): digits past the
  // second are decimals when no dot is written.
  std::string number(digits);
  if (number.find('.') == std::string::npos && number.size() > 2) number.insert(2, ".");
  const auto p = parse_number(number);
  if (!p || *p <= 0 || *p >= 100) {
    return std::unexpected(what + "the percentile must lie strictly between p0 and p100");
  }
  Objective o;
  o.text = std::string(trim(text));
  o.label = "p" + number;
  o.percentile = *p;
  if (s.starts_with("<=")) {
    s.remove_prefix(2);
  } else if (s.starts_with("<")) {
    o.strict = true;
    s.remove_prefix(1);
  } else {
    return std::unexpected(what + "expected '<=' or '<' after the percentile");
  }
  auto [num, unit] = split_unit(trim(s));
  const auto v = parse_number(num);
  const auto scale = unit_ns(unit, false);
  if (!v || !scale || *scale < 1e3) {
    return std::unexpected(what + "the limit needs a unit: us, ms or s (e.g. 1ms)");
  }
  const double us = *v * *scale / 1e3;
  if (!(us >= 1) || us > 60e6) {
    return std::unexpected(what + "the limit must lie between 1us and 60s");
  }
  o.limit_us = static_cast<uint64_t>(std::llround(us));
  return o;
}

std::expected<Target, std::string> parse_url(std::string_view text) {
  const std::string what = "--url '" + std::string(text) + "': ";
  const bool tls = text.starts_with("https://");
  if (!tls && !text.starts_with("http://")) {
    return std::unexpected(what + "expected http[s]://host[:port]/path");
  }
  std::string_view rest = text.substr(tls ? 8 : 7);
  const size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  std::string_view path = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (const size_t hash = path.find('#'); hash != std::string_view::npos)
    path = path.substr(0, hash);
  if (authority.empty()) return std::unexpected(what + "no host");
  if (authority.find('@') != std::string_view::npos) {
    return std::unexpected(what + "user information in the URL is not supported");
  }
  if (!proto::h1::detail::valid_authority(authority, false)) {
    return std::unexpected(what + "invalid host or port");
  }
  std::string host;
  std::string port = tls ? "443" : "80";
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) port = std::string(authority.substr(close + 2));
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = std::string(authority.substr(0, colon));
    port = std::string(authority.substr(colon + 1));
  } else {
    host = std::string(authority);
  }
  if (port.empty() || port == "0") return std::unexpected(what + "invalid port");

  Target t;
  t.url = std::string(text);
  t.authority = std::string(authority);
  t.host = host;
  t.tls = tls;
  t.path = path.empty() ? "/" : (path.front() == '?' ? "/" + std::string(path) : std::string(path));
  for (char c : t.path) {
    if (!proto::h1::detail::has_class(c, proto::h1::detail::kCharTarget)) {
      return std::unexpected(what + "the path has a character that must be %-encoded");
    }
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return std::unexpected(what + "cannot resolve '" + host + "': " + ::gai_strerror(rc));
  }
  t.address = SocketAddress::from(res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  return t;
}

std::variant<Options, int> parse_command_line(int argc, char** argv) {
  CLI::App app{
      "expressgateway-load: an open-loop HTTP/1.1 load generator that measures latency from each "
      "request's intended send time (coordinated omission corrected)."};
  app.get_formatter()->column_width(34);
  Options o;  // its member initialisers are the defaults, shown by --help
  std::string url;
  std::string duration = format_duration(o.duration_ns);
  std::string warmup = format_duration(o.warmup_ns);
  std::string timeout = format_duration(o.timeout_ms * 1'000'000);
  std::string connect_timeout = format_duration(o.connect_timeout_ms * 1'000'000);
  std::string early_wake = format_duration(o.early_wake_ns);
  std::string sweep;
  std::vector<std::string> headers;
  bool poisson = false, closed = false;
  double rate = -1;

  app.add_option("--url", url, "target, http[s]://host[:port]/path")->required();
  app.add_option("--rate", rate, "requests/s over all threads (open loop; a sweep's first step)");
  app.add_flag("--poisson", poisson, "Poisson arrivals (exponential gaps) instead of constant");
  app.add_flag("--closed-loop", closed,
               "each connection sends its next request when the last one completes (like wrk)");
  app.add_option("--duration", duration, "measured time: 10s, 500ms, 1m")->capture_default_str();
  app.add_option("--warmup", warmup, "unrecorded time before the measurement")
      ->capture_default_str();
  app.add_option("-c,--connections", o.connections, "connections over all threads")
      ->capture_default_str();
  app.add_option("-t,--threads", o.threads, "worker threads, each with its own io_uring loop")
      ->capture_default_str();
  app.add_option("--timeout", timeout, "per-request timeout, from the moment it is sent")
      ->capture_default_str();
  app.add_option("--connect-timeout", connect_timeout, "TCP connect timeout")
      ->capture_default_str();
  app.add_option("--early-wake", early_wake,
                 "open loop: wake this long before each send time and poll until it comes "
                 "(absorbs the kernel's wake-up latency; 0 sleeps until the time)")
      ->capture_default_str();
  app.add_flag("--new-connection-per-request", o.new_connection_per_request,
               "connect, send one request, read the response, reset; instead of keep-alive");
  app.add_flag("--h2", o.h2,
               "HTTP/2: prior knowledge on http://, ALPN h2 on https://; every connection "
               "carries --streams requests at once");
  long streams = -1;  // not given
  app.add_option("--streams", streams,
                 "--h2: concurrent streams per connection (default 10; each is a lane that "
                 "carries one request at a time)");
  app.add_option("-m,--method", o.method, "request method")->capture_default_str();
  app.add_option("-H,--header", headers, "extra request header \"Name: value\" (repeatable)");
  app.add_option("--body-size", o.body_size, "request body of N bytes (with Content-Length)")
      ->capture_default_str();
  app.add_option("--json", o.json_path, "write the results as JSON to FILE");
  app.add_option("--hdr", o.hdr_path,
                 "write the total latency as HdrHistogram percentile-distribution text (ms)");
  app.add_option("--sweep", sweep,
                 "find the highest rate meeting an objective, e.g. \"p99<=1ms\" (steps of "
                 "--duration each, from --rate)");
  app.add_option("--sweep-max", o.sweep_max_rate, "highest rate a sweep tries")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the Poisson schedule")->capture_default_str();
  app.add_flag("-q,--quiet", o.quiet, "print only the final report");
  app.add_option("--cacert", o.tls.cacert, "https: verify the server with this CA file (PEM)");
  app.add_flag("-k,--insecure", o.tls.insecure, "https: do not verify the server");
  app.add_option("--sni", o.tls.sni, "https: server name to send (default: the URL's host)");
  bool no_resume = false;
  app.add_flag("--no-tls-resume", no_resume,
               "https: every new connection makes a full handshake (default: offer the last "
               "session ticket, as browsers do)");
  app.add_option("--tls-ciphers", o.tls.ciphers, "https: cipher list (OpenSSL syntax)");

  auto usage_error = [](const std::string& msg) {
    std::fprintf(stderr, "expressgateway-load: %s\nRun with --help for more information.\n",
                 msg.c_str());
    return kExitUsage;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }

  auto target = parse_url(url);
  if (!target) return usage_error(target.error());
  o.target = std::move(*target);
  o.tls.resume = !no_resume;
  if (o.target.tls) {
    if (o.tls.cacert.empty() && !o.tls.insecure) {
      return usage_error("an https target needs --cacert FILE (or --insecure)");
    }
    in_addr a4;
    in6_addr a6;
    const bool ip_literal = ::inet_pton(AF_INET, o.target.host.c_str(), &a4) == 1 ||
                            ::inet_pton(AF_INET6, o.target.host.c_str(), &a6) == 1;
    if (o.tls.sni.empty() && !ip_literal) {
      o.tls.sni = o.target.host;
    }
  } else if (!o.tls.cacert.empty() || o.tls.insecure || !o.tls.sni.empty()) {
    return usage_error("--cacert, --insecure and --sni are for https targets");
  }

  if (poisson && closed) return usage_error("--poisson and --closed-loop exclude each other");
  o.arrival = closed ? Arrival::kClosedLoop : poisson ? Arrival::kPoisson : Arrival::kConstant;

  const auto d = parse_duration_ns(duration);
  if (!d || *d < 1'000'000)
    return usage_error("--duration '" + duration + "': expected e.g. 10s or 500ms, at least 1ms");
  o.duration_ns = *d;
  const auto w = parse_duration_ns(warmup);
  if (!w) return usage_error("--warmup '" + warmup + "': expected e.g. 1s or 500ms");
  o.warmup_ns = *w;
  const auto to = parse_duration_ns(timeout);
  if (!to || *to < 1'000'000)
    return usage_error("--timeout '" + timeout + "': expected e.g. 2s, at least 1ms");
  o.timeout_ms = *to / 1'000'000;
  const auto cto = parse_duration_ns(connect_timeout);
  if (!cto || *cto < 1'000'000) {
    return usage_error("--connect-timeout '" + connect_timeout +
                       "': expected e.g. 2s, at least 1ms");
  }
  o.connect_timeout_ms = *cto / 1'000'000;

  const auto ew = parse_duration_ns(early_wake);
  if (!ew || *ew > 10'000'000) {
    return usage_error("--early-wake '" + early_wake + "': expected e.g. 40us, at most 10ms");
  }
  o.early_wake_ns = *ew;

  if (!sweep.empty()) {
    auto obj = parse_objective(sweep);
    if (!obj) return usage_error(obj.error());
    o.sweep = std::move(*obj);
    if (closed) return usage_error("--sweep varies the open-loop rate; it excludes --closed-loop");
  }
  if (closed) {
    if (rate >= 0) return usage_error("--rate has no meaning with --closed-loop");
  } else if (rate < 0) {
    if (!o.sweep) return usage_error("an open-loop run needs --rate (or use --closed-loop)");
    rate = 1000;  // a sweep's default first step
  }
  if (!closed) {
    if (!(rate > 0) || !std::isfinite(rate) || rate > 1e8) {
      return usage_error("--rate must be a positive number of requests/s (at most 1e8)");
    }
  }
  o.rate = closed ? 0 : rate;
  if (o.sweep && !(o.sweep_max_rate >= o.rate)) {
    return usage_error("--sweep-max must be at least --rate");
  }

  if (o.connections == 0 || o.connections > kMaxConnections) {
    return usage_error("--connections must be between 1 and 100000");
  }
  if (o.threads == 0 || o.threads > kMaxThreads) {
    return usage_error("--threads must be between 1 and 256");
  }
  if (o.connections < o.threads) {
    return usage_error("--connections must be at least --threads (each thread needs one)");
  }
  if (!proto::h1::detail::is_token(o.method)) {
    return usage_error("--method '" + o.method + "': not a valid HTTP method token");
  }
  if (o.method == "CONNECT") return usage_error("--method CONNECT is not supported");
  if (streams != -1 && !o.h2) return usage_error("--streams is for --h2");
  if (o.h2) {
    if (streams != -1) {
      if (streams < 1 || streams > 1000) {
        return usage_error("--streams must be between 1 and 1000");
      }
      o.streams = static_cast<unsigned>(streams);
    }
    if (o.new_connection_per_request) {
      return usage_error("--new-connection-per-request is for HTTP/1.1 (not with --h2)");
    }
    if (uint64_t{o.connections} * o.streams > kMaxConnections) {
      return usage_error("--connections x --streams must be at most 100000");
    }
    o.tls.alpn = "h2";
  }
  if (o.body_size > kMaxBodyBytes) return usage_error("--body-size: at most 64 MiB");
  for (const std::string& h : headers) {
    auto parsed = parse_header(h);
    if (!parsed) return usage_error(parsed.error());
    if (proto::h1::iequals(parsed->first, "content-length") ||
        proto::h1::iequals(parsed->first, "transfer-encoding")) {
      return usage_error("--header " + parsed->first + ": the body framing comes from --body-size");
    }
    o.headers.push_back(std::move(*parsed));
  }
  return o;
}

}  // namespace egw::load

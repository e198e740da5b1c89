#include "src/http/message.h"

#include <fmt/format.h>

#include <algorithm>

#include "proto/h1/encoder.h"

namespace egw::http {

namespace h1 = proto::h1;
using h1::HeadWriter;
using h1::iequals;

const char* reason_phrase(uint16_t status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 200   ? "Informational"
             : status < 300 ? "OK"
             : status < 400 ? "Redirect"
             : status < 500 ? "Client Error"
                            : "Server Error";
  }
}

namespace {

bool named_in(std::string_view name, std::span<const std::string> names) {
  for (const auto& n : names) {
    if (iequals(n, name)) return true;
  }
  return false;
}

bool named_in(std::string_view name, std::span<const std::pair<std::string, std::string>> pairs) {
  for (const auto& [n, v] : pairs) {
    if (iequals(n, name)) return true;
  }
  return false;
}

// The end-to-end fields of `headers`, minus those the rules remove or
// replace and those `skip` names; then the rules' set and add fields.
bool write_fields(HeadWriter& w, std::span<const h1::Header> headers,
                  const config::HeaderRulesConfig* rules, std::span<const std::string_view> skip) {
  for (const auto& h : headers) {
    if (h1::is_hop_by_hop(h.name) || h1::connection_lists(headers, h.name)) continue;
    bool skipped = false;
    for (std::string_view s : skip)
      skipped = skipped || iequals(s, h.name);
    if (skipped) continue;
    if (rules && (named_in(h.name, rules->remove) || named_in(h.name, rules->set))) continue;
    if (!w.header(h.name, h.value)) return false;
  }
  if (rules) {
    for (const auto& [n, v] : rules->set) {
      if (!w.header(n, v)) return false;
    }
    for (const auto& [n, v] : rules->add) {
      if (!w.header(n, v)) return false;
    }
  }
  return true;
}

std::string_view ip_text(const SocketAddress& a, char* buf, size_t cap) {
  return {buf, a.format_ip(buf, cap)};
}

}  // namespace

size_t write_upstream_request(const h1::RequestHead& req, std::string_view target,
                              const RequestContext& ctx, char* out, size_t cap) {
  const config::HttpConfig& cfg = *ctx.http;
  HeadWriter w(out, cap);
  // Always HTTP/1.1 upstream (keep-alive by default).
  if (!w.request_line(req.method_text, target, 1)) return 0;
  const bool xff_replace = cfg.x_forwarded_for == config::HttpConfig::ForwardedFor::kReplace;
  const bool xff = cfg.x_forwarded_for != config::HttpConfig::ForwardedFor::kOff;
  std::string_view skip[4];
  size_t nskip = 0;
  const bool rules_own_host =
      ctx.rules && (named_in("host", ctx.rules->set) || named_in("host", ctx.rules->remove));
  if (!rules_own_host) {
    if (!ctx.target_authority.empty()) {
      skip[nskip++] = "host";
      if (!w.header("Host", ctx.target_authority)) return 0;
    } else if (ctx.endpoint) {
      bool has_host = false;
      for (const auto& h : req.headers)
        has_host = has_host || iequals(h.name, "host");
      if (!has_host) {
        char ipbuf[64], hostbuf[80];
        const std::string_view ip = ip_text(*ctx.endpoint, ipbuf, sizeof(ipbuf));
        const bool v6 = ctx.endpoint->family() == AF_INET6;
        const uint16_t port = ctx.endpoint->port();
        const auto r = v6 ? fmt::format_to_n(hostbuf, sizeof(hostbuf), "[{}]:{}", ip, port)
                          : fmt::format_to_n(hostbuf, sizeof(hostbuf), "{}:{}", ip, port);
        if (!w.header("Host", std::string_view(hostbuf, r.size))) return 0;
      }
    }
  }
  if (xff_replace) skip[nskip++] = "x-forwarded-for";
  if (xff_replace || cfg.x_forwarded_proto) skip[nskip++] = "x-forwarded-proto";
  if (!ctx.subject_header.empty()) skip[nskip++] = ctx.subject_header;
  if (!write_fields(w, req.headers, ctx.rules, std::span(skip, nskip))) return 0;
  if (!ctx.subject_header.empty() && !ctx.subject.empty()) {
    // A certificate's subject can hold any byte: control characters never
    // reach the upstream head.
    bool clean = true;
    for (char c : ctx.subject) {
      const auto u = static_cast<unsigned char>(c);
      clean = clean && u >= 0x20 && u != 0x7f;
    }
    if (clean && !w.header(ctx.subject_header, ctx.subject)) return 0;
  }
  char ip[64];
  const std::string_view client = ctx.peer ? ip_text(*ctx.peer, ip, sizeof(ip)) : "unknown";
  if (xff && !w.header("X-Forwarded-For", client)) return 0;
  const std::string_view proto = ctx.tls ? "https" : "http";
  if (cfg.x_forwarded_proto && !w.header("X-Forwarded-Proto", proto)) return 0;
  if (cfg.forwarded) {
    char fwd[160];
    const bool v6 = ctx.peer && ctx.peer->family() == AF_INET6;
    const auto r = v6 ? fmt::format_to_n(fwd, sizeof(fwd), "for=\"[{}]\";proto={}", client, proto)
                      : fmt::format_to_n(fwd, sizeof(fwd), "for={};proto={}", client, proto);
    if (!w.header("Forwarded", std::string_view(fwd, r.size))) return 0;
  }
  if (cfg.via &&
      !w.header("Via", req.version_minor == 0 ? "1.0 expressgateway" : "1.1 expressgateway")) {
    return 0;
  }
  if (req.upgrade) {
    if (!w.header("Connection", "upgrade")) return 0;
    for (const auto& h : req.headers) {
      if (iequals(h.name, "upgrade") && !w.header("Upgrade", h.value)) return 0;
    }
  }
  if (req.body == h1::BodyKind::kChunked && !w.header("Transfer-Encoding", "chunked")) return 0;
  if (!w.end()) return 0;
  return w.size();
}

size_t write_client_response(const h1::ResponseHead& resp, const ResponseContext& ctx, char* out,
                             size_t cap) {
  HeadWriter w(out, cap);
  if (!w.status_line(resp.status, resp.reason.empty() ? reason_phrase(resp.status) : resp.reason,
                     ctx.client_minor)) {
    return 0;
  }
  if (!write_fields(w, resp.headers, ctx.rules, {})) return 0;
  if (ctx.http && ctx.http->via &&
      !w.header("Via", resp.version_minor == 0 ? "1.0 expressgateway" : "1.1 expressgateway")) {
    return 0;
  }
  if (resp.status == 101) {
    if (!w.header("Connection", "upgrade")) return 0;
    for (const auto& h : resp.headers) {
      if (iequals(h.name, "upgrade") && !w.header("Upgrade", h.value)) return 0;
    }
  } else if (resp.status >= 200) {
    if (ctx.framing == Framing::kChunked && !w.header("Transfer-Encoding", "chunked")) return 0;
    if (!ctx.keep_alive) {
      if (!w.header("Connection", "close")) return 0;
    } else if (ctx.client_minor == 0 && !w.header("Connection", "keep-alive")) {
      return 0;
    }
  }
  if (!w.end()) return 0;
  return w.size();
}

size_t write_local_response(uint16_t status,
                            std::span<const std::pair<std::string, std::string>> headers,
                            std::string_view body, uint8_t client_minor, bool keep_alive,
                            bool head_only, char* out, size_t cap) {
  HeadWriter w(out, cap);
  if (!w.status_line(status, reason_phrase(status), client_minor)) return 0;
  bool has_type = false;
  for (const auto& [n, v] : headers) {
    if (iequals(n, "content-length") || iequals(n, "transfer-encoding") ||
        iequals(n, "connection")) {
      continue;
    }
    has_type = has_type || iequals(n, "content-type");
    if (!w.header(n, v)) return 0;
  }
  if (!body.empty() && !has_type && !w.header("Content-Type", "text/plain; charset=utf-8")) {
    return 0;
  }
  const bool bodyless = status == 204 || status == 304 || status < 200;
  if (!bodyless && !w.header("Content-Length", static_cast<uint64_t>(body.size()))) return 0;
  if (!keep_alive) {
    if (!w.header("Connection", "close")) return 0;
  } else if (client_minor == 0 && !w.header("Connection", "keep-alive")) {
    return 0;
  }
  if (!w.end()) return 0;
  size_t n = w.size();
  if (!head_only && !bodyless) {
    if (n + body.size() > cap) return 0;
    std::copy(body.begin(), body.end(), out + n);
    n += body.size();
  }
  return n;
}

size_t write_error_response(uint16_t status, uint8_t client_minor, bool keep_alive, char* out,
                            size_t cap) {
  char body[64];
  const auto r = fmt::format_to_n(body, sizeof(body), "{} {}\n", status, reason_phrase(status));
  return write_local_response(status, {}, std::string_view(body, r.size), client_minor, keep_alive,
                              false, out, cap);
}

}  // namespace egw::http

#include "src/http/forwarding.h"

#include <fmt/format.h>

namespace egw::http {

namespace ph = proto::http;
using ph::iequals;

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

// Fields that never cross, whoever sent them: the connection's own, and
// the framing (each codec frames what it writes).
bool never_forwarded(std::string_view name, std::span<const ph::Field> fields) {
  return ph::is_hop_by_hop(name) || iequals(name, "content-length") ||
         iequals(name, "http2-settings") || ph::connection_lists(fields, name);
}

// The end-to-end fields of `fields`, minus those the rules remove or
// replace and those `skip` names; then the rules' set and add fields.
bool write_fields(FieldSink& w, std::span<const ph::Field> fields,
                  const config::HeaderRulesConfig* rules, std::span<const std::string_view> skip) {
  for (const auto& f : fields) {
    if (never_forwarded(f.name, fields)) continue;
    bool skipped = false;
    for (std::string_view s : skip)
      skipped = skipped || iequals(s, f.name);
    if (skipped) continue;
    if (rules && (named_in(f.name, rules->remove) || named_in(f.name, rules->set))) continue;
    if (!w.field(f.name, f.value)) return false;
  }
  if (rules) {
    for (const auto& [n, v] : rules->set) {
      if (!w.field(n, v)) return false;
    }
    for (const auto& [n, v] : rules->add) {
      if (!w.field(n, v)) return false;
    }
  }
  return true;
}

std::string_view ip_text(const SocketAddress& a, char* buf, size_t cap) {
  return {buf, a.format_ip(buf, cap)};
}

std::string_view via_value(uint8_t version) {
  switch (version) {
    case 10:
      return "1.0 expressgateway";
    case 20:
      return "2 expressgateway";
    case 30:
      return "3 expressgateway";
    default:
      return "1.1 expressgateway";
  }
}

}  // namespace

bool forward_request_fields(const ph::RequestHead& req, const RequestContext& ctx, FieldSink& w) {
  const config::HttpConfig& cfg = *ctx.http;
  const bool xff_replace = cfg.x_forwarded_for == config::HttpConfig::ForwardedFor::kReplace;
  const bool xff = cfg.x_forwarded_for != config::HttpConfig::ForwardedFor::kOff;
  std::string_view skip[4];
  size_t nskip = 0;
  const bool rules_own_host =
      ctx.rules && (named_in("host", ctx.rules->set) || named_in("host", ctx.rules->remove));
  if (!rules_own_host) {
    if (!req.authority.empty()) {
      skip[nskip++] = "host";
      if (!w.field("Host", req.authority)) return false;
    } else if (ctx.endpoint) {
      bool has_host = false;
      for (const auto& f : req.fields)
        has_host = has_host || iequals(f.name, "host");
      if (!has_host) {
        char ipbuf[64], hostbuf[80];
        const std::string_view ip = ip_text(*ctx.endpoint, ipbuf, sizeof(ipbuf));
        const bool v6 = ctx.endpoint->family() == AF_INET6;
        const uint16_t port = ctx.endpoint->port();
        const auto r = v6 ? fmt::format_to_n(hostbuf, sizeof(hostbuf), "[{}]:{}", ip, port)
                          : fmt::format_to_n(hostbuf, sizeof(hostbuf), "{}:{}", ip, port);
        if (!w.field("Host", std::string_view(hostbuf, r.size))) return false;
      }
    }
  }
  if (xff_replace) skip[nskip++] = "x-forwarded-for";
  if (xff_replace || cfg.x_forwarded_proto) skip[nskip++] = "x-forwarded-proto";
  if (!ctx.subject_header.empty()) skip[nskip++] = ctx.subject_header;
  if (!write_fields(w, req.fields, ctx.rules, std::span(skip, nskip))) return false;
  if (!ctx.subject_header.empty() && !ctx.subject.empty()) {
    // A certificate's subject can hold any byte: control characters never
    // reach the upstream head.
    bool clean = true;
    for (char c : ctx.subject) {
      const auto u = static_cast<unsigned char>(c);
      clean = clean && u >= 0x20 && u != 0x7f;
    }
    if (clean && !w.field(ctx.subject_header, ctx.subject)) return false;
  }
  char ip[64];
  const std::string_view client = ctx.peer ? ip_text(*ctx.peer, ip, sizeof(ip)) : "unknown";
  if (xff && !w.field("X-Forwarded-For", client)) return false;
  const std::string_view proto = ctx.tls ? "https" : "http";
  if (cfg.x_forwarded_proto && !w.field("X-Forwarded-Proto", proto)) return false;
  if (cfg.forwarded) {
    char fwd[160];
    const bool v6 = ctx.peer && ctx.peer->family() == AF_INET6;
    const auto r = v6 ? fmt::format_to_n(fwd, sizeof(fwd), "for=\"[{}]\";proto={}", client, proto)
                      : fmt::format_to_n(fwd, sizeof(fwd), "for={};proto={}", client, proto);
    if (!w.field("Forwarded", std::string_view(fwd, r.size))) return false;
  }
  if (cfg.via && !w.field("Via", via_value(req.version))) return false;
  return true;
}

bool forward_response_fields(const ph::ResponseHead& resp, const ResponseContext& ctx,
                             FieldSink& w) {
  if (!write_fields(w, resp.fields, ctx.rules, {})) return false;
  if (ctx.http && ctx.http->via && !w.field("Via", via_value(resp.version))) return false;
  return true;
}

}  // namespace egw::http

#include "src/http/h1_heads.h"

#include <fmt/format.h>

#include <algorithm>

#include "proto/h1/encoder.h"

namespace egw::http {

namespace h1 = proto::h1;
using h1::HeadWriter;
using h1::iequals;

namespace {

// Upgrade tokens other than h2c (RFC 9113 §3.1), comma-separated.
bool write_upgrade(HeadWriter& w, std::string_view tokens) {
  char buf[256];
  size_t n = 0;
  bool fits = true;
  proto::http::for_each_list_element(tokens, [&](std::string_view t) {
    if (iequals(t, "h2c")) return;
    const size_t need = t.size() + (n ? 2 : 0);
    if (n + need > sizeof(buf)) {
      fits = false;
      return;
    }
    if (n) {
      buf[n++] = ',';
      buf[n++] = ' ';
    }
    std::copy(t.begin(), t.end(), buf + n);
    n += t.size();
  });
  return fits && n > 0 && w.header("Upgrade", std::string_view(buf, n));
}

}  // namespace

size_t write_upstream_request(const proto::http::RequestHead& req, const RequestContext& ctx,
                              char* out, size_t cap) {
  HeadWriter w(out, cap);
  const bool connect = req.method == proto::http::Method::kConnect;
  if (!w.request_line(req.method_text, connect ? req.authority : req.path, 1)) return 0;
  if (!forward_request_fields(req, ctx, w)) return 0;
  if (!req.upgrade.empty()) {
    if (!w.header("Connection", "upgrade")) return 0;
    if (!write_upgrade(w, req.upgrade)) return 0;
  }
  if (req.body == proto::http::Body::kLength) {
    if (!w.header("Content-Length", req.content_length)) return 0;
  } else if (req.body == proto::http::Body::kUnknown && !w.header("Transfer-Encoding", "chunked")) {
    return 0;
  }
  if (!w.end()) return 0;
  return w.size();
}

size_t write_client_response(const proto::http::ResponseHead& resp, const ResponseContext& ctx,
                             const ClientResponse& how, char* out, size_t cap) {
  HeadWriter w(out, cap);
  if (!w.status_line(resp.status, resp.reason.empty() ? reason_phrase(resp.status) : resp.reason,
                     how.client_minor)) {
    return 0;
  }
  if (!forward_response_fields(resp, ctx, w)) return 0;
  if (resp.status == 101) {
    if (!w.header("Connection", "upgrade")) return 0;
    for (const auto& h : resp.fields) {
      if (iequals(h.name, "upgrade") && !w.header("Upgrade", h.value)) return 0;
    }
  } else if (resp.status >= 200 && !how.tunnel) {
    if (how.framing == Framing::kChunked) {
      if (!w.header("Transfer-Encoding", "chunked")) return 0;
    } else if (resp.has_length && how.framing != Framing::kUntilClose &&
               !w.header("Content-Length", resp.content_length)) {
      return 0;
    }
    if (!how.keep_alive) {
      if (!w.header("Connection", "close")) return 0;
    } else if (how.client_minor == 0 && !w.header("Connection", "keep-alive")) {
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

// Building the HTTP/1.1 heads the proxy sends: the request forwarded
// upstream (hop-by-hop fields dropped, route rules applied, forwarding fields
// added), the response forwarded downstream, and the proxy's own answers
// (route `respond` and errors). Protocol-independent policy lives here so
// that HTTP/2 and HTTP/3 sessions can share it; serialisation is HTTP/1.1.
//
// Every writer fills caller memory and never allocates; it returns the number
// of bytes written, or 0 when the head does not fit in `cap` (or a rule would
// produce an invalid field), which callers turn into 431 (request) or 502
// (response).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "egw/address.h"
#include "proto/h1/parser.h"
#include "src/config/config.h"

namespace egw::http {

const char* reason_phrase(uint16_t status);

struct RequestContext {
  const config::HttpConfig* http = nullptr;
  const config::HeaderRulesConfig* rules = nullptr;  // the route's request rules, or null
  const SocketAddress* peer = nullptr;               // the client
  bool tls = false;                                  // downstream scheme (X-Forwarded-Proto)
  // mTLS: the client's own `subject_header` is dropped and, when `subject`
  // (the verified client certificate's) is not empty, set to it.
  std::string_view subject_header;
  std::string_view subject;
  // The Host sent upstream. The authority of an absolute-form target
  // replaces the client's Host (RFC 9112 §3.2.2); a request with no Host at
  // all (HTTP/1.0) gets the endpoint's address, since the HTTP/1.1 request
  // sent upstream must carry one. A route rule that sets or removes Host
  // wins over both.
  std::string_view target_authority;
  const SocketAddress* endpoint = nullptr;
};

// How the request body is framed upstream.
enum class Framing : uint8_t { kNone, kContentLength, kChunked, kUntilClose };

// The upstream request head for `req`, with `target` (origin-form) as the
// request target. Keeps Upgrade/Connection: upgrade for upgrade requests;
// frames a chunked body as chunked and keeps a Content-Length.
size_t write_upstream_request(const proto::h1::RequestHead& req, std::string_view target,
                              const RequestContext& ctx, char* out, size_t cap);

struct ResponseContext {
  const config::HttpConfig* http = nullptr;
  const config::HeaderRulesConfig* rules = nullptr;  // the route's response rules, or null
  uint8_t client_minor = 1;                          // the client's HTTP/1.x
  bool keep_alive = true;                            // the client connection stays open after
  Framing framing = Framing::kNone;                  // how the body goes to the client
};

// The response head sent downstream for `resp` (also 1xx and 101).
size_t write_client_response(const proto::h1::ResponseHead& resp, const ResponseContext& ctx,
                             char* out, size_t cap);

// A complete response of the proxy's own (head and body).
size_t write_local_response(uint16_t status,
                            std::span<const std::pair<std::string, std::string>> headers,
                            std::string_view body, uint8_t client_minor, bool keep_alive,
                            bool head_only, char* out, size_t cap);

// An error response with a short, generic body ("502 Bad Gateway\n"): never
// anything internal. Always fits in 512 bytes.
size_t write_error_response(uint16_t status, uint8_t client_minor, bool keep_alive, char* out,
                            size_t cap);

}  // namespace egw::http

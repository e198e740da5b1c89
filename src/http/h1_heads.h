// HTTP/1.1 heads as the proxy writes them: the request to an upstream, the
// response to a client, and the proxy's own answers (route `respond` and
// errors). Each applies the forwarding policy (src/http/forwarding.h) to a
// neutral head and adds what only HTTP/1.1 has: the start line, the framing
// and the connection fields.
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

#include "proto/http/message.h"
#include "src/http/forwarding.h"

namespace egw::http {

// How a body is framed on an HTTP/1.1 connection.
enum class Framing : uint8_t { kNone, kContentLength, kChunked, kUntilClose };

// The request head sent upstream (always HTTP/1.1): origin-form target (the
// authority for CONNECT), the policy's fields, Connection/Upgrade for an
// upgrade (without any h2c token), and the body's framing: Content-Length
// for a known length, chunked for an unknown one.
size_t write_upstream_request(const proto::http::RequestHead& req, const RequestContext& ctx,
                              char* out, size_t cap);

struct ClientResponse {
  uint8_t client_minor = 1;          // the client's HTTP/1.x
  bool keep_alive = true;            // the client connection stays open after
  Framing framing = Framing::kNone;  // how the body goes to the client
  bool tunnel = false;               // a 2xx to CONNECT: no framing fields at all
};

// The response head sent downstream for `resp` (also 1xx and 101).
size_t write_client_response(const proto::http::ResponseHead& resp, const ResponseContext& ctx,
                             const ClientResponse& how, char* out, size_t cap);

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

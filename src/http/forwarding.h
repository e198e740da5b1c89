// The forwarding policy: which fields of a head cross the proxy and which the
// proxy adds, whatever protocol either side speaks. Each function reads a
// neutral head (proto/http/message.h) and writes fields into a sink: an
// HTTP/1.1 head writer today, an nghttp2/nghttp3 name-value array for HTTP/2
// and HTTP/3. The start line or pseudo-fields, the framing (Content-Length,
// Transfer-Encoding) and the connection fields (Connection, Upgrade) are the
// codec's: the policy never writes them, and it drops the client's and the
// origin's copies (so a request with two identical Content-Length lines goes
// on with exactly the one its codec writes).
//
// Request (RFC 9110 §7.6):
//  - Host first: the request's authority (the absolute-form target's, or
//    Host) unless a route rule sets or removes Host; with no authority and no
//    Host at all (HTTP/1.0), the endpoint's address, since the HTTP/1.1
//    request sent upstream must carry one.
//  - every end-to-end field, less hop-by-hop ones (and those Connection
//    lists, and HTTP2-Settings), less those the route's rules remove or set,
//    less X-Forwarded-For / X-Forwarded-Proto when the proxy replaces them,
//    less the mTLS subject field; then the rules' set and add fields;
//  - the verified client certificate's subject (mTLS), when configured;
//  - X-Forwarded-For, X-Forwarded-Proto, Forwarded and Via as configured.
// Response: end-to-end fields less those the route's response rules remove or
// set, then the rules' fields, then Via.
//
// Nothing here allocates.
#pragma once

#include <string_view>

#include "egw/address.h"
#include "proto/http/message.h"
#include "src/config/config.h"

namespace egw::http {

using proto::http::FieldSink;

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
  const SocketAddress* endpoint = nullptr;  // Host for a request that has none
};

// False when the sink refused a field (too large, or a rule's value is not
// valid in its format).
bool forward_request_fields(const proto::http::RequestHead& req, const RequestContext& ctx,
                            FieldSink& out);

struct ResponseContext {
  const config::HttpConfig* http = nullptr;
  const config::HeaderRulesConfig* rules = nullptr;  // the route's response rules, or null
};

bool forward_response_fields(const proto::http::ResponseHead& resp, const ResponseContext& ctx,
                             FieldSink& out);

}  // namespace egw::http

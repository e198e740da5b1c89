// Access log lines: what one request (or one L4 session) was, and the
// formats that turn it into one line. Pure: no I/O, no clocks, no
// allocation when a line is written (Format::append writes into the
// caller's buffer, and says when the line did not fit).
//
// Formats ([[listener]] access_log = { format = ... }):
//   "json"      one JSON object per line, every field, always the same keys
//               (null where a field does not apply);
//   "combined"  the Apache/nginx combined format:
//               client - - [time] "method path version" status bytes_out "referer" "user_agent"
//   a template  text with %field (or %{field}) for any field below; %% is a
//               percent sign. "%client:%client_port %status %total_us".
//
// Fields: time, client, client_port, listener, protocol (h1, h2, tcp),
// version (HTTP/1.1, HTTP/1.0, HTTP/2.0), method, authority, path, status,
// bytes_in, bytes_out, cluster, endpoint, retries, termination, tls_version,
// tls_cipher, sni, user_agent, referer, and the phases in microseconds:
// accept_to_headers_us, tls_handshake_us, queue_wait_us, connect_us,
// ttfb_us, total_us.
//
// Client bytes (paths, header values) are escaped, never copied raw: JSON
// strings escape quotes, backslashes, control bytes and every byte above
// 0x7e as \u00XX; the other formats write \" \\ and \xHH. Empty or absent
// values are "-" in text formats and null in JSON.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "egw/address.h"

namespace egw::accesslog {

enum class Field : uint8_t {
  kTime,
  kClient,
  kClientPort,
  kListener,
  kProtocol,
  kVersion,
  kMethod,
  kAuthority,
  kPath,
  kStatus,
  kBytesIn,
  kBytesOut,
  kCluster,
  kEndpoint,
  kRetries,
  kTermination,
  kTlsVersion,
  kTlsCipher,
  kSni,
  kUserAgent,
  kReferer,
  kAcceptToHeaders,
  kTlsHandshake,
  kQueueWait,
  kConnect,
  kTtfb,
  kTotal,
  kCount,
};
const char* name(Field f);  // the template and JSON name

// The phases, in the order of stats::Phase.
inline constexpr size_t kPhases = 6;

struct Record {
  uint64_t time_ns = 0;  // wall clock (CLOCK_REALTIME) when it ended
  const SocketAddress* client = nullptr;
  std::string_view listener, protocol, version, method, authority, path, cluster, endpoint,
      termination, tls_version, tls_cipher, sni, user_agent, referer;
  uint16_t status = 0;  // 0: none (an L4 session, a reset before any response)
  uint64_t bytes_in = 0, bytes_out = 0;
  uint32_t retries = 0;
  std::array<int64_t, kPhases> phase_us{-1, -1, -1, -1, -1, -1};  // -1: not measured
};

// The termination for a status the proxy answered itself ("bad_request",
// "no_route", "gateway_timeout", ...; "proxy_error" for the rest).
const char* termination_of(uint16_t status);

class Format {
 public:
  enum class Kind : uint8_t { kJson, kCombined, kTemplate };

  // "json", "combined", or a template; false with `error` (what is wrong and
  // where) for a template with an unknown field, a lone %, or a control
  // byte.
  static bool compile(std::string_view spec, Format& out, std::string& error);

  Kind kind() const { return kind_; }
  // Writes the line for `r` (with its '\n') at `out`; returns its length, or
  // 0 when it does not fit in `room` bytes (nothing usable was written).
  size_t append(const Record& r, char* out, size_t room) const;

 private:
  struct Piece {
    bool field;
    Field f;
    std::string text;
  };
  Kind kind_ = Kind::kJson;
  std::vector<Piece> pieces_;
};

}  // namespace egw::accesslog

// Stats: what one worker measured in one run (merged over workers at the
// end). Only requests whose intended send time falls in the measured window
// are counted; every one of them ends as exactly one response or one error.
#pragma once

#include <array>
#include <cstdint>

#include "egw/histogram.h"

namespace egw::load {

// Why a measured request failed. Non-2xx responses are complete responses
// (their latency is in the histograms) and are also counted here by class.
enum class ErrorKind : uint8_t {
  kConnectRefused,  // ECONNREFUSED
  kConnectTimeout,  // no connection within --connect-timeout
  kConnectOther,    // any other connect errno (EADDRNOTAVAIL, ENETUNREACH, ...)
  kReset,           // send or receive failed (ECONNRESET, EPIPE, ...)
  kTls,             // the TLS handshake failed (verification, protocol), or TLS broke later
  kClosed,          // the server closed the connection before the response ended
  kBadResponse,     // the response did not parse, or bytes came with no request
  kTimeout,         // no complete response within --timeout of sending
  kUnfinished,      // still waiting or in flight when the drain deadline passed
  kStatus1xx,       // a final 1xx (101 we did not ask for)
  kStatus3xx,
  kStatus4xx,
  kStatus5xx,
  kCount,
};
inline constexpr size_t kErrorKinds = static_cast<size_t>(ErrorKind::kCount);
// "connect_refused", "status_5xx", ...: the keys of the JSON output.
const char* to_string(ErrorKind k);
// A failed connect's errno as an error kind.
ErrorKind connect_error_kind(int err);
// Microseconds from `from_ns` to `to_ns` (0 when not after), rounded.
inline uint64_t since_us(uint64_t from_ns, uint64_t to_ns) {
  return to_ns > from_ns ? (to_ns - from_ns + 500) / 1000 : 0;
}

struct Stats {
  // Phases, in microseconds:
  //   connect  connect() start to established, every new connection;
  //   tls_handshake  established to the TLS handshake's end (https);
  //   wait     intended send time to the moment the request was handed to
  //            its socket (a backlog behind busy connections, the generator's
  //            own lateness, and the connect of a new connection);
  //   ttfb     handed to the socket to the first response byte;
  //   total    intended send time to the last response byte (this is the
  //            latency the report leads with);
  //   lag      how late the generator itself dispatched a request that had a
  //            free connection waiting (open loop): its own scheduling error.
  Histogram connect, tls_handshake, wait, ttfb, total, lag;
  uint64_t tls_resumed = 0;  // handshakes that resumed a session (https)
  std::array<uint64_t, kErrorKinds> errors{};
  std::array<uint64_t, 6> status_classes{};  // [1] = 1xx ... [5] = 5xx
  uint64_t requests = 0;                     // complete responses (== total.count())
  uint64_t sent = 0;                         // measured requests handed to a socket
  uint64_t bytes_received = 0;               // in the measured window's responses
  uint64_t window_start_ns = 0;
  uint64_t window_end_ns = 0;       // end of scheduling (earlier if interrupted)
  uint64_t last_completion_ns = 0;  // of a measured request
  uint64_t setup_failures = 0;      // keep-alive connections that failed at set-up
  int setup_errno = 0;              // the last such failure's errno

  void count_error(ErrorKind k) { ++errors[static_cast<size_t>(k)]; }
  // A measured request's complete response: its phases (CLOCK_MONOTONIC
  // ns; `first_byte_ns` 0 when unknown), size and status class.
  void record_response(uint64_t intended_ns, uint64_t sent_ns, uint64_t first_byte_ns,
                       uint64_t now_ns, uint64_t bytes, uint16_t status);
  uint64_t error(ErrorKind k) const { return errors[static_cast<size_t>(k)]; }
  uint64_t error_total() const;
  // Errors that are not an HTTP status: the request got no response.
  uint64_t transport_errors() const;
  void merge(const Stats& other);
};

}  // namespace egw::load

#include "src/load/stats.h"

#include <algorithm>
#include <cerrno>

namespace egw::load {

const char* to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::kConnectRefused:
      return "connect_refused";
    case ErrorKind::kConnectTimeout:
      return "connect_timeout";
    case ErrorKind::kConnectOther:
      return "connect_other";
    case ErrorKind::kReset:
      return "reset";
    case ErrorKind::kTls:
      return "tls";
    case ErrorKind::kClosed:
      return "closed";
    case ErrorKind::kBadResponse:
      return "bad_response";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kUnfinished:
      return "unfinished";
    case ErrorKind::kStatus1xx:
      return "status_1xx";
    case ErrorKind::kStatus3xx:
      return "status_3xx";
    case ErrorKind::kStatus4xx:
      return "status_4xx";
    case ErrorKind::kStatus5xx:
      return "status_5xx";
    case ErrorKind::kCount:
      break;
  }
  return "?";
}

uint64_t Stats::error_total() const {
  uint64_t n = 0;
  for (uint64_t e : errors)
    n += e;
  return n;
}

uint64_t Stats::transport_errors() const {
  uint64_t n = 0;
  for (size_t i = 0; i < static_cast<size_t>(ErrorKind::kStatus1xx); ++i)
    n += errors[i];
  return n;
}

void Stats::merge(const Stats& o) {
  connect.merge(o.connect);
  tls_handshake.merge(o.tls_handshake);
  tls_resumed += o.tls_resumed;
  wait.merge(o.wait);
  ttfb.merge(o.ttfb);
  total.merge(o.total);
  lag.merge(o.lag);
  for (size_t i = 0; i < errors.size(); ++i)
    errors[i] += o.errors[i];
  for (size_t i = 0; i < status_classes.size(); ++i)
    status_classes[i] += o.status_classes[i];
  requests += o.requests;
  sent += o.sent;
  bytes_received += o.bytes_received;
  if (o.window_start_ns && (!window_start_ns || o.window_start_ns < window_start_ns)) {
    window_start_ns = o.window_start_ns;
  }
  window_end_ns = std::max(window_end_ns, o.window_end_ns);
  last_completion_ns = std::max(last_completion_ns, o.last_completion_ns);
  setup_failures += o.setup_failures;
  if (o.setup_errno) setup_errno = o.setup_errno;
}

ErrorKind connect_error_kind(int err) {
  switch (err) {
    case ECONNREFUSED:
      return ErrorKind::kConnectRefused;
    case ETIMEDOUT:
      return ErrorKind::kConnectTimeout;
    default:
      return ErrorKind::kConnectOther;
  }
}

void Stats::record_response(uint64_t intended_ns, uint64_t sent_ns, uint64_t first_byte_ns,
                            uint64_t now_ns, uint64_t bytes, uint16_t status) {
  ++requests;
  total.record(since_us(intended_ns, now_ns));
  ttfb.record(since_us(sent_ns, first_byte_ns ? first_byte_ns : now_ns));
  bytes_received += bytes;
  const unsigned cls = std::min(5u, static_cast<unsigned>(status / 100));
  ++status_classes[cls];
  if (cls == 3) count_error(ErrorKind::kStatus3xx);
  if (cls == 4) count_error(ErrorKind::kStatus4xx);
  if (cls == 5) count_error(ErrorKind::kStatus5xx);
  last_completion_ns = std::max(last_completion_ns, now_ns);
}

}  // namespace egw::load

#include "src/load/stats.h"

#include <algorithm>

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

}  // namespace egw::load

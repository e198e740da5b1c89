#include "src/upstream/stream.h"

namespace egw::upstream {

const char* to_string(HttpError e) {
  switch (e) {
    case HttpError::kConnect:
      return "connect failed";
    case HttpError::kReset:
      return "connection reset before the response";
    case HttpError::kBadResponse:
      return "invalid response";
    case HttpError::kTruncated:
      return "response truncated";
    case HttpError::kRefused:
      return "stream refused unprocessed";
  }
  return "?";
}

}  // namespace egw::upstream

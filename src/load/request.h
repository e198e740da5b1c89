// The request template: every request of a run is the same bytes, built once
// at start-up and shared read-only by all workers, so sending one is queueing
// a pointer (nothing is formatted or copied per request).
#pragma once

#include <expected>
#include <string>

#include "src/load/options.h"

namespace egw::load {

// Request line, Host (unless --header gave one), the --header fields in
// order, Content-Length when there is a body (or the method usually has one),
// `Connection: close` with --new-connection-per-request (unless --header set
// Connection), then --body-size bytes of body.
std::expected<std::string, std::string> build_request(const Options& o);

}  // namespace egw::load

// Session: what the worker knows of every downstream session, whatever its
// protocol: it can be told to drain, and closed at once when the grace
// period of a shutdown runs out. (What waits in a cluster's queue is an
// upstream::Attempt: an exchange's, or an L4 session's.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "egw/address.h"
#include "egw/intrusive_list.h"

namespace egw::downstream {

// One session as the admin API's `show sessions` lists it.
struct SessionInfo {
  const char* protocol = "";              // tcp, http (no codec yet), http1, h2, proxy_header
  const char* state = "";                 // the session's (or its codec's) state
  const std::string* listener = nullptr;  // its listener's name
  SocketAddress peer;                     // the client (the PROXY header's source, if one came)
  uint64_t accept_ns = 0;                 // clock::now_ns() at accept
  uint32_t streams = 0;                   // HTTP/2: streams open
};

class Session {
 public:
  virtual ~Session() = default;
  // Fills `out` (the admin API; worker thread).
  virtual void describe(SessionInfo& out) const = 0;
  // Closes everything now.
  virtual void abort() = 0;
  // The worker is shutting down: finish what is in flight, take nothing new
  // (an idle keep-alive connection closes at once).
  virtual void drain() {}

  ListNode worker_node_;  // in the worker's list of live sessions
};

}  // namespace egw::downstream

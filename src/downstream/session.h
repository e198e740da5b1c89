// Session: what the worker knows of every downstream session, whatever its
// protocol: it can be told to drain, and closed at once when the grace
// period of a shutdown runs out. (What waits in a cluster's queue is an
// upstream::Attempt: an exchange's, or an L4 session's.)
#pragma once

#include "egw/intrusive_list.h"

namespace egw::downstream {

class Session {
 public:
  virtual ~Session() = default;
  // Closes everything now.
  virtual void abort() = 0;
  // The worker is shutting down: finish what is in flight, take nothing new
  // (an idle keep-alive connection closes at once).
  virtual void drain() {}

  ListNode worker_node_;  // in the worker's list of live sessions
};

}  // namespace egw::downstream

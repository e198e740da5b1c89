// Session: what the worker knows of every downstream session, whatever its
// protocol: it can sit in a cluster's queue waiting for a slot, and it can be
// closed at once when the grace period of a shutdown runs out.
#pragma once

#include "egw/intrusive_list.h"

namespace egw::downstream {

class Session {
 public:
  virtual ~Session() = default;
  // Taken off a cluster queue because a slot freed: try again.
  virtual void dequeued() = 0;
  // Closes everything now.
  virtual void abort() = 0;
  // The worker is shutting down: finish what is in flight, take nothing new
  // (an idle keep-alive connection closes at once).
  virtual void drain() {}

  ListNode queue_node_;   // in WorkerCluster::queue while waiting
  ListNode worker_node_;  // in the worker's list of live sessions
};

}  // namespace egw::downstream

// Cluster: the shared, per-snapshot view of one configured cluster (its
// config, its endpoint states, cross-worker queue counts), and Picker: one
// worker's balancing over it.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <vector>

#include "src/balancer/balancer.h"
#include "src/config/config.h"
#include "src/upstream/endpoint.h"

namespace egw::upstream {

class Cluster {
 public:
  // `cfg` must outlive the cluster (both belong to one runtime snapshot).
  Cluster(const config::ClusterConfig& cfg, std::vector<std::shared_ptr<EndpointState>> endpoints,
          unsigned workers);

  const config::ClusterConfig& config() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  size_t size() const { return endpoints_.size(); }
  EndpointState& endpoint(size_t i) const { return *endpoints_[i]; }
  const std::shared_ptr<EndpointState>& endpoint_ptr(size_t i) const { return endpoints_[i]; }
  const config::EndpointConfig& endpoint_config(size_t i) const { return cfg_.endpoints[i]; }

  // Sessions waiting in worker `w`'s queue for this cluster: lets a worker
  // that frees a slot with nobody waiting locally wake one that has waiters.
  std::atomic<uint32_t>& waiting(unsigned w) { return waiting_[w]; }
  uint32_t total_waiting() const;
  unsigned workers() const { return workers_; }

 private:
  const config::ClusterConfig& cfg_;
  std::vector<std::shared_ptr<EndpointState>> endpoints_;
  unsigned workers_;
  std::unique_ptr<std::atomic<uint32_t>[]> waiting_;
};

// One worker's balancers for a cluster: primaries, and backups that are used
// only when no primary endpoint is usable.
class Picker {
 public:
  Picker(const Cluster& cluster, uint64_t seed);

  enum class Outcome : uint8_t {
    kPicked,  // `index` holds a slot on that endpoint (release it when done)
    kFull,    // endpoints are up but all at maxconn: queue
    kNoneUp,  // nothing usable: refuse
  };
  struct Pick {
    Outcome outcome;
    int index;
  };

  // Chooses an endpoint for a new upstream connection and takes a slot on it.
  // `avoid` (an endpoint index, or -1) is skipped when another usable
  // endpoint exists (redispatch after a failed connect). `hash` keys
  // source_hash. Never allocates.
  Pick pick(uint64_t hash, int avoid, uint64_t now_ms);

 private:
  struct Group {
    std::vector<int> members;  // endpoint indices
    std::unique_ptr<balancer::Balancer> balancer;
    std::vector<balancer::Candidate> scratch;
  };
  bool any_usable(const Group& g, uint64_t now_ms) const;
  // Endpoint i may be given a new session: ready, weight above 0, usable.
  bool selectable(size_t i, uint64_t now_ms) const;
  // The balancers take the weights in force (the admin's or the file's).
  void reset_weights();
  Pick pick_in(Group& g, uint64_t hash, int avoid, uint64_t now_ms);

  const Cluster& cluster_;
  Group primary_;
  Group backup_;
  uint64_t epoch_ = 0;  // admin_epoch() at the last reset_weights()
};

// A 64-bit hash of a client's IP address (not its port), for source_hash.
uint64_t hash_client(const SocketAddress& addr);

}  // namespace egw::upstream

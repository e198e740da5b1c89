#include "src/upstream/cluster.h"

#include <xxhash.h>

namespace egw::upstream {

Cluster::Cluster(const config::ClusterConfig& cfg,
                 std::vector<std::shared_ptr<EndpointState>> endpoints, unsigned workers)
    : cfg_(cfg),
      endpoints_(std::move(endpoints)),
      workers_(workers),
      waiting_(std::make_unique<std::atomic<uint32_t>[]>(workers)) {}

uint32_t Cluster::total_waiting() const {
  uint32_t n = 0;
  for (unsigned w = 0; w < workers_; ++w)
    n += waiting_[w].load(std::memory_order_relaxed);
  return n;
}

uint64_t hash_client(const SocketAddress& addr) {
  const std::string_view ip = addr.ip_bytes();
  return XXH3_64bits(ip.data(), ip.size());
}

Picker::Picker(const Cluster& cluster, uint64_t seed) : cluster_(cluster) {
  const auto algo = cluster.config().balancer;
  for (Group* g : {&primary_, &backup_}) {
    g->balancer = balancer::make_balancer(algo, seed);
  }
  std::vector<uint32_t> pw, bw;
  std::vector<uint64_t> pid, bid;
  for (size_t i = 0; i < cluster.size(); ++i) {
    const auto& e = cluster.endpoint_config(i);
    Group& g = e.backup ? backup_ : primary_;
    g.members.push_back(static_cast<int>(i));
    const std::string_view ip = e.address.ip_bytes();
    const uint64_t id = XXH3_64bits_withSeed(ip.data(), ip.size(), e.address.port());
    (e.backup ? bw : pw).push_back(e.weight);
    (e.backup ? bid : pid).push_back(id);
  }
  primary_.balancer->set_identities(pid);
  primary_.balancer->reset(pw);
  backup_.balancer->set_identities(bid);
  backup_.balancer->reset(bw);
  primary_.scratch.resize(primary_.members.size());
  backup_.scratch.resize(backup_.members.size());
}

bool Picker::any_usable(const Group& g, uint64_t now_ms) const {
  for (int i : g.members) {
    if (cluster_.endpoint_config(static_cast<size_t>(i)).weight > 0 &&
        cluster_.endpoint(static_cast<size_t>(i)).usable(now_ms)) {
      return true;
    }
  }
  return false;
}

Picker::Pick Picker::pick(uint64_t hash, int avoid, uint64_t now_ms) {
  if (any_usable(primary_, now_ms)) return pick_in(primary_, hash, avoid, now_ms);
  if (any_usable(backup_, now_ms)) return pick_in(backup_, hash, avoid, now_ms);
  return {Outcome::kNoneUp, -1};
}

Picker::Pick Picker::pick_in(Group& g, uint64_t hash, int avoid, uint64_t now_ms) {
  bool avoided = false;
  for (size_t k = 0; k < g.members.size(); ++k) {
    const auto i = static_cast<size_t>(g.members[k]);
    const EndpointState& ep = cluster_.endpoint(i);
    const auto& cfg = cluster_.endpoint_config(i);
    const uint32_t active = ep.active();
    bool eligible = ep.usable(now_ms) && (cfg.maxconn == 0 || active < cfg.maxconn);
    if (eligible && static_cast<int>(i) == avoid) {
      eligible = false;
      avoided = true;
    }
    g.scratch[k] = balancer::Candidate{cfg.weight, active, eligible};
  }
  // Each round either takes a slot or rules one candidate out (it filled up
  // under us: another worker took the last slot).
  for (size_t round = 0; round <= g.members.size(); ++round) {
    int k = g.balancer->pick(g.scratch, hash);
    if (k < 0 && avoided) {
      // The endpoint to avoid is the only usable one: retry it.
      for (size_t j = 0; j < g.members.size(); ++j) {
        if (g.members[j] == avoid) g.scratch[j].eligible = true;
      }
      avoided = false;
      k = g.balancer->pick(g.scratch, hash);
    }
    if (k < 0) return {Outcome::kFull, -1};
    const auto i = static_cast<size_t>(g.members[static_cast<size_t>(k)]);
    if (cluster_.endpoint(i).try_acquire(cluster_.endpoint_config(i).maxconn)) {
      return {Outcome::kPicked, static_cast<int>(i)};
    }
    g.scratch[static_cast<size_t>(k)].eligible = false;
  }
  return {Outcome::kFull, -1};
}

}  // namespace egw::upstream

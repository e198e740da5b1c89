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
  std::vector<uint64_t> pid, bid;
  for (size_t i = 0; i < cluster.size(); ++i) {
    const auto& e = cluster.endpoint_config(i);
    Group& g = e.backup ? backup_ : primary_;
    g.members.push_back(static_cast<int>(i));
    const std::string_view ip = e.address.ip_bytes();
    const uint64_t id = XXH3_64bits_withSeed(ip.data(), ip.size(), e.address.port());
    (e.backup ? bid : pid).push_back(id);
  }
  primary_.balancer->set_identities(pid);
  backup_.balancer->set_identities(bid);
  primary_.scratch.resize(primary_.members.size());
  backup_.scratch.resize(backup_.members.size());
  reset_weights();
}

void Picker::reset_weights() {
  epoch_ = admin_epoch();
  for (Group* g : {&primary_, &backup_}) {
    std::vector<uint32_t> w;
    w.reserve(g->members.size());
    for (int i : g->members) {
      const auto k = static_cast<size_t>(i);
      w.push_back(cluster_.endpoint(k).weight(cluster_.endpoint_config(k)));
    }
    g->balancer->reset(w);
  }
}

bool Picker::selectable(size_t i, uint64_t now_ms) const {
  const EndpointState& ep = cluster_.endpoint(i);
  return ep.admin_state() == AdminState::kReady && ep.weight(cluster_.endpoint_config(i)) > 0 &&
         ep.usable(now_ms);
}

bool Picker::any_usable(const Group& g, uint64_t now_ms) const {
  for (int i : g.members) {
    if (selectable(static_cast<size_t>(i), now_ms)) return true;
  }
  return false;
}

Picker::Pick Picker::pick(uint64_t hash, int avoid, uint64_t now_ms) {
  // An operator changed a weight somewhere: tables built on weights follow.
  if (admin_epoch() != epoch_) [[unlikely]]
    reset_weights();
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
    const uint32_t maxconn = ep.maxconn(cfg);
    bool eligible = ep.admin_state() == AdminState::kReady && ep.usable(now_ms) &&
                    (maxconn == 0 || active < maxconn);
    if (eligible && static_cast<int>(i) == avoid) {
      eligible = false;
      avoided = true;
    }
    g.scratch[k] = balancer::Candidate{ep.weight(cfg), active, eligible};
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
    if (cluster_.endpoint(i).try_acquire(
            cluster_.endpoint(i).maxconn(cluster_.endpoint_config(i)))) {
      return {Outcome::kPicked, static_cast<int>(i)};
    }
    g.scratch[static_cast<size_t>(k)].eligible = false;
  }
  return {Outcome::kFull, -1};
}

}  // namespace egw::upstream

// Picker: the per-worker choice of an endpoint for a cluster, with maxconn
// slots, backups, passive health and redispatch.
#include "src/upstream/cluster.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>

namespace egw::upstream {
namespace {

config::ClusterConfig make_cluster(std::initializer_list<config::EndpointConfig> eps,
                                   balancer::Algorithm algo = balancer::Algorithm::kRoundRobin) {
  config::ClusterConfig c;
  c.name = "app";
  c.balancer = algo;
  c.endpoints = eps;
  return c;
}

config::EndpointConfig ep(const char* addr, uint32_t weight = 1, uint32_t maxconn = 0,
                          bool backup = false) {
  config::EndpointConfig e;
  e.address = *SocketAddress::parse(addr);
  e.address_text = addr;
  e.weight = weight;
  e.maxconn = maxconn;
  e.backup = backup;
  return e;
}

struct Fixture {
  explicit Fixture(config::ClusterConfig c) : cfg(std::move(c)) {
    std::vector<std::shared_ptr<EndpointState>> states;
    for (const auto& e : cfg.endpoints)
      states.push_back(std::make_shared<EndpointState>("app", e));
    cluster = std::make_unique<Cluster>(cfg, std::move(states), 1);
    picker = std::make_unique<Picker>(*cluster, 1);
  }
  config::ClusterConfig cfg;
  std::unique_ptr<Cluster> cluster;
  std::unique_ptr<Picker> picker;
};

TEST(Picker, BackupsOnlyWhenNoPrimaryIsUp) {
  Fixture f(make_cluster({ep("127.0.0.1:1"), ep("127.0.0.1:2"), ep("127.0.0.1:3", 1, 0, true)}));
  std::map<int, int> seen;
  for (int i = 0; i < 10; ++i) {
    auto p = f.picker->pick(0, -1, 0);
    ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
    ++seen[p.index];
    f.cluster->endpoint(static_cast<size_t>(p.index)).release();
  }
  EXPECT_EQ(seen.count(2), 0u) << "a backup was used while primaries were up";
  f.cluster->endpoint(0).set_up(false);
  f.cluster->endpoint(1).set_up(false);
  auto p = f.picker->pick(0, -1, 0);
  ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
  EXPECT_EQ(p.index, 2);
  f.cluster->endpoint(2).release();
  f.cluster->endpoint(2).set_up(false);
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kNoneUp);
}

TEST(Picker, MaxconnHoldsSlotsAndReportsFull) {
  Fixture f(make_cluster({ep("127.0.0.1:1", 1, 2), ep("127.0.0.1:2", 1, 1)}));
  int picked = 0;
  for (int i = 0; i < 3; ++i) {
    auto p = f.picker->pick(0, -1, 0);
    ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
    ++picked;
  }
  EXPECT_EQ(picked, 3);
  EXPECT_EQ(f.cluster->endpoint(0).active() + f.cluster->endpoint(1).active(), 3u);
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kFull);
  f.cluster->endpoint(1).release();
  auto p = f.picker->pick(0, -1, 0);
  ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
  EXPECT_EQ(p.index, 1);
}

TEST(Picker, AvoidsTheEndpointThatJustFailedUnlessItIsTheOnlyOne) {
  Fixture f(make_cluster({ep("127.0.0.1:1"), ep("127.0.0.1:2")}));
  for (int i = 0; i < 6; ++i) {
    auto p = f.picker->pick(0, 0, 0);
    ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
    EXPECT_EQ(p.index, 1);
    f.cluster->endpoint(1).release();
  }
  f.cluster->endpoint(1).set_up(false);
  auto p = f.picker->pick(0, 0, 0);
  ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
  EXPECT_EQ(p.index, 0) << "the only usable endpoint must still be retried";
}

TEST(Picker, PassiveBackoffAfterConsecutiveConnectFailures) {
  Fixture f(make_cluster({ep("127.0.0.1:1"), ep("127.0.0.1:2")}));
  EndpointState& e0 = f.cluster->endpoint(0);
  EXPECT_FALSE(e0.connect_failed(3, 1000, 500));
  EXPECT_FALSE(e0.connect_failed(3, 1000, 500));
  EXPECT_TRUE(e0.connect_failed(3, 1000, 500));  // the third crosses the threshold
  EXPECT_FALSE(e0.usable(1200));
  EXPECT_TRUE(e0.usable(1500));  // back-off over: it may be tried again
  for (int i = 0; i < 5; ++i) {
    auto p = f.picker->pick(0, -1, 1200);
    ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
    EXPECT_EQ(p.index, 1);
    f.cluster->endpoint(1).release();
  }
  e0.connect_succeeded();
  EXPECT_TRUE(e0.usable(1200));
}

TEST(Picker, WeightZeroDrainsAnEndpoint) {
  Fixture f(make_cluster({ep("127.0.0.1:1", 0), ep("127.0.0.1:2", 1)},
                         balancer::Algorithm::kWeightedRoundRobin));
  for (int i = 0; i < 5; ++i) {
    auto p = f.picker->pick(0, -1, 0);
    ASSERT_EQ(p.outcome, Picker::Outcome::kPicked);
    EXPECT_EQ(p.index, 1);
    f.cluster->endpoint(1).release();
  }
}

TEST(Picker, SourceHashSticksToOneEndpointPerClient) {
  Fixture f(make_cluster({ep("127.0.0.1:1"), ep("127.0.0.1:2"), ep("127.0.0.1:3")},
                         balancer::Algorithm::kSourceHash));
  const uint64_t a = hash_client(*SocketAddress::parse("10.0.0.1:5000"));
  const uint64_t b = hash_client(*SocketAddress::parse("10.0.0.1:6000"));
  EXPECT_EQ(a, b) << "the client's port must not matter";
  auto first = f.picker->pick(a, -1, 0);
  ASSERT_EQ(first.outcome, Picker::Outcome::kPicked);
  f.cluster->endpoint(static_cast<size_t>(first.index)).release();
  for (int i = 0; i < 10; ++i) {
    auto p = f.picker->pick(a, -1, 0);
    EXPECT_EQ(p.index, first.index);
    f.cluster->endpoint(static_cast<size_t>(p.index)).release();
  }
}

// Picks `n` times (releasing each slot) and counts the endpoints chosen.
std::map<int, int> spread(Fixture& f, int n, uint64_t hash = 0) {
  std::map<int, int> seen;
  for (int i = 0; i < n; ++i) {
    auto p = f.picker->pick(hash, -1, 0);
    EXPECT_EQ(p.outcome, Picker::Outcome::kPicked);
    if (p.index < 0) break;
    ++seen[p.index];
    f.cluster->endpoint(static_cast<size_t>(p.index)).release();
  }
  return seen;
}

TEST(Picker, AdminDrainAndMaintTakeNoNewSessions) {
  Fixture f(make_cluster({ep("127.0.0.1:1"), ep("127.0.0.1:2"), ep("127.0.0.1:3", 1, 0, true)}));
  f.cluster->endpoint(0).set_admin_state(AdminState::kDrain);
  auto seen = spread(f, 6);
  EXPECT_EQ(seen[1], 6) << "a drained endpoint was picked";
  f.cluster->endpoint(1).set_admin_state(AdminState::kMaint);
  seen = spread(f, 4);
  EXPECT_EQ(seen[2], 4) << "with every primary out, the backup serves";
  f.cluster->endpoint(2).set_admin_state(AdminState::kDrain);
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kNoneUp);
  f.cluster->endpoint(0).set_admin_state(AdminState::kReady);
  seen = spread(f, 3);
  EXPECT_EQ(seen[0], 3);
}

TEST(Picker, AdminWeightTakesEffectAtTheNextPick) {
  Fixture f(make_cluster({ep("127.0.0.1:1", 1), ep("127.0.0.1:2", 1)},
                         balancer::Algorithm::kWeightedRoundRobin));
  auto seen = spread(f, 100);
  EXPECT_EQ(seen[0], 50);
  f.cluster->endpoint(0).set_admin_weight(3);
  EXPECT_EQ(f.cluster->endpoint(0).weight(f.cfg.endpoints[0]), 3u);
  seen = spread(f, 100);
  EXPECT_EQ(seen[0], 75);
  EXPECT_EQ(seen[1], 25);
  f.cluster->endpoint(1).set_admin_weight(0);
  seen = spread(f, 10);
  EXPECT_EQ(seen[0], 10) << "admin weight 0 drains";
  f.cluster->endpoint(1).set_admin_weight(std::nullopt);
  f.cluster->endpoint(0).set_admin_weight(std::nullopt);
  EXPECT_EQ(spread(f, 100)[0], 50) << "'default' gives the file's weights back";
}

TEST(Picker, AdminWeightRebuildsSourceHashTables) {
  Fixture f(make_cluster({ep("127.0.0.1:1"), ep("127.0.0.1:2")}, balancer::Algorithm::kSourceHash));
  // Over many clients the two endpoints share about evenly; weight 3 on the
  // first gives it about three quarters (the table is rebuilt).
  auto share = [&] {
    int first = 0;
    for (uint32_t c = 0; c < 4000; ++c) {
      const uint64_t h = hash_client(*SocketAddress::parse("10." + std::to_string(c >> 8) + "." +
                                                           std::to_string(c & 255) + ".1:1"));
      auto p = f.picker->pick(h, -1, 0);
      EXPECT_EQ(p.outcome, Picker::Outcome::kPicked);
      first += p.index == 0 ? 1 : 0;
      f.cluster->endpoint(static_cast<size_t>(p.index)).release();
    }
    return first;
  };
  const int even = share();
  EXPECT_GT(even, 1600);
  EXPECT_LT(even, 2400);
  f.cluster->endpoint(0).set_admin_weight(3);
  const int heavy = share();
  EXPECT_GT(heavy, 2700);
  EXPECT_LT(heavy, 3300);
}

TEST(Picker, AdminMaxconn) {
  Fixture f(make_cluster({ep("127.0.0.1:1", 1, 0)}));
  f.cluster->endpoint(0).set_admin_maxconn(2);
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kPicked);
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kPicked);
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kFull);
  f.cluster->endpoint(0).set_admin_maxconn(3);
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kPicked);
  f.cluster->endpoint(0).set_admin_maxconn(std::nullopt);  // the file's: unlimited
  EXPECT_EQ(f.picker->pick(0, -1, 0).outcome, Picker::Outcome::kPicked);
}

TEST(EndpointState, AdminSettingsGiveWayOnlyToWhatTheFileChanged) {
  config::EndpointConfig e = ep("127.0.0.1:1", 2, 10);
  EndpointState s("app", e);
  s.set_admin_weight(5);
  s.set_admin_maxconn(7);
  s.set_admin_state(AdminState::kDrain);
  EXPECT_EQ(s.reconfigured(e), "") << "the file did not change: the admin's stay";
  EXPECT_EQ(s.weight(e), 5u);
  EXPECT_EQ(s.maxconn(e), 7u);
  config::EndpointConfig e2 = e;
  e2.weight = 3;
  EXPECT_EQ(s.reconfigured(e2), "weight");
  EXPECT_EQ(s.weight(e2), 3u);
  EXPECT_EQ(s.maxconn(e2), 7u);
  EXPECT_EQ(s.admin_state(), AdminState::kDrain) << "the state is not in the file";
  config::EndpointConfig e3 = e2;
  e3.maxconn = 20;
  s.set_admin_weight(9);
  e3.weight = 4;
  EXPECT_EQ(s.reconfigured(e3), "weight and maxconn");
  EXPECT_FALSE(s.admin_weight().has_value());
  EXPECT_FALSE(s.admin_maxconn().has_value());
  EXPECT_EQ(s.maxconn(e3), 20u);
}

}  // namespace
}  // namespace egw::upstream

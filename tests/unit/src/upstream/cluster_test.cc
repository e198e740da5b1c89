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

}  // namespace
}  // namespace egw::upstream

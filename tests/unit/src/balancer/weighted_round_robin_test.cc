#include "src/balancer/weighted_round_robin.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace egw::balancer {
namespace {

std::vector<Candidate> candidates(const std::vector<uint32_t>& weights) {
  std::vector<Candidate> c;
  for (uint32_t w : weights)
    c.push_back({w, 0, true});
  return c;
}

TEST(WeightedRoundRobin, SmoothSequenceForFiveOneOne) {
  WeightedRoundRobin b;
  const std::vector<uint32_t> w = {5, 1, 1};
  b.reset(w);
  const auto c = candidates(w);
  // The sequence nginx documents for weights 5, 1, 1: a a b a c a a.
  const std::vector<int> window = {0, 0, 1, 0, 2, 0, 0};
  for (int round = 0; round < 3; ++round) {
    std::vector<int> got;
    for (int i = 0; i < 7; ++i)
      got.push_back(b.pick(c, 0));
    EXPECT_EQ(got, window) << "round " << round;
  }
}

// Within every window of sum(weights) picks, each endpoint is chosen exactly
// `weight` times and the heavy endpoint never runs longer than it must.
TEST(WeightedRoundRobin, InterleavesWithinEachWindow) {
  WeightedRoundRobin b;
  const std::vector<uint32_t> w = {4, 3, 2, 1};
  b.reset(w);
  const auto c = candidates(w);
  for (int round = 0; round < 20; ++round) {
    std::vector<int> count(w.size());
    int run = 0, longest = 0, last = -1;
    for (int i = 0; i < 10; ++i) {
      const int p = b.pick(c, 0);
      ++count[static_cast<size_t>(p)];
      run = p == last ? run + 1 : 1;
      last = p;
      longest = std::max(longest, run);
    }
    EXPECT_EQ(count, (std::vector<int>{4, 3, 2, 1}));
    EXPECT_LE(longest, 1) << "round " << round;
  }
}

TEST(WeightedRoundRobin, DistributionWithinOnePercent) {
  WeightedRoundRobin b;
  const std::vector<uint32_t> w = {7, 13, 1, 29, 50};
  b.reset(w);
  const auto c = candidates(w);
  std::vector<int> count(w.size());
  const int picks = 10000;
  for (int i = 0; i < picks; ++i)
    ++count[static_cast<size_t>(b.pick(c, 0))];
  for (size_t i = 0; i < w.size(); ++i)
    EXPECT_NEAR(count[i] / double(picks), w[i] / 100.0, 0.01) << "endpoint " << i;
}

TEST(WeightedRoundRobin, IneligibleEndpointsLeaveTheOthersInProportion) {
  WeightedRoundRobin b;
  const std::vector<uint32_t> w = {3, 100, 1};
  b.reset(w);
  auto c = candidates(w);
  c[1].eligible = false;
  std::vector<int> count(w.size());
  for (int i = 0; i < 4000; ++i)
    ++count[static_cast<size_t>(b.pick(c, 0))];
  EXPECT_EQ(count, (std::vector<int>{3000, 0, 1000}));
}

TEST(WeightedRoundRobin, WeightChangesApplyWithoutReset) {
  WeightedRoundRobin b;
  const std::vector<uint32_t> w = {1, 1};
  b.reset(w);
  auto c = candidates(w);
  c[0].weight = 0;  // drained by an admin
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(b.pick(c, 0), 1);
  c[0].weight = 3;
  std::vector<int> count(2);
  for (int i = 0; i < 400; ++i)
    ++count[static_cast<size_t>(b.pick(c, 0))];
  EXPECT_NEAR(count[0], 300, 2);
}

}  // namespace
}  // namespace egw::balancer

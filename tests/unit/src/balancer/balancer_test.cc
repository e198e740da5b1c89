// What every algorithm shares: names, the factory, and the selectable rule.
#include "src/balancer/balancer.h"

#include <gtest/gtest.h>

#include <vector>

namespace egw::balancer {
namespace {

constexpr Algorithm kAll[] = {Algorithm::kRoundRobin, Algorithm::kWeightedRoundRobin,
                              Algorithm::kLeastConnections, Algorithm::kRandom,
                              Algorithm::kSourceHash};

TEST(Algorithm, NamesRoundTrip) {
  for (Algorithm a : kAll) {
    const auto parsed = parse_algorithm(to_string(a));
    ASSERT_TRUE(parsed.has_value()) << to_string(a);
    EXPECT_EQ(*parsed, a);
  }
  EXPECT_STREQ(to_string(Algorithm::kSourceHash), "source_hash");
  EXPECT_FALSE(parse_algorithm("Round_Robin"));
  EXPECT_FALSE(parse_algorithm("maglev"));
  EXPECT_FALSE(parse_algorithm(""));
  EXPECT_STREQ(to_string(static_cast<Algorithm>(200)), "unknown");
}

TEST(Balancer, EveryAlgorithmPicksMinusOneWhenNoneSelectable) {
  const std::vector<uint32_t> weights = {1, 2, 3};
  const std::vector<Candidate> down = {{1, 0, false}, {2, 0, false}, {3, 0, false}};
  const std::vector<Candidate> drained = {{0, 0, true}, {0, 0, true}, {0, 0, true}};
  for (Algorithm a : kAll) {
    auto b = make_balancer(a, 7);
    ASSERT_NE(b, nullptr);
    b->reset(weights);
    for (uint64_t h = 0; h < 100; ++h) {
      EXPECT_EQ(b->pick(down, h), -1) << to_string(a);
      EXPECT_EQ(b->pick(drained, h), -1) << to_string(a);
      EXPECT_EQ(b->pick({}, h), -1) << to_string(a);
    }
  }
}

TEST(Balancer, EveryAlgorithmPicksOnlySelectableCandidates) {
  const std::vector<uint32_t> weights = {3, 1, 4, 1, 5, 9, 2, 6};
  std::vector<Candidate> c;
  for (uint32_t w : weights)
    c.push_back({w, 0, true});
  c[1].eligible = false;
  c[5].eligible = false;
  c[6].weight = 0;
  for (Algorithm a : kAll) {
    auto b = make_balancer(a, 3);
    b->reset(weights);
    for (auto& e : c)
      e.active = 0;
    std::vector<int> seen(weights.size());
    for (uint64_t h = 0; h < 2000; ++h) {
      const int i = b->pick(c, h * 0x9e3779b97f4a7c15ull);
      ASSERT_GE(i, 0) << to_string(a);
      ASSERT_TRUE(is_selectable(c[static_cast<size_t>(i)])) << to_string(a) << " picked " << i;
      ++seen[static_cast<size_t>(i)];
      ++c[static_cast<size_t>(i)].active;  // connections that stay open
    }
    for (size_t i : {0, 2, 3, 4, 7})
      EXPECT_GT(seen[i], 0) << to_string(a) << " never picked " << i;
  }
}

TEST(Balancer, ExtraCandidatesBeyondResetAreTolerated) {
  const std::vector<uint32_t> weights = {1, 1};
  const std::vector<Candidate> c = {{1, 0, false}, {1, 0, false}, {1, 0, true}, {1, 0, true}};
  for (Algorithm a : kAll) {
    auto b = make_balancer(a, 0);
    b->reset(weights);
    for (uint64_t h = 0; h < 50; ++h) {
      const int i = b->pick(c, h);
      // weighted_round_robin has no state for them and picks nothing; the
      // others pick one of the selectable extras.
      if (a == Algorithm::kWeightedRoundRobin)
        EXPECT_EQ(i, -1);
      else
        EXPECT_TRUE(i == 2 || i == 3) << to_string(a) << " picked " << i;
    }
  }
}

TEST(Balancer, MixAndReduce) {
  EXPECT_NE(mix64(0), mix64(1));
  for (uint64_t n : {1ull, 2ull, 7ull, 65537ull})
    for (uint64_t x : {0ull, 1ull, ~0ull, 0x8000000000000000ull})
      EXPECT_LT(reduce(x, n), n);
}

}  // namespace
}  // namespace egw::balancer

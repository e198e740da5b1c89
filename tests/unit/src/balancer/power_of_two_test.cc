#include "src/balancer/power_of_two.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace egw::balancer {
namespace {

TEST(PowerOfTwo, NeverPicksAnIneligibleEndpoint) {
  PowerOfTwo b(42);
  const std::vector<uint32_t> w = {1, 1, 1, 1, 1, 1};
  b.reset(w);
  std::vector<Candidate> c = {{1, 0, false}, {1, 9, true}, {1, 0, false},
                              {1, 3, true},  {0, 0, true}, {1, 0, false}};
  for (int i = 0; i < 10000; ++i) {
    const int p = b.pick(c, 0);
    ASSERT_TRUE(p == 1 || p == 3) << p;
  }
  c[3].eligible = false;  // one left
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(b.pick(c, 0), 1);
}

// Endpoint 0 is idle and the rest busy: it wins every pair it is drawn into,
// which is half of the pairs of four endpoints.
TEST(PowerOfTwo, PrefersTheLessLoaded) {
  PowerOfTwo b(1);
  const std::vector<uint32_t> w = {1, 1, 1, 1};
  b.reset(w);
  const std::vector<Candidate> c = {{1, 0, true}, {1, 10, true}, {1, 10, true}, {1, 10, true}};
  std::vector<int> count(4);
  const int picks = 100000;
  for (int i = 0; i < picks; ++i)
    ++count[static_cast<size_t>(b.pick(c, 0))];
  EXPECT_NEAR(count[0] / double(picks), 0.5, 0.01);
  for (size_t i = 1; i < 4; ++i)
    EXPECT_NEAR(count[i] / double(picks), 1.0 / 6, 0.01);
}

// With (active + 1) / weight equal everywhere, the first draw always wins, so
// the pick shares show the weighted draw itself: w / sum(w).
TEST(PowerOfTwo, DrawsInProportionToWeight) {
  PowerOfTwo b(7);
  const std::vector<uint32_t> w = {1, 2, 4};
  b.reset(w);
  const std::vector<Candidate> c = {{1, 0, true}, {2, 1, true}, {4, 3, true}};
  std::vector<int> count(3);
  const int picks = 70000;
  for (int i = 0; i < picks; ++i)
    ++count[static_cast<size_t>(b.pick(c, 0))];
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(count[i] / double(picks), w[i] / 7.0, 0.01) << "endpoint " << i;
}

// A closed loop: every pick opens a connection, and once 200 are open one
// random open connection finishes per pick. Picks then follow the weights.
TEST(PowerOfTwo, SteadyStateLoadFollowsWeights) {
  PowerOfTwo b(3);
  const std::vector<uint32_t> w = {1, 2, 3, 4};
  b.reset(w);
  std::vector<Candidate> c = {{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 0, true}};
  std::mt19937_64 rng(5);
  std::vector<int> count(4);
  uint64_t open = 0;
  const int picks = 100000;
  for (int i = 0; i < picks; ++i) {
    const auto p = static_cast<size_t>(b.pick(c, 0));
    ++count[p];
    ++c[p].active;
    if (++open <= 200) continue;
    uint64_t r = rng() % open;
    for (auto& e : c) {
      if (r < e.active) {
        --e.active;
        break;
      }
      r -= e.active;
    }
    --open;
  }
  for (size_t i = 0; i < 4; ++i)
    EXPECT_NEAR(count[i] / double(picks), w[i] / 10.0, 0.02) << "endpoint " << i;
}

// Three selectable among 300: the rejection draw mostly gives up and the
// exact scan takes over, with the same proportions.
TEST(PowerOfTwo, DrawsInProportionWhenMostAreDown) {
  PowerOfTwo b(8);
  std::vector<Candidate> c(300, Candidate{1, 0, false});
  c[10] = {1, 0, true};
  c[150] = {2, 1, true};
  c[299] = {4, 3, true};
  b.reset(std::vector<uint32_t>(300, 1));
  std::vector<int> count(300);
  const int picks = 70000;
  for (int i = 0; i < picks; ++i)
    ++count[static_cast<size_t>(b.pick(c, 0))];
  EXPECT_NEAR(count[10] / double(picks), 1 / 7.0, 0.01);
  EXPECT_NEAR(count[150] / double(picks), 2 / 7.0, 0.01);
  EXPECT_NEAR(count[299] / double(picks), 4 / 7.0, 0.01);
}

// Weights raised above the configured maximum without a reset() still draw
// in proportion once seen.
TEST(PowerOfTwo, FollowsWeightsRaisedAfterReset) {
  PowerOfTwo b(9);
  b.reset(std::vector<uint32_t>{1, 1, 1});
  const std::vector<Candidate> c = {{1, 0, true}, {3, 2, true}, {6, 5, true}};
  std::vector<int> count(3);
  for (int i = 0; i < 100; ++i)
    b.pick(c, 0);
  const int picks = 100000;
  for (int i = 0; i < picks; ++i)
    ++count[static_cast<size_t>(b.pick(c, 0))];
  EXPECT_NEAR(count[0] / double(picks), 0.1, 0.01);
  EXPECT_NEAR(count[1] / double(picks), 0.3, 0.01);
  EXPECT_NEAR(count[2] / double(picks), 0.6, 0.01);
}

TEST(PowerOfTwo, SameSeedSameChoices) {
  PowerOfTwo a(99), b(99);
  const std::vector<uint32_t> w = {1, 1, 1, 1, 1};
  a.reset(w);
  b.reset(w);
  const std::vector<Candidate> c(5, Candidate{1, 0, true});
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(a.pick(c, 0), b.pick(c, 0));
}

}  // namespace
}  // namespace egw::balancer

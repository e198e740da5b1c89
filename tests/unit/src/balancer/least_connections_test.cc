#include "src/balancer/least_connections.h"

#include <gtest/gtest.h>

#include <vector>

namespace egw::balancer {
namespace {

TEST(LeastConnections, PicksTheLeastLoaded) {
  LeastConnections b;
  const std::vector<uint32_t> w = {1, 1, 1, 1};
  b.reset(w);
  std::vector<Candidate> c = {{1, 5, true}, {1, 2, true}, {1, 7, true}, {1, 3, true}};
  EXPECT_EQ(b.pick(c, 0), 1);
  c[1].eligible = false;
  EXPECT_EQ(b.pick(c, 0), 3);
  c[3].weight = 0;
  EXPECT_EQ(b.pick(c, 0), 0);
}

TEST(LeastConnections, RespectsWeights) {
  LeastConnections b;
  const std::vector<uint32_t> w = {1, 3};
  b.reset(w);
  // (1+1)/1 = 2 against (2+1)/3 = 1: the heavier endpoint, though busier.
  const std::vector<Candidate> c = {{1, 1, true}, {3, 2, true}};
  EXPECT_EQ(b.pick(c, 0), 1);
  // Idle: (0+1)/1 against (0+1)/3: the heavier one.
  const std::vector<Candidate> idle = {{1, 0, true}, {3, 0, true}};
  EXPECT_EQ(b.pick(idle, 0), 1);
}

TEST(LeastConnections, RotatesAmongEqualEndpoints) {
  LeastConnections b;
  const std::vector<uint32_t> w = {2, 2, 2};
  b.reset(w);
  const std::vector<Candidate> c = {{2, 4, true}, {2, 4, true}, {2, 4, true}};
  std::vector<int> got;
  for (int i = 0; i < 6; ++i)
    got.push_back(b.pick(c, 0));
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 0, 1, 2}));
}

// Connections that never finish pile up in proportion to the weights.
TEST(LeastConnections, LoadFollowsWeights) {
  LeastConnections b(11);
  const std::vector<uint32_t> w = {1, 2, 3, 4};
  b.reset(w);
  std::vector<Candidate> c = {{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 0, true}};
  for (int i = 0; i < 10000; ++i)
    ++c[static_cast<size_t>(b.pick(c, 0))].active;
  for (size_t i = 0; i < c.size(); ++i)
    EXPECT_NEAR(c[i].active, 1000.0 * w[i], 2.0) << "endpoint " << i;
}

TEST(LeastConnections, ExtremeValuesDoNotOverflow) {
  LeastConnections b;
  const std::vector<uint32_t> w = {UINT32_MAX, 1};
  b.reset(w);
  const std::vector<Candidate> c = {{UINT32_MAX, UINT32_MAX, true}, {1, UINT32_MAX - 1, true}};
  // (2^32) / (2^32 - 1) is just above 1; (2^32 - 1) / 1 is far above.
  EXPECT_EQ(b.pick(c, 0), 0);
  EXPECT_TRUE(less_loaded(c[0], c[1]));
  EXPECT_FALSE(less_loaded(c[1], c[0]));
}

}  // namespace
}  // namespace egw::balancer

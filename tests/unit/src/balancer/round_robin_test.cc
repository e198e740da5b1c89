#include "src/balancer/round_robin.h"

#include <gtest/gtest.h>

#include <vector>

namespace egw::balancer {
namespace {

std::vector<int> picks(Balancer& b, std::span<const Candidate> c, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i)
    out.push_back(b.pick(c, 0));
  return out;
}

TEST(RoundRobin, RotatesIgnoringWeights) {
  RoundRobin rr;
  const std::vector<uint32_t> w = {1, 5, 10};
  rr.reset(w);
  const std::vector<Candidate> c = {{1, 0, true}, {5, 0, true}, {10, 0, true}};
  EXPECT_EQ(picks(rr, c, 7), (std::vector<int>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(RoundRobin, SkipsIneligibleAndDrained) {
  RoundRobin rr;
  const std::vector<uint32_t> w = {1, 1, 1, 1};
  rr.reset(w);
  std::vector<Candidate> c = {{1, 0, true}, {1, 0, false}, {0, 0, true}, {1, 0, true}};
  EXPECT_EQ(picks(rr, c, 5), (std::vector<int>{0, 3, 0, 3, 0}));
  c[1].eligible = true;  // back up: joins the rotation where it stands
  EXPECT_EQ(picks(rr, c, 4), (std::vector<int>{1, 3, 0, 1}));
}

TEST(RoundRobin, SeedSetsTheStartingPoint) {
  RoundRobin rr(5);
  const std::vector<uint32_t> w = {1, 1, 1};
  rr.reset(w);
  const std::vector<Candidate> c = {{1, 0, true}, {1, 0, true}, {1, 0, true}};
  EXPECT_EQ(picks(rr, c, 4), (std::vector<int>{2, 0, 1, 2}));
}

TEST(RoundRobin, SurvivesTheClusterShrinkingWithoutReset) {
  RoundRobin rr;
  const std::vector<uint32_t> w = {1, 1, 1, 1};
  rr.reset(w);
  const std::vector<Candidate> four = {{1, 0, true}, {1, 0, true}, {1, 0, true}, {1, 0, true}};
  EXPECT_EQ(picks(rr, four, 3), (std::vector<int>{0, 1, 2}));
  const std::vector<Candidate> two = {{1, 0, true}, {1, 0, true}};
  EXPECT_EQ(picks(rr, two, 3), (std::vector<int>{0, 1, 0}));
}

}  // namespace
}  // namespace egw::balancer

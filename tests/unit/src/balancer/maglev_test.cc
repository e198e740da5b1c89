#include "src/balancer/maglev.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

namespace egw::balancer {
namespace {

constexpr int kKeys = 100000;

std::vector<uint64_t> random_keys(int n, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  for (auto& k : keys)
    k = rng();
  return keys;
}

std::vector<Candidate> candidates(const std::vector<uint32_t>& weights) {
  std::vector<Candidate> c;
  for (uint32_t w : weights)
    c.push_back({w, 0, true});
  return c;
}

std::vector<int> assign(Maglev& m, std::span<const Candidate> c, std::span<const uint64_t> keys) {
  std::vector<int> out;
  out.reserve(keys.size());
  for (uint64_t k : keys)
    out.push_back(m.pick(c, k));
  return out;
}

double moved_fraction(const std::vector<int>& a, const std::vector<int>& b) {
  size_t moved = 0;
  for (size_t i = 0; i < a.size(); ++i)
    moved += a[i] != b[i] ? 1 : 0;
  return moved / double(a.size());
}

TEST(Maglev, TableSizeIsPrime) {
  EXPECT_EQ(Maglev().table_size(), 65537u);
  EXPECT_EQ(Maglev(1000).table_size(), 1009u);
  EXPECT_EQ(Maglev(0).table_size(), 2u);
  EXPECT_EQ(Maglev(251).table_size(), 251u);
}

TEST(Maglev, SameKeySameEndpointAcrossCallsAndInstances) {
  const std::vector<uint32_t> w(10, 1);
  const auto c = candidates(w);
  Maglev a, b;
  a.reset(w);
  b.reset(w);
  const auto keys = random_keys(10000);
  const auto first = assign(a, c, keys);
  EXPECT_EQ(assign(a, c, keys), first);
  EXPECT_EQ(assign(b, c, keys), first);
}

TEST(Maglev, SpreadsTenEqualEndpointsEvenly) {
  const std::vector<uint32_t> w(10, 1);
  const auto c = candidates(w);
  Maglev m;
  m.reset(w);
  std::vector<int> count(10);
  for (int e : assign(m, c, random_keys(kKeys)))
    ++count[static_cast<size_t>(e)];
  uint32_t slots = 0;
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_NEAR(count[i] / double(kKeys), 0.10, 0.02) << "endpoint " << i;
    EXPECT_NEAR(m.slots_of(i), 6553.7, 1.0);
    slots += m.slots_of(i);
  }
  EXPECT_EQ(slots, m.table_size());
}

// An endpoint going down (ineligible at pick, table untouched): only its own
// keys move, spread over the others, and they all come back with it.
TEST(Maglev, KeepsAssignmentWhenOneOfTenRemoved) {
  const std::vector<uint32_t> w(10, 1);
  auto c = candidates(w);
  Maglev m;
  m.reset(w);
  const auto keys = random_keys(kKeys);
  const auto before = assign(m, c, keys);
  c[4].eligible = false;
  const auto after = assign(m, c, keys);
  std::vector<int> gained(10);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (before[i] != 4)
      ASSERT_EQ(after[i], before[i]) << "key " << i << " moved off a healthy endpoint";
    else
      ++gained[static_cast<size_t>(after[i])];
  }
  const double moved = moved_fraction(before, after);
  EXPECT_GT(moved, 0.08);
  EXPECT_LT(moved, 0.12);
  // The orphans are shared out, not dumped on a neighbour.
  const int orphans = std::accumulate(gained.begin(), gained.end(), 0);
  for (size_t i = 0; i < 10; ++i)
    if (i != 4) {
      EXPECT_LT(gained[i], orphans / 4) << "endpoint " << i;
    }

  c[4].eligible = true;
  EXPECT_EQ(assign(m, c, keys), before);
}

// Removing an endpoint from the configuration rebuilds the table: its keys
// move, plus the few others that Maglev's rebuild disturbs.
TEST(Maglev, RebuildWithoutOneOfTenMovesAboutATenth) {
  std::vector<uint32_t> w(10, 1);
  const auto c = candidates(w);
  Maglev m;
  m.reset(w);
  const auto keys = random_keys(kKeys);
  const auto before = assign(m, c, keys);
  w[4] = 0;
  m.reset(w);
  const auto after = assign(m, c, keys);
  size_t disturbed = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_NE(after[i], 4);
    if (before[i] != 4 && after[i] != before[i]) ++disturbed;
  }
  const double moved = moved_fraction(before, after);
  EXPECT_GT(moved, 0.08);
  EXPECT_LT(moved, 0.12 + 0.03);
  EXPECT_LT(disturbed / double(kKeys), 0.03);

  w[4] = 1;
  m.reset(w);
  EXPECT_EQ(assign(m, c, keys), before);
}

TEST(Maglev, SharesFollowWeights) {
  const std::vector<uint32_t> w = {1, 2, 3, 4, 0, 10};
  const auto c = candidates(w);
  Maglev m;
  m.reset(w);
  const double total = 20;
  for (size_t i = 0; i < w.size(); ++i)
    EXPECT_NEAR(m.slots_of(i), m.table_size() * (w[i] / total), 1.0) << "endpoint " << i;
  std::vector<int> count(w.size());
  for (int e : assign(m, c, random_keys(kKeys)))
    ++count[static_cast<size_t>(e)];
  for (size_t i = 0; i < w.size(); ++i)
    EXPECT_NEAR(count[i] / double(kKeys), w[i] / total, 0.01) << "endpoint " << i;
}

// With identities, the mapping follows the endpoints, not their positions.
TEST(Maglev, IdentitiesMakeTheTableIndependentOfOrder) {
  const std::vector<uint64_t> ids = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5};
  const std::vector<uint32_t> w = {1, 2, 1, 3, 1};
  const std::vector<size_t> order = {3, 0, 4, 2, 1};  // new position -> old index
  std::vector<uint64_t> ids2;
  std::vector<uint32_t> w2;
  for (size_t old : order) {
    ids2.push_back(ids[old]);
    w2.push_back(w[old]);
  }
  Maglev a(4099), b(4099);
  a.set_identities(ids);
  a.reset(w);
  b.set_identities(ids2);
  b.reset(w2);
  const auto keys = random_keys(20000);
  const auto ra = assign(a, candidates(w), keys);
  const auto rb = assign(b, candidates(w2), keys);
  for (size_t i = 0; i < keys.size(); ++i)
    ASSERT_EQ(ids[static_cast<size_t>(ra[i])], ids2[static_cast<size_t>(rb[i])]) << "key " << i;
}

// Adding an endpoint with a new identity takes about its share and moves few
// keys between the old ones.
TEST(Maglev, AddingAnEleventhEndpointMovesAboutItsShare) {
  std::vector<uint64_t> ids;
  for (uint64_t i = 0; i < 11; ++i)
    ids.push_back(mix64(1000 + i));
  Maglev m;
  m.set_identities(std::span(ids).first(10));
  const std::vector<uint32_t> ten(10, 1), eleven(11, 1);
  m.reset(ten);
  const auto keys = random_keys(kKeys);
  const auto before = assign(m, candidates(ten), keys);
  m.set_identities(ids);
  m.reset(eleven);
  const auto after = assign(m, candidates(eleven), keys);
  const double moved = moved_fraction(before, after);
  EXPECT_GT(moved, 1.0 / 11 - 0.02);
  EXPECT_LT(moved, 1.0 / 11 + 0.03);
}

TEST(Maglev, FallsBackWhenNoOwnerIsSelectable) {
  const std::vector<uint32_t> w = {1, 1, 0};
  Maglev m(101);
  m.reset(w);
  EXPECT_EQ(m.slots_of(2), 0u);
  // Both owners down; endpoint 2 was raised from weight 0 since the reset.
  const std::vector<Candidate> c = {{1, 0, false}, {1, 0, false}, {5, 0, true}};
  for (uint64_t k = 0; k < 100; ++k)
    EXPECT_EQ(m.pick(c, k), 2);
  const std::vector<Candidate> none = {{1, 0, false}, {1, 0, false}, {5, 0, false}};
  EXPECT_EQ(m.pick(none, 1), -1);
}

TEST(Maglev, WalksFarWhenAlmostEveryoneIsDown) {
  std::vector<uint32_t> w(50, 1);
  auto c = candidates(w);
  Maglev m(5003);
  m.reset(w);
  for (auto& e : c)
    e.eligible = false;
  c[17].eligible = true;
  for (uint64_t k = 0; k < 1000; ++k)
    ASSERT_EQ(m.pick(c, k), 17);
}

TEST(Maglev, ServesByPlainHashBeforeReset) {
  Maglev m(7);
  const std::vector<Candidate> c = {{1, 0, true}};
  // No table: the fallback still serves the one selectable candidate.
  EXPECT_EQ(m.pick(c, 3), 0);
  EXPECT_EQ(m.pick({}, 3), -1);
}

}  // namespace
}  // namespace egw::balancer

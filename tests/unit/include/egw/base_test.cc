// Base vocabulary: slab pool, intrusive list, inline function, addresses.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "egw/address.h"
#include "egw/inline_function.h"
#include "egw/intrusive_list.h"
#include "egw/result.h"
#include "egw/slab.h"
#include "egw/unique_fd.h"

namespace egw {
namespace {

struct Tracked {
  static inline int live = 0;
  int value;
  explicit Tracked(int v) : value(v) { ++live; }
  ~Tracked() { --live; }
};

TEST(SlabPool, ReusesSlotsWithoutGrowing) {
  SlabPool<Tracked> pool(4);
  pool.reserve(8);
  EXPECT_EQ(pool.capacity(), 8u);
  const size_t chunks = pool.chunk_allocations();
  std::vector<Tracked*> objs;
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 8; ++i)
      objs.push_back(pool.create(i));
    EXPECT_EQ(Tracked::live, 8);
    for (auto* o : objs)
      pool.destroy(o);
    objs.clear();
  }
  EXPECT_EQ(pool.chunk_allocations(), chunks);
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(SlabPool, StopsAtMaxObjects) {
  SlabPool<Tracked> pool(2, 4);
  std::vector<Tracked*> objs;
  for (int i = 0; i < 4; ++i) {
    auto* o = pool.create(i);
    ASSERT_NE(o, nullptr);
    objs.push_back(o);
  }
  EXPECT_EQ(pool.create(99), nullptr);
  pool.destroy(objs.back());
  objs.pop_back();
  auto* again = pool.create(5);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->value, 5);
  objs.push_back(again);
  std::set<Tracked*> distinct(objs.begin(), objs.end());
  EXPECT_EQ(distinct.size(), 4u);
  for (auto* o : objs)
    pool.destroy(o);
}

struct Item {
  int v;
  ListNode a;
  ListNode b;
};

TEST(IntrusiveList, OneElementOnTwoListsUnlinksItself) {
  IntrusiveList<Item, &Item::a> la;
  IntrusiveList<Item, &Item::b> lb;
  auto x = std::make_unique<Item>();
  x->v = 1;
  Item y;
  y.v = 2;
  la.push_back(*x);
  la.push_back(y);
  lb.push_front(*x);
  EXPECT_EQ(la.size(), 2u);
  EXPECT_EQ(lb.front(), x.get());
  x.reset();  // destroyed while linked on both lists
  EXPECT_EQ(la.size(), 1u);
  EXPECT_TRUE(lb.empty());
  EXPECT_EQ(la.pop_front(), &y);
  EXPECT_TRUE(la.empty());
}

TEST(IntrusiveList, SpliceKeepsOrder) {
  Item items[6];
  IntrusiveList<Item, &Item::a> l1, l2;
  for (int i = 0; i < 6; ++i) {
    items[i].v = i;
    (i < 3 ? l1 : l2).push_back(items[i]);
  }
  l1.splice_back(l2);
  EXPECT_TRUE(l2.empty());
  int expect = 0;
  while (Item* it = l1.pop_front())
    EXPECT_EQ(it->v, expect++);
  EXPECT_EQ(expect, 6);
}

TEST(InlineFunction, MovesCapturesAndDestroysThem) {
  auto counter = std::make_shared<int>(0);
  {
    InlineFunction<int(int), 32> f = [counter](int x) { return ++*counter + x; };
    EXPECT_EQ(counter.use_count(), 2);
    InlineFunction<int(int), 32> g = std::move(f);
    EXPECT_FALSE(static_cast<bool>(f));
    EXPECT_EQ(g(10), 11);
    EXPECT_EQ(g(10), 12);
  }
  EXPECT_EQ(counter.use_count(), 1);
}

TEST(SocketAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = SocketAddress::parse("127.0.0.1:9000");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->to_string(), "127.0.0.1:9000");
  EXPECT_EQ(v4->port(), 9000);
  auto v6 = SocketAddress::parse("[::1]:443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->to_string(), "[::1]:443");
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "1.2.3:80", "::1:80",
                          "[::1]80", "[::1]:", "host:80", "127.0.0.1:-1", "127.0.0.1:80x"}) {
    EXPECT_FALSE(SocketAddress::parse(bad)) << bad;
  }
}

TEST(Result, CarriesErrnoAndContext) {
  Result<int> r = fail(ECONNREFUSED, "connect");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ECONNREFUSED);
  EXPECT_EQ(r.error().message(), "connect: Connection refused");
  Error plain{0, "no endpoint up"};
  EXPECT_EQ(plain.message(), "no endpoint up");
}

}  // namespace
}  // namespace egw

// Trailer sections collected from decoder views and written back.
#include "src/http/h1_trailers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/h1/body.h"
#include "tests/support/test_util.h"

namespace egw::http {
namespace {

namespace ph = proto::http;

TEST(H1Trailers, CollectsSplitViewsIntoFields) {
  auto loop = uring::EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop) << loop.error().message();
  auto& l = **loop;
  const size_t chunks = l.chunks_in_use();
  TrailerCollector t;
  EXPECT_TRUE(t.empty());
  // The decoder's views may split a line anywhere.
  ASSERT_TRUE(t.append(l, "x-checksum: ab"));
  ASSERT_TRUE(t.append(l, "cd \r\nGrpc-Status:0\r\n"));
  EXPECT_FALSE(t.empty());
  std::vector<std::pair<std::string, std::string>> got;
  ASSERT_TRUE(t.deliver([&](std::span<const ph::Field> f) {
    for (const auto& x : f)
      got.emplace_back(x.name, x.value);
  }));
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{{"x-checksum", "abcd"},
                                                                   {"Grpc-Status", "0"}}));
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(l.chunks_in_use(), chunks);  // nothing held once delivered
}

TEST(H1Trailers, RefusesTooManyAndTooLarge) {
  auto loop = uring::EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  auto& l = **loop;
  TrailerCollector t;
  for (size_t i = 0; i <= kMaxTrailerFields; ++i)
    ASSERT_TRUE(t.append(l, "a: 1\r\n"));
  bool called = false;
  EXPECT_FALSE(t.deliver([&](std::span<const ph::Field>) { called = true; }));
  EXPECT_FALSE(called);
  TrailerCollector big;
  const std::string line(1000, 'x');
  bool ok = true;
  for (int i = 0; i < 20 && ok; ++i)
    ok = big.append(l, line);
  EXPECT_FALSE(ok);  // over proto::h1::kMaxTrailerBytes
}

TEST(H1Trailers, EncodesTheLastChunk) {
  auto loop = uring::EventLoop::create(test::small_loop_options(16, 4096));
  ASSERT_TRUE(loop);
  auto& l = **loop;
  const uring::IoBuf none = encode_last_chunk(l, {});
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(none.data), none.len), "0\r\n\r\n");
  const ph::Field f[] = {{"x-checksum", "done"}, {"grpc-status", "0"}};
  const uring::IoBuf b = encode_last_chunk(l, f);
  ASSERT_NE(b.data, nullptr);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(b.data), b.len),
            "0\r\nx-checksum: done\r\ngrpc-status: 0\r\n\r\n");
  l.release(b);
  const ph::Field bad[] = {{"x", "a\r\nb"}};
  EXPECT_EQ(encode_last_chunk(l, bad).data, nullptr);
}

}  // namespace
}  // namespace egw::http

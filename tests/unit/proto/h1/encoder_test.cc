// Head serialisation, chunk framing and hop-by-hop rules.
#include "proto/h1/encoder.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "proto/h1/parser.h"

namespace egw::proto::h1 {
namespace {

TEST(H1HeadWriter, WritesRequestHeadThatParsesBack) {
  std::array<char, 256> buf;
  HeadWriter w(buf.data(), buf.size());
  ASSERT_TRUE(w.request_line("POST", "/upload?x=1", 1));
  ASSERT_TRUE(w.header("Host", "example.com"));
  ASSERT_TRUE(w.header("Content-Length", uint64_t{1234}));
  ASSERT_TRUE(w.end());
  EXPECT_EQ(w.view(),
            "POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1234\r\n\r\n");
  EXPECT_EQ(w.error(), HeadWriter::Error::kNone);

  std::array<Header, 8> storage;
  RequestParser p(Limits{}, storage);
  ASSERT_EQ(p.parse(w.view()), ParseStatus::kComplete);
  EXPECT_EQ(p.head().method, Method::kPost);
  EXPECT_EQ(p.head().content_length, 1234u);
  EXPECT_EQ(p.head_size(), w.size());
}

TEST(H1HeadWriter, WritesStatusLine) {
  std::array<char, 128> buf;
  HeadWriter w(buf.data(), buf.size());
  ASSERT_TRUE(w.status_line(404, "Not Found", 1));
  ASSERT_TRUE(w.header("Content-Length", uint64_t{0}));
  ASSERT_TRUE(w.end());
  EXPECT_EQ(w.view(), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");

  HeadWriter w10(buf.data(), buf.size());
  ASSERT_TRUE(w10.status_line(200, "", 0));
  EXPECT_EQ(w10.view(), "HTTP/1.0 200 \r\n");
}

TEST(H1HeadWriter, ReturnsFalseWhenItDoesNotFitAndStaysFailed) {
  std::array<char, 32> buf;
  HeadWriter w(buf.data(), buf.size());
  ASSERT_TRUE(w.request_line("GET", "/", 1));  // 16 bytes
  const size_t before = w.size();
  EXPECT_FALSE(w.header("X-Long", "0123456789"));  // 20 bytes: does not fit
  EXPECT_EQ(w.size(), before);
  EXPECT_EQ(w.error(), HeadWriter::Error::kNoSpace);
  EXPECT_FALSE(w.header("A", "b"));  // would fit, but failures are sticky
  EXPECT_FALSE(w.end());
  EXPECT_EQ(w.size(), before);
}

TEST(H1HeadWriter, ExactFit) {
  std::array<char, 18> buf;
  HeadWriter w(buf.data(), buf.size());
  EXPECT_TRUE(w.request_line("GET", "/", 1));
  EXPECT_TRUE(w.end());
  EXPECT_EQ(w.size(), 18u);
  EXPECT_FALSE(w.end());
}

TEST(H1HeadWriter, OneByteShort) {
  std::array<char, 17> buf;
  HeadWriter w(buf.data(), buf.size());
  EXPECT_TRUE(w.request_line("GET", "/", 1));
  EXPECT_FALSE(w.end());
  EXPECT_EQ(w.size(), 16u);
}

TEST(H1HeadWriter, RefusesWhatWouldBreakTheFraming) {
  std::array<char, 256> buf;
  const auto fails = [&](auto&& write) {
    HeadWriter w(buf.data(), buf.size());
    const bool ok = write(w);
    EXPECT_EQ(w.size(), 0u);
    return !ok && w.error() == HeadWriter::Error::kInvalid;
  };
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.header("X", "a\r\nInjected: 1"); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.header("X", "a\nb"); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.header("X", std::string_view("a\0b", 3)); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.header("X Y", "v"); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.header("", "v"); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.header("X:", "v"); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.request_line("GET", "/a b", 1); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.request_line("GET", "", 1); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.request_line("GET", "/\xc3\xa9", 1); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.request_line("G T", "/", 1); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.request_line("GET", "/", 2); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.status_line(99, "x", 1); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.status_line(1000, "x", 1); }));
  EXPECT_TRUE(fails([](HeadWriter& w) { return w.status_line(200, "O\r\nK", 1); }));
  // obs-text and HTAB are valid in values.
  HeadWriter ok(buf.data(), buf.size());
  EXPECT_TRUE(ok.header("X", "caf\xc3\xa9\tok"));
}

TEST(H1ChunkFraming, WritesChunkHeaders) {
  char buf[kMaxChunkHeaderSize];
  EXPECT_EQ(std::string_view(buf, write_chunk_header(0x1a2b, buf)), "1a2b\r\n");
  EXPECT_EQ(std::string_view(buf, write_chunk_header(0, buf)), kLastChunk);
  EXPECT_EQ(std::string_view(buf, write_chunk_header(1, buf)), "1\r\n");
  EXPECT_EQ(std::string_view(buf, write_chunk_header(UINT64_MAX, buf)), "ffffffffffffffff\r\n");
  EXPECT_EQ(kLastChunkNoTrailers, "0\r\n\r\n");
  EXPECT_EQ(kCrlf, "\r\n");
}

TEST(H1ChunkFraming, WritesDecimal) {
  char buf[20];
  EXPECT_EQ(std::string_view(buf, write_decimal(0, buf)), "0");
  EXPECT_EQ(std::string_view(buf, write_decimal(1234567890, buf)), "1234567890");
  EXPECT_EQ(std::string_view(buf, write_decimal(UINT64_MAX, buf)), "18446744073709551615");
}

TEST(H1HopByHop, KnowsTheFixedList) {
  for (const char* name : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                           "transfer-encoding", "UPGRADE"}) {
    EXPECT_TRUE(is_hop_by_hop(name)) << name;
  }
  for (const char* name : {"Content-Length", "Host", "Trailers", "te2", "Upgrade-Insecure-Requests",
                           "X-Connection", ""}) {
    EXPECT_FALSE(is_hop_by_hop(name)) << name;
  }
}

TEST(H1HopByHop, Iequals) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("content-length", "content-lengt"));
  EXPECT_FALSE(iequals("@", "`"));  // differ only in bit 0x20, but are not letters
  EXPECT_FALSE(iequals("[", "{"));
}

TEST(H1HopByHop, WritesOnlyEndToEndFields) {
  const std::vector<Header> headers = {
      {"Host", "h"},
      {"Connection", "close, X-Private"},
      {"X-Private", "secret"},
      {"Keep-Alive", "t=5"},
      {"Transfer-Encoding", "chunked"},
      {"Accept", "*/*"},
      {"x-private", "again"},
      {"TE", "trailers"},
  };
  std::array<char, 256> buf;
  HeadWriter w(buf.data(), buf.size());
  ASSERT_TRUE(write_end_to_end_fields(w, headers));
  EXPECT_EQ(w.view(), "Host: h\r\nAccept: */*\r\n");
}

}  // namespace
}  // namespace egw::proto::h1

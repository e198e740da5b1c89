#include "src/route/path.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace egw::route {
namespace {

// The normalised path, or the error.
std::variant<std::string, PathError> normalize(std::string_view in) {
  std::string out(in.size(), '\0');
  const auto n = normalize_path(in, out.data());
  if (!n) return n.error();
  EXPECT_LE(*n, in.size());
  out.resize(*n);
  return out;
}

void expect_path(std::string_view in, std::string_view want) {
  const auto got = normalize(in);
  ASSERT_TRUE(std::holds_alternative<std::string>(got))
      << in << " -> " << to_string(std::get<PathError>(got));
  EXPECT_EQ(std::get<std::string>(got), want) << in;
}

void expect_error(std::string_view in, PathError want) {
  const auto got = normalize(in);
  ASSERT_TRUE(std::holds_alternative<PathError>(got))
      << in << " -> \"" << std::get<std::string>(got) << "\"";
  EXPECT_EQ(std::get<PathError>(got), want) << in << ": " << to_string(std::get<PathError>(got));
}

TEST(NormalizePath, LeavesOrdinaryPathsAlone) {
  expect_path("/", "/");
  expect_path("/api/v1/users/42", "/api/v1/users/42");
  expect_path("/a/b/", "/a/b/");
  expect_path("/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~");
  expect_path("/CaSe", "/CaSe");
}

TEST(NormalizePath, DecodesUnreservedEscapes) {
  expect_path("/%7Euser", "/~user");
  expect_path("/%7euser", "/~user");
  expect_path("/%41%5a%61%7A%30%39%2D%2E%5F", "/AZaz09-._");
  expect_path("/a%2db", "/a-b");
}

TEST(NormalizePath, UppercasesOtherEscapes) {
  expect_path("/a%2fb", "/a%2Fb");
  expect_path("/caf%c3%a9", "/caf%C3%A9");
  expect_path("/%20", "/%20");
  expect_path("/%3F%23", "/%3F%23");
  expect_path("/%0a", "/%0A");
}

TEST(NormalizePath, DecodesOnce) {
  // "%25" is '%', kept encoded; the "7e" after it is two plain characters.
  expect_path("/%257e", "/%257e");
  expect_path("/%252e%252e/x", "/%252e%252e/x");
  expect_path("/%25%32%65", "/%252e");  // "%32" is '2', decoded; no second pass
  expect_path("/%25%37%65", "/%257e");
}

TEST(NormalizePath, RemovesDotSegments) {
  expect_path("/a/./b/../c", "/a/c");
  expect_path("/./a", "/a");
  expect_path("/a/b/c/../../d", "/a/d");
  expect_path("/a/..", "/");
  expect_path("/a/.", "/a/");
  expect_path("/a/b/..", "/a/");
  expect_path("/.", "/");
  expect_path("/a/../b/./c/.", "/b/c/");
  expect_path("/a/./", "/a/");
  expect_path("/a/../", "/");
}

TEST(NormalizePath, EncodedDotsAreDotSegments) {
  expect_path("/a/%2e%2E/b", "/b");
  expect_path("/a/.%2e/b", "/b");
  expect_path("/a/%2E/b", "/a/b");
  expect_error("/%2e%2e/etc/passwd", PathError::kAboveRoot);
}

TEST(NormalizePath, OnlyWholeSegmentsAreDotSegments) {
  expect_path("/a/..b", "/a/..b");
  expect_path("/a/b..", "/a/b..");
  expect_path("/a/.../b", "/a/.../b");
  expect_path("/a/.b", "/a/.b");
  expect_path("/a/..%2Fb", "/a/..%2Fb");
  expect_path("/a/..%2fb/../c", "/a/c");
}

TEST(NormalizePath, KeepsEmptySegments) {
  expect_path("//", "//");
  expect_path("/a//b", "/a//b");
  expect_path("/a//../b", "/a/b");
  expect_path("//..", "/");
  expect_path("/a/b//..//c", "/a/b//c");
}

TEST(NormalizePath, RejectsClimbingAboveTheRoot) {
  expect_error("/..", PathError::kAboveRoot);
  expect_error("/../x", PathError::kAboveRoot);
  expect_error("/a/../..", PathError::kAboveRoot);
  expect_error("/./..", PathError::kAboveRoot);
  expect_error("/a/b/../../../c", PathError::kAboveRoot);
}

TEST(NormalizePath, RejectsEncodedNul) {
  expect_error("/a%00b", PathError::kEncodedNul);
  expect_error("/%00", PathError::kEncodedNul);
}

TEST(NormalizePath, RejectsMalformedEscapes) {
  expect_error("/%", PathError::kMalformedEscape);
  expect_error("/a%4", PathError::kMalformedEscape);
  expect_error("/a%4g", PathError::kMalformedEscape);
  expect_error("/a%g4", PathError::kMalformedEscape);
  expect_error("/%%41", PathError::kMalformedEscape);
  expect_error("/%/", PathError::kMalformedEscape);
}

TEST(NormalizePath, RejectsWhatIsNotAnAbsolutePath) {
  expect_error("", PathError::kNotAbsolute);
  expect_error("a/b", PathError::kNotAbsolute);
  expect_error("*", PathError::kNotAbsolute);
  expect_error("%2Fa", PathError::kNotAbsolute);
}

TEST(NormalizePath, RejectsCharactersOutsidePchar) {
  for (std::string_view bad : {"/a b", "/a?b", "/a#b", "/a\\b", "/a[b", "/a\"b", "/a<b", "/a{b"}) {
    expect_error(bad, PathError::kInvalidCharacter);
  }
  expect_error(std::string_view("/a\0b", 4), PathError::kInvalidCharacter);
  expect_error("/a\tb", PathError::kInvalidCharacter);
  expect_error("/a\x7f", PathError::kInvalidCharacter);
  expect_error("/caf\xc3\xa9", PathError::kInvalidCharacter);
}

TEST(NormalizePath, WorksInPlace) {
  std::string s = "/a/%2e/b/../%7Ec%2f/./d/..";
  const auto n = normalize_path(s, s.data());
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string_view(s.data(), *n), "/a/~c%2F/");
}

TEST(NormalizePath, WritesNoMoreThanTheInputLength) {
  // A guard byte right after the output buffer must survive.
  const std::string in = "/a/./b/../%7e/.";
  std::string buf(in.size() + 1, '#');
  ASSERT_TRUE(normalize_path(in, buf.data()));
  EXPECT_EQ(buf.back(), '#');
}

}  // namespace
}  // namespace egw::route

#include "src/route/regex.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <random>
#include <string>
#include <vector>

namespace egw::route {
namespace {

Regex must_compile(std::string_view pattern) {
  auto r = Regex::compile(pattern);
  EXPECT_TRUE(r.has_value()) << pattern << ": " << r.error();
  return r ? std::move(*r) : std::move(*Regex::compile("x"));
}

TEST(Regex, IsAFullMatch) {
  const Regex r = must_compile("/users/[0-9]+");
  EXPECT_TRUE(r.full_match("/users/7"));
  EXPECT_FALSE(r.full_match("/users/7/"));
  EXPECT_FALSE(r.full_match("x/users/7"));
  EXPECT_FALSE(r.full_match(""));
  EXPECT_EQ(r.pattern(), "/users/[0-9]+");
}

TEST(Regex, ReportsRe2Errors) {
  auto r = Regex::compile("(a");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("missing )"), std::string::npos) << r.error();
  EXPECT_FALSE(Regex::compile("a**").has_value());
  EXPECT_FALSE(Regex::compile("\\").has_value());
}

TEST(Regex, SeesBytes) {
  EXPECT_TRUE(must_compile("caf..").full_match("caf\xc3\xa9"));
  EXPECT_TRUE(must_compile(".*").full_match("\xff\x80"));
  EXPECT_TRUE(must_compile("caf\xc3\xa9").full_match("caf\xc3\xa9"));
  EXPECT_FALSE(must_compile("caf.").full_match("caf\xc3\xa9"));
}

TEST(Regex, EmptyPatternMatchesOnlyTheEmptyText) {
  const Regex r = must_compile("");
  EXPECT_TRUE(r.full_match(""));
  EXPECT_FALSE(r.full_match("a"));
}

TEST(Regex, MovesKeepTheMatcher) {
  Regex a = must_compile("a+");
  Regex b = std::move(a);
  EXPECT_TRUE(b.full_match("aaa"));
  a = std::move(b);
  EXPECT_TRUE(a.full_match("a"));
}

// The [min, max] prefilter must never change an answer: compare with RE2
// itself on texts near and far from each pattern.
TEST(Regex, RangePrefilterAgreesWithRe2) {
  const std::vector<std::string> patterns = {
      "curl/.*",
      "/api/v[0-9]+/orders/[0-9]+",
      "[a-z]+",
      "(?i)Bearer .+",
      "abc|abd|xyz",
      "a*",
      ".*\\.png",
      "/static/.*|/assets/.*",
      "\\xff\\xfe.*",
      "[\\x00-\\xff]{0,3}",
      "(ab)+c?",
      "z{2,4}",
      "(?i)[A-Z]{3}-\\d+",
      "",
      "x+y*\\xffz?",
      "/a/b",
  };
  std::mt19937 rng(7);
  const std::string alphabet =
      "abcdxyzABCZ/.-0129 \xff\xfe\x80"
      "curlpngBearer";
  for (const std::string& p : patterns) {
    RE2::Options options;
    options.set_encoding(RE2::Options::EncodingLatin1);
    const RE2 reference(p, options);
    ASSERT_TRUE(reference.ok()) << p;
    const Regex r = must_compile(p);
    std::vector<std::string> texts = {
        "",     "a",       "curl/",   "curl/8",   "curk",     "curm",      "/api/v2/orders/1",
        "abc",  "abd",     "xyz",     "aaa",      "x.png",    "/static/x", "\xff\xfe",
        "zz",   "zzzz",    "zzzzz",   "bearer x", "BEARER y", "ABC-12",    "/a/b",
        "/a/c", "xy\xffz", "xxyy\xff"};
    for (int i = 0; i < 3000; ++i) {
      std::string t;
      const size_t len = rng() % 12;
      for (size_t k = 0; k < len; ++k)
        t += alphabet[rng() % alphabet.size()];
      texts.push_back(t);
    }
    for (const std::string& t : texts) {
      ASSERT_EQ(r.full_match(t), RE2::FullMatch(t, reference)) << "pattern " << p << " text " << t;
    }
  }
}

}  // namespace
}  // namespace egw::route

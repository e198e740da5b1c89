#include "src/upstream/health_check.h"

#include <gtest/gtest.h>

#include <string>

namespace egw::upstream {
namespace {

using Verdict = CheckResponse::Verdict;
using proto::h1::ParseError;

TEST(CheckResponse, ExpectedStatusSplitAnywhere) {
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\nok";
  const size_t head = r.find("\r\n\r\n") + 4;
  CheckResponse c(200);
  for (size_t i = 0; i < r.size(); ++i) {
    const Verdict v = c.feed(r.substr(i, 1));
    ASSERT_EQ(v, i + 1 < head ? Verdict::kNeedMore : Verdict::kExpected) << i;
  }
  EXPECT_EQ(c.status(), 200);
}

TEST(CheckResponse, AnotherStatusIsUnexpected) {
  CheckResponse c(200);
  EXPECT_EQ(c.feed("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"),
            Verdict::kUnexpectedStatus);
  EXPECT_EQ(c.status(), 500);
  // The verdict stays.
  EXPECT_EQ(c.feed("HTTP/1.1 200 OK\r\n\r\n"), Verdict::kUnexpectedStatus);
  EXPECT_EQ(c.status(), 500);

  CheckResponse no_reason(204);
  EXPECT_EQ(no_reason.feed("HTTP/1.0 204\r\n\r\n"), Verdict::kExpected);
}

TEST(CheckResponse, InformationalHeadsAreSkippedUnlessExpected) {
  const std::string r =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  CheckResponse c(200);
  EXPECT_EQ(c.feed(r.substr(0, 30)), Verdict::kNeedMore);
  EXPECT_EQ(c.feed(r.substr(30)), Verdict::kExpected);
  EXPECT_EQ(c.status(), 200);

  CheckResponse hundred(100);
  EXPECT_EQ(hundred.feed(r), Verdict::kExpected);
  EXPECT_EQ(hundred.status(), 100);
}

TEST(CheckResponse, WhatTheParserRefusesIsInvalid) {
  struct Case {
    std::string bytes;
    ParseError error;
  } cases[] = {
      {"HTTP/1.1 2000 OK\r\n\r\n", ParseError::kInvalidStatusCode},
      {"HTTP/1.1 099 Low\r\n\r\n", ParseError::kInvalidStatusCode},
      {"HTTP/2.0 200 OK\r\n\r\n", ParseError::kUnsupportedVersion},
      {"SSH-2.0-OpenSSH_9.2\r\n", ParseError::kInvalidVersion},
      {"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", ParseError::kBareLf},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       ParseError::kConflictingContentLength},
  };
  for (const Case& k : cases) {
    CheckResponse c(200);
    EXPECT_EQ(c.feed(k.bytes), Verdict::kInvalid) << k.bytes;
    EXPECT_EQ(c.error(), k.error) << k.bytes << ": " << proto::h1::to_string(c.error());
  }
}

TEST(CheckResponse, AnEndlessHeadIsInvalidAtTheLimit) {
  CheckResponse c(200);
  EXPECT_EQ(c.feed("HTTP/1.1 200 OK\r\nX-Padding: "), Verdict::kNeedMore);
  const std::string pad(1000, 'a');
  Verdict v = Verdict::kNeedMore;
  size_t fed = 0;
  while (v == Verdict::kNeedMore && fed < 4 * CheckResponse::kLimits.max_head_bytes) {
    v = c.feed(pad);
    fed += pad.size();
  }
  EXPECT_EQ(v, Verdict::kInvalid);
  EXPECT_EQ(c.error(), ParseError::kHeadTooLarge);
  EXPECT_LE(fed, CheckResponse::kLimits.max_head_bytes + pad.size());
}

TEST(CheckOutcome, Names) {
  EXPECT_STREQ(to_string(CheckOutcome::kTlsHandshakeFailed), "TLS handshake failed");
  EXPECT_STREQ(to_string(CheckOutcome::kClosed), "closed before a status");
}

}  // namespace
}  // namespace egw::upstream

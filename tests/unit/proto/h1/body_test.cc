// The body decoder: Content-Length, chunked with extensions and trailers,
// until-close; fragments split anywhere give the same result.
#include "proto/h1/body.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace egw::proto::h1 {
namespace {

using namespace std::string_literals;
using Step = BodyDecoder::Step;

struct Decoded {
  std::string data;
  std::string trailer;
  Step::Kind end = Step::kNeedMore;  // kDone, kError, or kNeedMore when input ran out
  ParseError error = ParseError::kNone;
  size_t consumed = 0;  // input bytes used, up to kDone (meaningless after kError)
};

// Feeds `fragments` in order, each from its own allocation, following the
// calling contract of BodyDecoder::feed().
Decoded decode(BodyKind kind, uint64_t content_length, const std::vector<std::string>& fragments) {
  BodyDecoder d;
  d.start(kind, content_length);
  Decoded out;
  for (const std::string& fragment : fragments) {
    const std::string copy = fragment;
    std::string_view in = copy;
    for (;;) {
      const Step s = d.feed(in);
      EXPECT_LE(s.consumed, in.size());
      if (!s.data.empty()) {
        EXPECT_GE(s.data.data(), in.data());
        EXPECT_LE(s.data.data() + s.data.size(), in.data() + s.consumed);
      }
      in.remove_prefix(s.consumed);
      out.consumed += s.consumed;
      if (s.kind == Step::kData) {
        out.data.append(s.data);
      } else if (s.kind == Step::kTrailer) {
        out.trailer.append(s.data);
      } else if (s.kind == Step::kNeedMore) {
        EXPECT_TRUE(in.empty());
        break;
      } else {
        out.end = s.kind;
        out.error = d.error();
        EXPECT_EQ(d.done(), s.kind == Step::kDone);
        return out;
      }
    }
  }
  return out;
}

std::vector<std::string> pieces(std::string_view text, size_t size) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); i += size)
    out.emplace_back(text.substr(i, size));
  return out;
}

Decoded decode_whole(BodyKind kind, uint64_t cl, std::string_view text) {
  return decode(kind, cl, {std::string(text)});
}

// Decodes whole, in pieces of every size, and split in two at every point;
// all must agree. Returns the whole result.
Decoded decode_all_ways(BodyKind kind, uint64_t cl, std::string_view text) {
  const Decoded whole = decode_whole(kind, cl, text);
  for (size_t size = 1; size < text.size(); ++size) {
    const Decoded d = decode(kind, cl, pieces(text, size));
    EXPECT_EQ(d.data, whole.data) << size;
    EXPECT_EQ(d.end, whole.end) << size;
    EXPECT_EQ(d.error, whole.error) << size;
    // After an error, what was handed out before it depends on the splits
    // (the caller aborts the message anyway).
    if (whole.end != Step::kError) {
      EXPECT_EQ(d.trailer, whole.trailer) << size;
      EXPECT_EQ(d.consumed, whole.consumed) << size;
    }
  }
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    const Decoded d =
        decode(kind, cl, {std::string(text.substr(0, cut)), std::string(text.substr(cut))});
    EXPECT_EQ(d.data, whole.data) << cut;
    EXPECT_EQ(d.error, whole.error) << cut;
    // After an error, what was handed out before it depends on the splits
    // (the caller aborts the message anyway).
    if (whole.end != Step::kError) {
      EXPECT_EQ(d.trailer, whole.trailer) << cut;
      EXPECT_EQ(d.consumed, whole.consumed) << cut;
    }
  }
  return whole;
}

ParseError reject_chunked(std::string_view text) {
  const Decoded d = decode_all_ways(BodyKind::kChunked, 0, text);
  EXPECT_EQ(d.end, Step::kError) << text;
  return d.error;
}

TEST(H1BodyDecoder, ContentLengthLeavesNextMessageUnconsumed) {
  const Decoded d = decode_whole(BodyKind::kContentLength, 5, "helloGET / HTTP/1.1\r\n");
  EXPECT_EQ(d.data, "hello");
  EXPECT_EQ(d.end, Step::kDone);
  EXPECT_EQ(d.consumed, 5u);
}

TEST(H1BodyDecoder, ContentLengthSplitAcrossFragments) {
  const Decoded d = decode(BodyKind::kContentLength, 11, {"he", "l", "lo wo", "rld", "NEXT"});
  EXPECT_EQ(d.data, "hello world");
  EXPECT_EQ(d.end, Step::kDone);
  EXPECT_EQ(d.consumed, 11u);
}

TEST(H1BodyDecoder, ContentLengthEndingWithFragmentReportsDone) {
  BodyDecoder d;
  d.start(BodyKind::kContentLength, 3);
  Step s = d.feed("abc");
  EXPECT_EQ(s.kind, Step::kData);
  EXPECT_EQ(s.data, "abc");
  EXPECT_TRUE(d.done());
  s = d.feed("");
  EXPECT_EQ(s.kind, Step::kDone);
  EXPECT_EQ(s.consumed, 0u);
  EXPECT_EQ(d.body_bytes(), 3u);
}

TEST(H1BodyDecoder, NoBodyAndZeroLengthAreDoneAtOnce) {
  for (BodyKind k : {BodyKind::kNone, BodyKind::kContentLength}) {
    BodyDecoder d;
    d.start(k, 0);
    EXPECT_TRUE(d.done());
    const Step s = d.feed("GET /");
    EXPECT_EQ(s.kind, Step::kDone);
    EXPECT_EQ(s.consumed, 0u);
  }
}

TEST(H1BodyDecoder, UntilCloseEndsAtEndOfInput) {
  BodyDecoder d;
  d.start(BodyKind::kUntilClose, 0);
  EXPECT_EQ(d.feed("abc").kind, Step::kData);
  EXPECT_EQ(d.feed("").kind, Step::kNeedMore);
  EXPECT_EQ(d.feed("de").data, "de");
  EXPECT_FALSE(d.done());
  EXPECT_TRUE(d.end_of_input());
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.body_bytes(), 5u);
}

TEST(H1BodyDecoder, EndOfInputTruncatesOtherBodies) {
  BodyDecoder cl;
  cl.start(BodyKind::kContentLength, 10);
  cl.feed("abc");
  EXPECT_FALSE(cl.end_of_input());
  EXPECT_EQ(cl.error(), ParseError::kTruncatedBody);

  BodyDecoder chunked;
  chunked.start(BodyKind::kChunked, 0);
  chunked.feed("3\r\nabc\r\n");
  EXPECT_FALSE(chunked.end_of_input());
  EXPECT_EQ(chunked.error(), ParseError::kTruncatedBody);
}

TEST(H1BodyDecoder, ChunkedLeavesNextMessageUnconsumed) {
  const std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  const Decoded d = decode_all_ways(BodyKind::kChunked, 0, body + "NEXT");
  EXPECT_EQ(d.data, "hello world");
  EXPECT_EQ(d.trailer, "");
  EXPECT_EQ(d.end, Step::kDone);
  EXPECT_EQ(d.consumed, body.size());
}

TEST(H1BodyDecoder, ChunkedHexCaseAndLeadingZeros) {
  const Decoded d =
      decode_all_ways(BodyKind::kChunked, 0, "A\r\n0123456789\r\n0b\r\nabcdefghijk\r\n000\r\n\r\n");
  EXPECT_EQ(d.data, "0123456789abcdefghijk");
  EXPECT_EQ(d.end, Step::kDone);
}

TEST(H1BodyDecoder, ChunkedWithExtensions) {
  const Decoded d =
      decode_all_ways(BodyKind::kChunked, 0,
                      "5;name=value;flag;q=\"quoted \\\" str;\"\r\nhello\r\n0;last=1\r\n\r\n");
  EXPECT_EQ(d.data, "hello");
  EXPECT_EQ(d.end, Step::kDone);
}

TEST(H1BodyDecoder, ChunkedWithTrailers) {
  const std::string trailers = "X-Checksum: abc123\r\nX-Other:\tvalue with spaces \r\n";
  const Decoded d =
      decode_all_ways(BodyKind::kChunked, 0, "3\r\nabc\r\n0\r\n" + trailers + "\r\nNEXT");
  EXPECT_EQ(d.data, "abc");
  EXPECT_EQ(d.trailer, trailers);
  EXPECT_EQ(d.end, Step::kDone);
  EXPECT_EQ(d.consumed, 3 + 3 + 2 + 3 + trailers.size() + 2);
}

TEST(H1BodyDecoder, LongTrailerNamesAreNotMistakenForForbiddenOnes) {
  const Decoded d = decode_all_ways(
      BodyKind::kChunked, 0, "0\r\nTransfer-Encoding-Extra: 1\r\nContent-Lengths: 2\r\n\r\n");
  EXPECT_EQ(d.end, Step::kDone);
}

TEST(H1BodyDecoder, LargestChunkSizeIsAccepted) {
  BodyDecoder d;
  d.start(BodyKind::kChunked, 0);
  const Step s = d.feed("7fffffffffffffff\r\nab");
  EXPECT_EQ(s.kind, Step::kData);
  EXPECT_EQ(s.data, "ab");
}

TEST(H1BodyDecoder, RejectsInvalidChunkSize) {
  for (const char* text :
       {"\r\n", "g\r\n", "5 \r\n", " 5\r\n", "0x5\r\n", "-5\r\n", "+5\r\n", "5\t\r\n", ";a\r\n"}) {
    EXPECT_EQ(reject_chunked(text), ParseError::kInvalidChunkSize) << text;
  }
}

TEST(H1BodyDecoder, RejectsChunkSizeOverflow) {
  EXPECT_EQ(reject_chunked("8000000000000000\r\n"), ParseError::kChunkSizeTooLarge);
  EXPECT_EQ(reject_chunked("ffffffffffffffff\r\n"), ParseError::kChunkSizeTooLarge);
  EXPECT_EQ(reject_chunked("00000000000000001\r\n"), ParseError::kChunkSizeTooLarge);
  EXPECT_EQ(reject_chunked("1ffffffffffffffff\r\n"), ParseError::kChunkSizeTooLarge);
}

TEST(H1BodyDecoder, RejectsBareLfInChunkLines) {
  EXPECT_EQ(reject_chunked("5\nhello\r\n0\r\n\r\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_chunked("5;a=b\nhello\r\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_chunked("5;a\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_chunked("5;a=\"b\"\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_chunked("0\r\n\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_chunked("0\r\nX: y\n\r\n"), ParseError::kBareLf);
}

TEST(H1BodyDecoder, RejectsBareCrInChunkLines) {
  EXPECT_EQ(reject_chunked("5\rhello"), ParseError::kBareCr);
  EXPECT_EQ(reject_chunked("0\r\n\rX"), ParseError::kBareCr);
  EXPECT_EQ(reject_chunked("0\r\nX: y\rz\r\n\r\n"), ParseError::kBareCr);
}

TEST(H1BodyDecoder, RejectsMissingCrlfAfterChunkData) {
  EXPECT_EQ(reject_chunked("5\r\nhelloX\r\n0\r\n\r\n"), ParseError::kMissingChunkDataCrlf);
  EXPECT_EQ(reject_chunked("5\r\nhello\n0\r\n\r\n"), ParseError::kMissingChunkDataCrlf);
  EXPECT_EQ(reject_chunked("5\r\nhello\rX"), ParseError::kMissingChunkDataCrlf);
  EXPECT_EQ(reject_chunked("5\r\nhelloX\n0\r\n\r\n"), ParseError::kMissingChunkDataCrlf);
  // One byte too many in the chunk: the sixth byte is where CRLF must be.
  EXPECT_EQ(reject_chunked("5\r\nhello!\r\n0\r\n\r\n"), ParseError::kMissingChunkDataCrlf);
}

TEST(H1BodyDecoder, RejectsInvalidChunkExtension) {
  for (const char* text : {"5;\r\n", "5; a\r\n", "5 ;a\r\n", "5;a =b\r\n", "5;a= b\r\n", "5;a=\r\n",
                           "5;a=b c\r\n", "5;a=\"b\r\n", "5;a=\"b\"c\r\n", "5;a=\"\x01\"\r\n",
                           "5;;a\r\n", "5;a=b=c\r\n", "5;a=\"\\\x01\"\r\n"}) {
    const ParseError e = reject_chunked(text);
    // "5 ;a" fails at the space, which belongs to the size.
    EXPECT_EQ(e, text == std::string_view("5 ;a\r\n") ? ParseError::kInvalidChunkSize
                                                      : ParseError::kInvalidChunkExtension)
        << text;
  }
}

TEST(H1BodyDecoder, RejectsLongChunkExtension) {
  const std::string ok =
      "1;" + std::string(kMaxChunkExtensionBytes - 2, 'a') + "\r\nx\r\n0\r\n\r\n";
  EXPECT_EQ(decode_whole(BodyKind::kChunked, 0, ok).end, Step::kDone);
  const std::string text = "1;" + std::string(kMaxChunkExtensionBytes, 'a') + "\r\n";
  EXPECT_EQ(decode_whole(BodyKind::kChunked, 0, text).error, ParseError::kChunkExtensionTooLong);
  EXPECT_EQ(decode(BodyKind::kChunked, 0, pieces(text, 7)).error,
            ParseError::kChunkExtensionTooLong);
}

TEST(H1BodyDecoder, RejectsInvalidTrailerFields) {
  EXPECT_EQ(reject_chunked("0\r\nX : y\r\n\r\n"), ParseError::kWhitespaceBeforeColon);
  EXPECT_EQ(reject_chunked("0\r\nX: y\r\n z\r\n\r\n"), ParseError::kObsFold);
  EXPECT_EQ(reject_chunked("0\r\n\tX: y\r\n\r\n"), ParseError::kObsFold);
  EXPECT_EQ(reject_chunked("0\r\n: y\r\n\r\n"), ParseError::kEmptyFieldName);
  EXPECT_EQ(reject_chunked("0\r\nX(: y\r\n\r\n"), ParseError::kInvalidFieldName);
  EXPECT_EQ(reject_chunked("0\r\n(: y\r\n\r\n"), ParseError::kInvalidFieldName);
  EXPECT_EQ(reject_chunked("0\r\nX\r\n\r\n"), ParseError::kMissingColon);
  EXPECT_EQ(reject_chunked("0\r\nX: a\0b\r\n\r\n"s), ParseError::kInvalidFieldValue);
  EXPECT_EQ(reject_chunked("0\r\nX: a\x7f\r\n\r\n"), ParseError::kInvalidFieldValue);
}

TEST(H1BodyDecoder, RejectsForbiddenTrailerFields) {
  for (const char* name : {"Content-Length", "transfer-encoding", "HOST", "Trailer", "Connection",
                           "Keep-Alive", "TE", "Upgrade", "Proxy-Connection"}) {
    EXPECT_EQ(reject_chunked("0\r\n"s + name + ": 5\r\n\r\n"), ParseError::kForbiddenTrailerField)
        << name;
  }
}

TEST(H1BodyDecoder, RejectsTrailerTooLarge) {
  std::string trailers;
  while (trailers.size() <= kMaxTrailerBytes)
    trailers += "X-Pad: " + std::string(90, 'p') + "\r\n";
  const Decoded d = decode(BodyKind::kChunked, 0, pieces("0\r\n" + trailers + "\r\n", 1000));
  EXPECT_EQ(d.end, Step::kError);
  EXPECT_EQ(d.error, ParseError::kTrailerTooLarge);
  EXPECT_EQ(http_status(ParseError::kTrailerTooLarge), 431);
}

TEST(H1BodyDecoder, ErrorIsStickyAndDoneStaysDone) {
  BodyDecoder d;
  d.start(BodyKind::kChunked, 0);
  EXPECT_EQ(d.feed("x").kind, Step::kError);
  EXPECT_EQ(d.feed("5\r\n").kind, Step::kError);
  EXPECT_EQ(d.error(), ParseError::kInvalidChunkSize);
  EXPECT_EQ(d.state(), BodyDecoder::State::kError);

  d.start(BodyKind::kChunked, 0);
  EXPECT_EQ(d.error(), ParseError::kNone);
  EXPECT_EQ(d.feed("0\r\n\r\n").kind, Step::kDone);
  const Step again = d.feed("more");
  EXPECT_EQ(again.kind, Step::kDone);
  EXPECT_EQ(again.consumed, 0u);
}

TEST(H1BodyDecoder, StatesHaveNames) {
  EXPECT_STREQ(to_string(BodyDecoder::State::kChunkSize), "chunk-size");
  EXPECT_STREQ(to_string(BodyDecoder::State::kTrailerEndLf), "trailer-end-lf");
}

}  // namespace
}  // namespace egw::proto::h1

// The strict HTTP/1.1 head parsers: every rejection has its exact error, and
// feeding a message whole, byte by byte, or from a relocated buffer agrees.
#include "proto/h1/parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/h1/body.h"

namespace egw::proto::h1 {
namespace {

using namespace std::string_literals;

struct Outcome {
  ParseStatus status;
  ParseError error;
  size_t head_size;
};

// A request parser with its own header storage.
struct Req {
  explicit Req(const Limits& limits = {}) : storage(limits.max_headers), parser(limits, storage) {}
  std::vector<Header> storage;
  RequestParser parser;
};

struct Resp {
  explicit Resp(const Limits& limits = {}) : storage(limits.max_headers), parser(limits, storage) {}
  std::vector<Header> storage;
  ResponseParser parser;
};

Outcome outcome_of(ParseStatus s, ParseError e, size_t head_size) {
  return {s, e, s == ParseStatus::kComplete ? head_size : 0};
}

Outcome parse_request_whole(std::string_view text, const Limits& limits = {}) {
  Req r(limits);
  const ParseStatus s = r.parser.parse(text);
  return outcome_of(s, r.parser.error(), r.parser.head_size());
}

// Feeds growing prefixes one byte longer each time, each in a freshly
// allocated copy, so that every call also sees a relocated buffer.
Outcome parse_request_bytewise(std::string_view text, const Limits& limits = {}) {
  Req r(limits);
  ParseStatus s = ParseStatus::kIncomplete;
  std::unique_ptr<std::string> buf;
  for (size_t n = 0; n <= text.size() && s == ParseStatus::kIncomplete; ++n) {
    buf = std::make_unique<std::string>(text.substr(0, n));
    s = r.parser.parse(*buf);
  }
  return outcome_of(s, r.parser.error(), r.parser.head_size());
}

Outcome parse_response_whole(std::string_view text, Method m, const Limits& limits = {}) {
  Resp r(limits);
  const ParseStatus s = r.parser.parse(text, m);
  return outcome_of(s, r.parser.error(), r.parser.head_size());
}

Outcome parse_response_bytewise(std::string_view text, Method m, const Limits& limits = {}) {
  Resp r(limits);
  ParseStatus s = ParseStatus::kIncomplete;
  std::unique_ptr<std::string> buf;
  for (size_t n = 0; n <= text.size() && s == ParseStatus::kIncomplete; ++n) {
    buf = std::make_unique<std::string>(text.substr(0, n));
    s = r.parser.parse(*buf, m);
  }
  return outcome_of(s, r.parser.error(), r.parser.head_size());
}

// The error a request is rejected with; whole and byte-wise parsing must agree.
ParseError reject_request(std::string_view text, const Limits& limits = {}) {
  const Outcome whole = parse_request_whole(text, limits);
  const Outcome split = parse_request_bytewise(text, limits);
  EXPECT_EQ(whole.status, ParseStatus::kError) << text;
  EXPECT_EQ(split.status, whole.status) << text;
  EXPECT_EQ(split.error, whole.error) << text;
  return whole.error;
}

ParseError reject_response(std::string_view text, Method m = Method::kGet,
                           const Limits& limits = {}) {
  const Outcome whole = parse_response_whole(text, m, limits);
  const Outcome split = parse_response_bytewise(text, m, limits);
  EXPECT_EQ(whole.status, ParseStatus::kError) << text;
  EXPECT_EQ(split.status, whole.status) << text;
  EXPECT_EQ(split.error, whole.error) << text;
  return whole.error;
}

// A request line and Host, then `fields` (each ending in CRLF), then the end.
std::string get_with(std::string_view fields) {
  return "GET / HTTP/1.1\r\nHost: example.com\r\n"s + std::string(fields) + "\r\n";
}

std::string with_target(std::string_view method, std::string_view target) {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n\r\n";
}

bool inside(std::string_view view, std::string_view buf) {
  return view.data() >= buf.data() && view.data() + view.size() <= buf.data() + buf.size();
}

constexpr std::string_view kBrowserGet =
    "GET /search?q=io_uring&lang=en HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://www.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=abc123; theme=dark\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "X-Padded:  \t spaced value \t \r\n"
    "\r\n";

TEST(H1RequestParser, ParsesBrowserGet) {
  Req r;
  ASSERT_EQ(r.parser.parse(kBrowserGet), ParseStatus::kComplete);
  const RequestHead& h = r.parser.head();
  EXPECT_EQ(r.parser.head_size(), kBrowserGet.size());
  EXPECT_EQ(h.method, Method::kGet);
  EXPECT_EQ(h.method_text, "GET");
  EXPECT_EQ(h.target, "/search?q=io_uring&lang=en");
  EXPECT_EQ(h.version_minor, 1);
  ASSERT_EQ(h.headers.size(), 12u);
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[0].value, "www.example.com");
  EXPECT_EQ(h.headers[4].name, "Accept-Encoding");
  EXPECT_EQ(h.headers[4].value, "gzip, deflate, br");
  EXPECT_EQ(h.headers[11].name, "X-Padded");
  EXPECT_EQ(h.headers[11].value, "spaced value");
  EXPECT_EQ(h.host, "www.example.com");
  EXPECT_EQ(h.body, BodyKind::kNone);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.upgrade);
  for (const Header& f : h.headers) {
    EXPECT_TRUE(inside(f.name, kBrowserGet));
    EXPECT_TRUE(inside(f.value, kBrowserGet));
  }
}

TEST(H1RequestParser, IncompleteUntilTheEmptyLine) {
  Req r;
  const std::string full = get_with("");
  for (size_t n = 0; n < full.size(); ++n) {
    ASSERT_EQ(r.parser.parse(std::string_view(full).substr(0, n)), ParseStatus::kIncomplete) << n;
  }
  EXPECT_EQ(r.parser.parse(full), ParseStatus::kComplete);
}

TEST(H1RequestParser, ByteAtATimeMatchesOnePiece) {
  const Outcome whole = parse_request_whole(kBrowserGet);
  const Outcome split = parse_request_bytewise(kBrowserGet);
  EXPECT_EQ(whole.status, ParseStatus::kComplete);
  EXPECT_EQ(split.status, whole.status);
  EXPECT_EQ(split.head_size, whole.head_size);
}

TEST(H1RequestParser, RelocatedBufferKeepsViewsValid) {
  Req r;
  std::string_view full = kBrowserGet;
  auto first = std::make_unique<std::string>(full.substr(0, 200));
  ASSERT_EQ(r.parser.parse(*first), ParseStatus::kIncomplete);
  // Overwrite and free the first buffer: views must not depend on it.
  std::fill(first->begin(), first->end(), 'X');
  first.reset();
  const std::string second(full);
  ASSERT_EQ(r.parser.parse(second), ParseStatus::kComplete);
  const RequestHead& h = r.parser.head();
  EXPECT_EQ(h.headers[0].value, "www.example.com");
  EXPECT_EQ(h.headers[1].name, "User-Agent");
  for (const Header& f : h.headers) {
    EXPECT_TRUE(inside(f.name, second));
    EXPECT_TRUE(inside(f.value, second));
  }
  EXPECT_TRUE(inside(h.target, second));
  EXPECT_TRUE(inside(h.host, second));
  // Calling again after completion re-points the views at the new buffer.
  const std::string third(full);
  ASSERT_EQ(r.parser.parse(third), ParseStatus::kComplete);
  EXPECT_TRUE(inside(r.parser.head().headers[5].value, third));
  EXPECT_TRUE(inside(r.parser.head().method_text, third));
}

TEST(H1RequestParser, PipelinedRequestsWithBodies) {
  const std::string wire =
      "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  Req r;
  BodyDecoder body;
  std::string_view rest = wire;
  std::vector<std::string> targets, bodies;
  while (!rest.empty()) {
    ASSERT_EQ(r.parser.parse(rest), ParseStatus::kComplete);
    targets.emplace_back(r.parser.head().target);
    body.start(r.parser.head().body, r.parser.head().content_length);
    rest.remove_prefix(r.parser.head_size());
    std::string data;
    for (;;) {
      const BodyDecoder::Step s = body.feed(rest);
      rest.remove_prefix(s.consumed);
      if (s.kind == BodyDecoder::Step::kData) data.append(s.data);
      if (s.kind != BodyDecoder::Step::kData) {
        ASSERT_EQ(s.kind, BodyDecoder::Step::kDone);
        break;
      }
    }
    bodies.push_back(data);
    r.parser.reset();
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"/a", "/b", "/c"}));
  EXPECT_EQ(bodies, (std::vector<std::string>{"hello", "abc", ""}));
}

TEST(H1RequestParser, SkipsAFewEmptyLinesBeforeTheRequestLine) {
  const std::string text = "\r\n\r\n\r\n\r\n" + get_with("");
  Req r;
  ASSERT_EQ(r.parser.parse(text), ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head_size(), text.size());
  EXPECT_EQ(r.parser.head().method_text, "GET");
  EXPECT_EQ(parse_request_bytewise(text).status, ParseStatus::kComplete);
}

TEST(H1RequestParser, RejectsTooManyEmptyLines) {
  EXPECT_EQ(reject_request("\r\n\r\n\r\n\r\n\r\n" + get_with("")), ParseError::kTooManyEmptyLines);
}

TEST(H1RequestParser, KeepAliveRules) {
  struct Case {
    std::string text;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Foo\r\nConnection: close\r\n\r\n", false},
  };
  for (const Case& c : cases) {
    Req r;
    ASSERT_EQ(r.parser.parse(c.text), ParseStatus::kComplete) << c.text;
    EXPECT_EQ(r.parser.head().keep_alive, c.keep_alive) << c.text;
  }
}

TEST(H1RequestParser, ConnectionTokenLists) {
  Req r;
  const std::string text = get_with("Connection: close, X-Foo,,  x-bar \r\nX-Foo: 1\r\n");
  ASSERT_EQ(r.parser.parse(text), ParseStatus::kComplete);
  const RequestHead& h = r.parser.head();
  EXPECT_FALSE(h.keep_alive);
  EXPECT_TRUE(h.connection_has("x-foo"));
  EXPECT_TRUE(h.connection_has("X-Bar"));
  EXPECT_TRUE(h.connection_has("close"));
  EXPECT_FALSE(h.connection_has("X-Baz"));
  EXPECT_FALSE(h.connection_has("X"));
}

TEST(H1RequestParser, ExpectContinue) {
  Req r;
  ASSERT_EQ(r.parser.parse(get_with("Expect: 100-Continue\r\nContent-Length: 3\r\n")),
            ParseStatus::kComplete);
  EXPECT_TRUE(r.parser.head().expect_continue);

  // RFC 9110 §10.1.1: ignored in HTTP/1.0.
  Req r10;
  ASSERT_EQ(r10.parser.parse("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
            ParseStatus::kComplete);
  EXPECT_FALSE(r10.parser.head().expect_continue);
}

TEST(H1RequestParser, RejectsUnsupportedExpectation) {
  EXPECT_EQ(reject_request(get_with("Expect: 100-continue, x\r\n")),
            ParseError::kUnsupportedExpectation);
  EXPECT_EQ(reject_request(get_with("Expect: 200-ok\r\n")), ParseError::kUnsupportedExpectation);
  EXPECT_EQ(http_status(ParseError::kUnsupportedExpectation), 417);
}

TEST(H1RequestParser, Upgrade) {
  struct Case {
    std::string text;
    bool upgrade;
  };
  const Case cases[] = {
      {get_with("Connection: Upgrade\r\nUpgrade: websocket\r\n"), true},
      {get_with("Connection: keep-alive, upgrade\r\nUpgrade: websocket\r\n"), true},
      {get_with("Upgrade: websocket\r\n"), false},
      {get_with("Connection: upgrade\r\n"), false},
      {"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false},
  };
  for (const Case& c : cases) {
    Req r;
    ASSERT_EQ(r.parser.parse(c.text), ParseStatus::kComplete) << c.text;
    EXPECT_EQ(r.parser.head().upgrade, c.upgrade) << c.text;
  }
}

TEST(H1RequestParser, ContentLengthBody) {
  Req r;
  ASSERT_EQ(r.parser.parse(get_with("Content-Length: 0042\r\n")), ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head().body, BodyKind::kContentLength);
  EXPECT_EQ(r.parser.head().content_length, 42u);
}

TEST(H1RequestParser, AcceptsIdenticalRepeatedContentLength) {
  Req r;
  ASSERT_EQ(r.parser.parse(get_with("Content-Length: 7\r\ncontent-length: 7\r\n")),
            ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head().content_length, 7u);
}

TEST(H1RequestParser, AcceptsLargestContentLength) {
  Req r;
  ASSERT_EQ(r.parser.parse(get_with("Content-Length: 9223372036854775807\r\n")),
            ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head().content_length, 9223372036854775807u);
}

TEST(H1RequestParser, ChunkedBody) {
  Req r;
  ASSERT_EQ(r.parser.parse(get_with("Transfer-Encoding: Chunked\r\n")), ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head().body, BodyKind::kChunked);
}

TEST(H1RequestParser, ChunkedSpreadOverTwoFieldsIsFinal) {
  // "Transfer-Encoding: gzip" then "Transfer-Encoding: chunked" is the list
  // "gzip, chunked": chunked is final, gzip is unsupported.
  EXPECT_EQ(reject_request(get_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")),
            ParseError::kUnsupportedTransferCoding);
}

TEST(H1RequestParser, MethodsAndTargetForms) {
  struct Case {
    std::string method, target;
    Method m;
  };
  const Case cases[] = {
      {"GET", "/", Method::kGet},
      {"HEAD", "/a/b;c=d?e=f&g=%20", Method::kHead},
      {"POST", "/x", Method::kPost},
      {"PUT", "/x", Method::kPut},
      {"DELETE", "/x", Method::kDelete},
      {"PATCH", "/x", Method::kPatch},
      {"TRACE", "/x", Method::kTrace},
      {"OPTIONS", "*", Method::kOptions},
      {"OPTIONS", "/x", Method::kOptions},
      {"CONNECT", "example.com:443", Method::kConnect},
      {"CONNECT", "[2001:db8::1]:8443", Method::kConnect},
      {"CONNECT", "10.0.0.1:80", Method::kConnect},
      {"GET", "http://example.com", Method::kGet},
      {"GET", "http://example.com:8080/p?q#", Method::kGet},  // '#' rejected below
      {"GET", "https://[::1]:443/p?q", Method::kGet},
      {"get", "/", Method::kOther},
      {"M-SEARCH", "*x", Method::kOther},  // not asterisk-form: rejected below
      {"PROPFIND", "/dav", Method::kOther},
  };
  for (const Case& c : cases) {
    const std::string text = with_target(c.method, c.target);
    Req r;
    const ParseStatus s = r.parser.parse(text);
    if (c.target.find('#') != std::string::npos || c.target == "*x") {
      EXPECT_EQ(s, ParseStatus::kError) << text;
      continue;
    }
    ASSERT_EQ(s, ParseStatus::kComplete) << text << to_string(r.parser.error());
    EXPECT_EQ(r.parser.head().method, c.m) << text;
    EXPECT_EQ(r.parser.head().target, c.target);
  }
}

TEST(H1RequestParser, AcceptsObsTextAndTabInValues) {
  Req r;
  const std::string text = get_with("X-Name: caf\xc3\xa9\tbar\r\nX-Empty:\r\nX-Ws: \t \r\n");
  ASSERT_EQ(r.parser.parse(text), ParseStatus::kComplete);
  const RequestHead& h = r.parser.head();
  EXPECT_EQ(h.headers[1].value, "caf\xc3\xa9\tbar");
  EXPECT_EQ(h.headers[2].value, "");
  EXPECT_EQ(h.headers[3].value, "");
}

TEST(H1RequestParser, Http10WithoutHostIsAccepted) {
  Req r;
  ASSERT_EQ(r.parser.parse("GET / HTTP/1.0\r\n\r\n"), ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head().version_minor, 0);
  EXPECT_EQ(r.parser.head().host, "");
}

TEST(H1RequestParser, AcceptsHostForms) {
  for (const char* host : {"", "a", "example.com:8080", "[::1]", "[::ffff:1.2.3.4]:80", "a%2Db",
                           "xn--bcher-kva.example", "h:"}) {
    Req r;
    const std::string text = "GET / HTTP/1.1\r\nHost: "s + host + "\r\n\r\n";
    ASSERT_EQ(r.parser.parse(text), ParseStatus::kComplete) << host;
    EXPECT_EQ(r.parser.head().host, host);
  }
}

// --- rejections: start line ------------------------------------------------

TEST(H1RequestParser, RejectsRequestLineWithoutTarget) {
  EXPECT_EQ(reject_request("GET\r\nHost: h\r\n\r\n"), ParseError::kInvalidRequestLine);
}

TEST(H1RequestParser, RejectsInvalidMethod) {
  EXPECT_EQ(reject_request(with_target("G(T", "/")), ParseError::kInvalidMethod);
  EXPECT_EQ(reject_request(with_target("GE\x01T", "/")), ParseError::kInvalidMethod);
  EXPECT_EQ(reject_request(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::kInvalidMethod);
  EXPECT_EQ(reject_request("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::kInvalidMethod);
}

TEST(H1RequestParser, RejectsInvalidTarget) {
  for (const char* t : {"/a#frag", "/a\x01", "/caf\xc3\xa9", "/a{b}", "/a|b", "/a\"b", "/a<b>",
                        "/a\\b", "/a^b", "/a`b", "/%zz", "/%4", "/a%", "/[x]", "foo",
                        "http://user@host/", "http:///x", "http://h:99999/", "http://[::1/"}) {
    EXPECT_EQ(reject_request(with_target("GET", t)), ParseError::kInvalidTarget) << t;
  }
  // Two spaces: an empty target.
  EXPECT_EQ(reject_request("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::kInvalidTarget);
  EXPECT_EQ(reject_request(with_target("CONNECT", "example.com")), ParseError::kInvalidTarget);
  EXPECT_EQ(reject_request(with_target("CONNECT", "example.com:")), ParseError::kInvalidTarget);
}

TEST(H1RequestParser, RejectsSpaceInsideTarget) {
  // The second word is taken as the version.
  EXPECT_EQ(reject_request("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::kInvalidVersion);
}

TEST(H1RequestParser, RejectsTargetFormNotAllowedForMethod) {
  EXPECT_EQ(reject_request(with_target("CONNECT", "/")), ParseError::kTargetFormMismatch);
  EXPECT_EQ(reject_request(with_target("CONNECT", "http://a/")), ParseError::kTargetFormMismatch);
  EXPECT_EQ(reject_request(with_target("CONNECT", "*")), ParseError::kTargetFormMismatch);
  EXPECT_EQ(reject_request(with_target("GET", "*")), ParseError::kTargetFormMismatch);
  EXPECT_EQ(reject_request(with_target("GET", "example.com:80")), ParseError::kTargetFormMismatch);
}

TEST(H1RequestParser, RejectsHttp09) {
  EXPECT_EQ(reject_request("GET /\r\n\r\n"), ParseError::kHttp09);
  EXPECT_EQ(reject_request("GET /index.html\n"), ParseError::kHttp09);
  EXPECT_EQ(http_status(ParseError::kHttp09), 400);
}

TEST(H1RequestParser, RejectsMalformedVersion) {
  for (const char* v : {"http/1.1", "HTTP/1", "HTTP/1.", "HTTP/1.1 ", "HTTP/1.10", "HTTP/11",
                        "HTTP/1,1", "HTTP/a.1", "HTTPS/1.1", "HTTP/1.1x"}) {
    const std::string text = "GET / "s + v + "\r\nHost: h\r\n\r\n";
    EXPECT_EQ(reject_request(text), ParseError::kInvalidVersion) << v;
  }
  EXPECT_EQ(http_status(ParseError::kInvalidVersion), 400);
}

TEST(H1RequestParser, RejectsUnsupportedVersion) {
  for (const char* v : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.1"}) {
    const std::string text = "GET / "s + v + "\r\nHost: h\r\n\r\n";
    EXPECT_EQ(reject_request(text), ParseError::kUnsupportedVersion) << v;
  }
  EXPECT_EQ(http_status(ParseError::kUnsupportedVersion), 505);
}

TEST(H1RequestParser, RejectsLongRequestLine) {
  Limits limits;
  limits.max_request_line = 64;
  // The line "GET <target> HTTP/1.1" is exactly 64 bytes: accepted.
  const std::string ok_target = "/" + std::string(64 - 13 - 1, 'a');
  Req r(limits);
  ASSERT_EQ(r.parser.parse(with_target("GET", ok_target)), ParseStatus::kComplete);
  // One byte more: 414, whole or byte-wise.
  EXPECT_EQ(reject_request(with_target("GET", ok_target + "a"), limits),
            ParseError::kStartLineTooLong);
  EXPECT_EQ(http_status(ParseError::kStartLineTooLong), 414);
}

TEST(H1RequestParser, RejectsLongRequestLineBeforeItEnds) {
  Limits limits;
  limits.max_request_line = 64;
  Req r(limits);
  const std::string partial = "GET /" + std::string(59, 'a');  // 64 bytes, no CRLF yet
  EXPECT_EQ(r.parser.parse(partial), ParseStatus::kIncomplete);
  EXPECT_EQ(r.parser.parse(partial + "a"), ParseStatus::kError);
  EXPECT_EQ(r.parser.error(), ParseError::kStartLineTooLong);
}

// Found by fuzzing: the limit must win over errors later in the line whether
// the line arrives whole or in pieces.
TEST(H1RequestParser, LongLineWithBadVersionIsRejectedAlikeWholeOrSplit) {
  Limits limits;
  limits.max_request_line = 32;
  EXPECT_EQ(reject_request("GET /" + std::string(40, 'a') + " HTTP/0.1\r\nHost: h\r\n\r\n", limits),
            ParseError::kStartLineTooLong);
}

// --- rejections: line structure ---------------------------------------------

TEST(H1RequestParser, RejectsBareCr) {
  EXPECT_EQ(reject_request("GET / HTTP/1.1\rHost: h\r\n\r\n"), ParseError::kBareCr);
  EXPECT_EQ(reject_request(get_with("X: a\rb\r\n")), ParseError::kBareCr);
  EXPECT_EQ(reject_request("GET / HTTP/1.1\r\nHost: h\r\n\rX"), ParseError::kBareCr);
  EXPECT_EQ(reject_request("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::kBareCr);
}

TEST(H1RequestParser, RejectsBareLf) {
  EXPECT_EQ(reject_request("GET / HTTP/1.1\nHost: h\r\n\r\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_request("GET / HTTP/1.1\r\nHost: h\n\r\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_request("GET / HTTP/1.1\r\nHost: h\r\n\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_request("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::kBareLf);
}

TEST(H1RequestParser, RejectsObsFold) {
  EXPECT_EQ(reject_request(get_with("X-A: one\r\n two\r\n")), ParseError::kObsFold);
  EXPECT_EQ(reject_request(get_with("X-A: one\r\n\ttwo\r\n")), ParseError::kObsFold);
}

TEST(H1RequestParser, RejectsWhitespaceAfterStartLine) {
  EXPECT_EQ(reject_request("GET / HTTP/1.1\r\n Host: h\r\n\r\n"),
            ParseError::kWhitespaceAfterStartLine);
}

// --- rejections: field lines -------------------------------------------------

TEST(H1RequestParser, RejectsEmptyFieldName) {
  EXPECT_EQ(reject_request(get_with(": value\r\n")), ParseError::kEmptyFieldName);
}

TEST(H1RequestParser, RejectsInvalidFieldName) {
  EXPECT_EQ(reject_request(get_with("X(y): v\r\n")), ParseError::kInvalidFieldName);
  EXPECT_EQ(reject_request(get_with("X\0y: v\r\n"s)), ParseError::kInvalidFieldName);
  EXPECT_EQ(reject_request(get_with("X\xc3\xa9: v\r\n")), ParseError::kInvalidFieldName);
  EXPECT_EQ(reject_request(get_with("X\x7fy: v\r\n")), ParseError::kInvalidFieldName);
}

TEST(H1RequestParser, RejectsContentLengthWithWhitespaceBeforeColon) {
  EXPECT_EQ(reject_request(get_with("Content-Length : 5\r\n")), ParseError::kWhitespaceBeforeColon);
  EXPECT_EQ(reject_request(get_with("Host\t: h\r\n")), ParseError::kWhitespaceBeforeColon);
}

TEST(H1RequestParser, RejectsFieldLineWithoutColon) {
  EXPECT_EQ(reject_request(get_with("X-Novalue\r\n")), ParseError::kMissingColon);
}

TEST(H1RequestParser, RejectsCtlInFieldValue) {
  EXPECT_EQ(reject_request(get_with("X: a\0b\r\n"s)), ParseError::kInvalidFieldValue);
  EXPECT_EQ(reject_request(get_with("X: a\x01\r\n")), ParseError::kInvalidFieldValue);
  EXPECT_EQ(reject_request(get_with("X: a\x7f\r\n")), ParseError::kInvalidFieldValue);
  EXPECT_EQ(reject_request(get_with("X: a\x1b[0m\r\n")), ParseError::kInvalidFieldValue);
}

TEST(H1RequestParser, RejectsTooManyHeaders) {
  Limits limits;
  limits.max_headers = 4;
  std::string fields;
  for (int i = 0; i < 3; ++i)
    fields += "X-" + std::to_string(i) + ": v\r\n";
  Req ok(limits);
  ASSERT_EQ(ok.parser.parse(get_with(fields)), ParseStatus::kComplete);  // Host + 3 = 4
  fields += "X-3: v\r\n";
  EXPECT_EQ(reject_request(get_with(fields), limits), ParseError::kTooManyHeaders);
  EXPECT_EQ(http_status(ParseError::kTooManyHeaders), 431);
}

TEST(H1RequestParser, HeaderStorageSmallerThanLimitLowersIt) {
  std::vector<Header> storage(2);
  RequestParser p(Limits{}, storage);
  EXPECT_EQ(p.parse(get_with("A: 1\r\nB: 2\r\n")), ParseStatus::kError);
  EXPECT_EQ(p.error(), ParseError::kTooManyHeaders);
}

TEST(H1RequestParser, RejectsHeadTooLarge) {
  Limits limits;
  limits.max_head_bytes = 128;
  const std::string base = get_with("");  // 37 bytes
  // A head of exactly 128 bytes is accepted.
  const std::string pad = "X: " + std::string(128 - base.size() - 5, 'v') + "\r\n";
  const std::string exact = get_with(pad);
  ASSERT_EQ(exact.size(), 128u);
  Req ok(limits);
  ASSERT_EQ(ok.parser.parse(exact), ParseStatus::kComplete);
  // One more byte of value: 431.
  EXPECT_EQ(reject_request(get_with("X: v" + pad.substr(3)), limits), ParseError::kHeadTooLarge);
  EXPECT_EQ(http_status(ParseError::kHeadTooLarge), 431);
}

TEST(H1RequestParser, RejectsHeadTooLargeWithoutWaitingForItsEnd) {
  Limits limits;
  limits.max_head_bytes = 128;
  Req r(limits);
  std::string text = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  text.resize(127, 'v');
  EXPECT_EQ(r.parser.parse(text), ParseStatus::kIncomplete);
  text += 'v';
  EXPECT_EQ(r.parser.parse(text), ParseStatus::kError);
  EXPECT_EQ(r.parser.error(), ParseError::kHeadTooLarge);
}

TEST(H1RequestParser, BodyBytesAfterHeadDoNotCountTowardsHeadLimit) {
  Limits limits;
  limits.max_head_bytes = 64;
  Req r(limits);
  const std::string text = get_with("Content-Length: 100\r\n") + std::string(100, 'b');
  ASSERT_EQ(r.parser.parse(text), ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head_size(), text.size() - 100);
}

// --- rejections: field semantics ---------------------------------------------

TEST(H1RequestParser, RejectsMissingHost) {
  EXPECT_EQ(reject_request("GET / HTTP/1.1\r\n\r\n"), ParseError::kMissingHost);
  EXPECT_EQ(http_status(ParseError::kMissingHost), 400);
}

TEST(H1RequestParser, RejectsDuplicateHost) {
  EXPECT_EQ(reject_request(get_with("Host: example.com\r\n")), ParseError::kDuplicateHost);
  EXPECT_EQ(reject_request("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
            ParseError::kDuplicateHost);
}

TEST(H1RequestParser, RejectsInvalidHost) {
  for (const char* host : {"a b", "user@a", "a:99999", "a:12345678", "[::1", "[]", "[1.2.3.4]",
                           ":80", "a:b", "a/b", "a%zz", "a:80:90", "[::1]x"}) {
    const std::string text = "GET / HTTP/1.1\r\nHost: "s + host + "\r\n\r\n";
    EXPECT_EQ(reject_request(text), ParseError::kInvalidHost) << host;
  }
}

TEST(H1RequestParser, RejectsMalformedContentLength) {
  for (const char* v : {"", "+1", "-1", "1 2", "abc", "1,1", "1, 1", "0x10", "1.0", "١"}) {
    EXPECT_EQ(reject_request(get_with("Content-Length: "s + v + "\r\n")),
              ParseError::kInvalidContentLength)
        << v;
  }
}

TEST(H1RequestParser, RejectsContentLengthOverflow) {
  for (const char* v : {"9223372036854775808", "18446744073709551616", "99999999999999999999",
                        "00000000000000000001"}) {
    EXPECT_EQ(reject_request(get_with("Content-Length: "s + v + "\r\n")),
              ParseError::kContentLengthTooLarge)
        << v;
  }
}

TEST(H1RequestParser, RejectsDifferingContentLength) {
  EXPECT_EQ(reject_request(get_with("Content-Length: 5\r\nContent-Length: 6\r\n")),
            ParseError::kConflictingContentLength);
}

TEST(H1RequestParser, RejectsContentLengthWithTransferEncoding) {
  EXPECT_EQ(reject_request(get_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")),
            ParseError::kContentLengthWithTransferEncoding);
  EXPECT_EQ(reject_request(get_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")),
            ParseError::kContentLengthWithTransferEncoding);
}

TEST(H1RequestParser, RejectsInvalidTransferEncoding) {
  for (const char* v : {"", "chunked;q=1", ", chunked", "chunked,", "chunked, ,chunked",
                        "\"chunked\"", "chunked x"}) {
    EXPECT_EQ(reject_request(get_with("Transfer-Encoding: "s + v + "\r\n")),
              ParseError::kInvalidTransferEncoding)
        << v;
  }
}

TEST(H1RequestParser, RejectsChunkedNotFinal) {
  for (const char* v : {"chunked, gzip", "identity", "gzip", "chunked, identity"}) {
    EXPECT_EQ(reject_request(get_with("Transfer-Encoding: "s + v + "\r\n")),
              ParseError::kChunkedNotFinal)
        << v;
  }
  EXPECT_EQ(http_status(ParseError::kChunkedNotFinal), 400);
}

TEST(H1RequestParser, RejectsChunkedTwice) {
  EXPECT_EQ(reject_request(get_with("Transfer-Encoding: chunked, chunked\r\n")),
            ParseError::kChunkedTwice);
  EXPECT_EQ(
      reject_request(get_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")),
      ParseError::kChunkedTwice);
}

TEST(H1RequestParser, RejectsUnknownTransferCoding) {
  EXPECT_EQ(reject_request(get_with("Transfer-Encoding: gzip, chunked\r\n")),
            ParseError::kUnsupportedTransferCoding);
  EXPECT_EQ(reject_request(get_with("Transfer-Encoding: x-custom, chunked\r\n")),
            ParseError::kUnsupportedTransferCoding);
  EXPECT_EQ(http_status(ParseError::kUnsupportedTransferCoding), 501);
}

TEST(H1RequestParser, RejectsTransferEncodingInHttp10) {
  EXPECT_EQ(reject_request("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseError::kTransferEncodingInHttp10);
}

TEST(H1RequestParser, RejectsInvalidConnectionOption) {
  EXPECT_EQ(reject_request(get_with("Connection: close;x\r\n")), ParseError::kInvalidConnection);
  EXPECT_EQ(reject_request(get_with("Connection: \"close\"\r\n")), ParseError::kInvalidConnection);
}

TEST(H1RequestParser, ResetParsesTheNextRequest) {
  Req r;
  ASSERT_EQ(r.parser.parse(get_with("Content-Length: 1\r\n")), ParseStatus::kComplete);
  r.parser.reset();
  EXPECT_EQ(r.parser.head().headers.size(), 0u);
  ASSERT_EQ(r.parser.parse("GET /next HTTP/1.0\r\n\r\n"), ParseStatus::kComplete);
  EXPECT_EQ(r.parser.head().target, "/next");
  EXPECT_EQ(r.parser.head().body, BodyKind::kNone);
  EXPECT_EQ(r.parser.head().headers.size(), 0u);
}

TEST(H1RequestParser, ErrorIsSticky) {
  Req r;
  ASSERT_EQ(r.parser.parse("GET / HTTP/1.1\n"), ParseStatus::kError);
  EXPECT_EQ(r.parser.parse(get_with("")), ParseStatus::kError);
  EXPECT_EQ(r.parser.error(), ParseError::kBareLf);
  EXPECT_EQ(r.parser.state(), HeadState::kError);
}

TEST(H1ParseError, EveryErrorHasTextAndStatus) {
  for (int i = 0; i <= static_cast<int>(ParseError::kTruncatedBody); ++i) {
    const auto e = static_cast<ParseError>(i);
    EXPECT_STRNE(to_string(e), "unknown error") << i;
    const int status = http_status(e);
    if (e == ParseError::kNone) {
      EXPECT_EQ(status, 0);
    } else {
      EXPECT_TRUE(status == 400 || status == 414 || status == 417 || status == 431 ||
                  status == 501 || status == 505)
          << i;
    }
  }
  EXPECT_STREQ(to_string(ParseError::kContentLengthWithTransferEncoding),
               "content-length with transfer-encoding");
}

// --- responses ----------------------------------------------------------------

TEST(H1ResponseParser, ParsesResponseWithContentLength) {
  Resp r;
  const std::string text =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
  ASSERT_EQ(r.parser.parse(text, Method::kGet), ParseStatus::kComplete);
  const ResponseHead& h = r.parser.head();
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.body, BodyKind::kContentLength);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.headers.size(), 2u);
  EXPECT_EQ(r.parser.head_size(), text.size() - 5);
  EXPECT_EQ(parse_response_bytewise(text, Method::kGet).head_size, text.size() - 5);
}

TEST(H1ResponseParser, ReasonMayBeEmptyOrContainSpaces) {
  Resp a;
  ASSERT_EQ(a.parser.parse("HTTP/1.1 404 Not  Found \r\nContent-Length: 0\r\n\r\n", Method::kGet),
            ParseStatus::kComplete);
  EXPECT_EQ(a.parser.head().reason, "Not  Found ");
  Resp b;
  ASSERT_EQ(b.parser.parse("HTTP/1.1 204 \r\n\r\n", Method::kGet), ParseStatus::kComplete);
  EXPECT_EQ(b.parser.head().reason, "");
  // Accepted deviation: no SP before the empty reason.
  Resp c;
  ASSERT_EQ(c.parser.parse("HTTP/1.1 204\r\n\r\n", Method::kGet), ParseStatus::kComplete);
  EXPECT_EQ(c.parser.head().status, 204);
}

TEST(H1ResponseParser, BodyFramingByStatusAndMethod) {
  struct Case {
    std::string text;
    Method method;
    BodyKind body;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\n\r\n", Method::kGet, BodyKind::kUntilClose, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Method::kGet, BodyKind::kChunked,
       true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", Method::kHead, BodyKind::kNone, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Method::kHead, BodyKind::kNone,
       true},
      {"HTTP/1.1 204 No Content\r\n\r\n", Method::kGet, BodyKind::kNone, true},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", Method::kGet, BodyKind::kNone,
       true},
      {"HTTP/1.1 200 Connection Established\r\n\r\n", Method::kConnect, BodyKind::kNone, true},
      {"HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", Method::kConnect, BodyKind::kContentLength,
       true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", Method::kGet, BodyKind::kContentLength,
       false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", Method::kGet,
       BodyKind::kContentLength, true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", Method::kGet,
       BodyKind::kContentLength, false},
  };
  for (const Case& c : cases) {
    Resp r;
    ASSERT_EQ(r.parser.parse(c.text, c.method), ParseStatus::kComplete) << c.text;
    EXPECT_EQ(r.parser.head().body, c.body) << c.text;
    EXPECT_EQ(r.parser.head().keep_alive, c.keep_alive) << c.text;
  }
}

TEST(H1ResponseParser, InformationalThenFinalResponse) {
  const std::string wire =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  Resp r;
  std::string_view rest = wire;
  std::vector<int> statuses;
  for (;;) {
    ASSERT_EQ(r.parser.parse(rest, Method::kPost), ParseStatus::kComplete);
    statuses.push_back(r.parser.head().status);
    rest.remove_prefix(r.parser.head_size());
    if (!r.parser.head().informational()) break;
    EXPECT_EQ(r.parser.head().body, BodyKind::kNone);
    r.parser.reset();
  }
  EXPECT_EQ(statuses, (std::vector<int>{100, 103, 201}));
  EXPECT_EQ(rest, "ok");
}

TEST(H1ResponseParser, SwitchingProtocols) {
  Resp r;
  ASSERT_EQ(r.parser.parse("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                           "Upgrade: websocket\r\n\r\n",
                           Method::kGet),
            ParseStatus::kComplete);
  EXPECT_TRUE(r.parser.head().upgrade);
  EXPECT_EQ(r.parser.head().body, BodyKind::kNone);
}

TEST(H1ResponseParser, DoesNotNeedHost) {
  Resp r;
  ASSERT_EQ(r.parser.parse("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
                           Method::kGet),
            ParseStatus::kComplete);
}

TEST(H1ResponseParser, RejectsMalformedStatusLine) {
  EXPECT_EQ(reject_response("HTTP/1.1 2000 OK\r\n\r\n"), ParseError::kInvalidStatusCode);
  EXPECT_EQ(reject_response("HTTP/1.1 20 OK\r\n\r\n"), ParseError::kInvalidStatusCode);
  EXPECT_EQ(reject_response("HTTP/1.1 2x0 OK\r\n\r\n"), ParseError::kInvalidStatusCode);
  EXPECT_EQ(reject_response("HTTP/1.1 099 Low\r\n\r\n"), ParseError::kInvalidStatusCode);
  EXPECT_EQ(reject_response("HTTP/1.1 600 High\r\n\r\n"), ParseError::kInvalidStatusCode);
  EXPECT_EQ(reject_response("HTTP/1.1  200 OK\r\n\r\n"), ParseError::kInvalidStatusCode);
  EXPECT_EQ(reject_response("HTTP/1.1\r\n\r\n"), ParseError::kInvalidStatusLine);
  EXPECT_EQ(reject_response("HTTP/1.1\t200 OK\r\n\r\n"), ParseError::kInvalidStatusLine);
  EXPECT_EQ(reject_response("HTTP/1.1 200 O\x01K\r\n\r\n"), ParseError::kInvalidReason);
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\n\r\n"), ParseError::kBareLf);
  EXPECT_EQ(reject_response("HTTP/1.1 200\n\r\n"), ParseError::kBareLf);
}

TEST(H1ResponseParser, RejectsBadVersions) {
  EXPECT_EQ(reject_response("HTTP/2.0 200 OK\r\n\r\n"), ParseError::kUnsupportedVersion);
  EXPECT_EQ(reject_response("HTP/1.1 200 OK\r\n\r\n"), ParseError::kInvalidVersion);
  EXPECT_EQ(reject_response("\r\nHTTP/1.1 200 OK\r\n\r\n"), ParseError::kInvalidVersion);
  EXPECT_EQ(reject_response("ICY 200 OK\r\n\r\n"), ParseError::kInvalidVersion);
}

TEST(H1ResponseParser, RejectsFramingConflicts) {
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"),
            ParseError::kContentLengthWithTransferEncoding);
  // RFC 9112 §6.3 would read this until close; we reject it.
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            ParseError::kChunkedNotFinal);
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            ParseError::kUnsupportedTransferCoding);
  EXPECT_EQ(reject_response("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseError::kTransferEncodingInHttp10);
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            ParseError::kConflictingContentLength);
}

TEST(H1ResponseParser, RejectsFieldErrorsLikeRequests) {
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nX : y\r\n\r\n"),
            ParseError::kWhitespaceBeforeColon);
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n"), ParseError::kObsFold);
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nX: \0\r\n\r\n"s), ParseError::kInvalidFieldValue);
}

TEST(H1ResponseParser, RejectsLongStatusLineAndHead) {
  Limits limits;
  limits.max_request_line = 32;
  limits.max_head_bytes = 64;
  EXPECT_EQ(
      reject_response("HTTP/1.1 200 " + std::string(40, 'r') + "\r\n\r\n", Method::kGet, limits),
      ParseError::kStartLineTooLong);
  EXPECT_EQ(reject_response("HTTP/1.1 200 OK\r\nX: " + std::string(60, 'v') + "\r\n\r\n",
                            Method::kGet, limits),
            ParseError::kHeadTooLarge);
}

}  // namespace
}  // namespace egw::proto::h1

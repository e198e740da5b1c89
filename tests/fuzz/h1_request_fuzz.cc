// libFuzzer target for the HTTP/1.1 request parser and body decoder.
//
// Input: two bytes that seed the split points and the limits, then the
// message. Invariants (a failure traps):
//   - parsing in one piece and in random pieces, each piece handed over in a
//     freshly allocated buffer (relocation), gives the same status, error,
//     head size and head;
//   - every view lies inside the buffer of the last call, within the head;
//   - the body decoder consumes at most what it is given, returns views
//     inside the consumed prefix, and gives the same data, trailers, end and
//     error in one piece and in random fragments;
//   - an accepted head, written back with HeadWriter, parses to the same head;
//   - its neutral form (proto/http) keeps the method, fields and framing, its
//     views lie inside the head, an h2c-only upgrade is no upgrade, and a
//     request line written from it (origin-form, or the authority for
//     CONNECT) with Host parses again.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/h1/body.h"
#include "proto/h1/encoder.h"
#include "proto/h1/parser.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace egw::proto::h1;

using egw::fuzz::Rng;

bool inside(std::string_view v, std::string_view buf) {
  return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size();
}

size_t offset(std::string_view v, std::string_view buf) {
  return static_cast<size_t>(v.data() - buf.data());
}

// The head with views replaced by offsets into its buffer, for comparison.
struct Flat {
  std::vector<size_t> offsets;
  std::vector<std::string> texts;
  uint64_t content_length;
  int flags;
};

Flat flatten(const RequestHead& h, std::string_view buf, size_t head_size) {
  const std::string_view head = buf.substr(0, head_size);
  Flat f;
  const auto add = [&](std::string_view v) {
    FUZZ_CHECK(inside(v, head));
    f.offsets.push_back(offset(v, buf));
    f.offsets.push_back(v.size());
  };
  add(h.method_text);
  add(h.target);
  if (!h.host.empty()) add(h.host);
  for (const Header& x : h.headers) {
    add(x.name);
    add(x.value);
  }
  f.content_length = h.content_length;
  f.flags = static_cast<int>(h.method) | h.version_minor << 4 | static_cast<int>(h.body) << 5 |
            h.keep_alive << 8 | h.expect_continue << 9 | h.upgrade << 10;
  return f;
}

// Like flatten(), by content rather than position (for re-encoded heads).
Flat texts_of(const RequestHead& h) {
  Flat f;
  f.texts = {std::string(h.method_text), std::string(h.target), std::string(h.host)};
  for (const Header& x : h.headers) {
    f.texts.emplace_back(x.name);
    f.texts.emplace_back(x.value);
  }
  f.content_length = h.content_length;
  f.flags = static_cast<int>(h.method) | h.version_minor << 4 | static_cast<int>(h.body) << 5 |
            h.keep_alive << 8 | h.expect_continue << 9 | h.upgrade << 10;
  return f;
}

bool same(const Flat& a, const Flat& b) {
  return a.offsets == b.offsets && a.texts == b.texts && a.content_length == b.content_length &&
         a.flags == b.flags;
}

struct BodyResult {
  std::string data, trailer;
  BodyDecoder::Step::Kind end = BodyDecoder::Step::kNeedMore;
  ParseError error = ParseError::kNone;
  size_t consumed = 0;
};

// Decodes `in` as fragments of the lengths `rng` picks (all of it at once
// when rng is null), each copied into its own allocation.
BodyResult decode(BodyKind kind, uint64_t cl, std::string_view in, Rng* rng) {
  BodyDecoder d;
  d.start(kind, cl);
  BodyResult out;
  size_t at = 0;
  do {
    const size_t len = rng == nullptr ? in.size() : std::min(rng->step(), in.size() - at);
    std::unique_ptr<char[]> frag(new char[len + 1]);
    if (len != 0) std::memcpy(frag.get(), in.data() + at, len);
    std::string_view rest(frag.get(), len);
    at += len;
    for (;;) {
      const BodyDecoder::Step s = d.feed(rest);
      FUZZ_CHECK(s.consumed <= rest.size());
      if (s.kind == BodyDecoder::Step::kData || s.kind == BodyDecoder::Step::kTrailer) {
        FUZZ_CHECK(inside(s.data, rest.substr(0, s.consumed)));
      } else {
        FUZZ_CHECK(s.data.empty());
      }
      rest.remove_prefix(s.consumed);
      out.consumed += s.consumed;
      if (s.kind == BodyDecoder::Step::kData) {
        FUZZ_CHECK(!s.data.empty());
        out.data.append(s.data);
      } else if (s.kind == BodyDecoder::Step::kTrailer) {
        out.trailer.append(s.data);
      } else if (s.kind == BodyDecoder::Step::kNeedMore) {
        FUZZ_CHECK(rest.empty());
        FUZZ_CHECK(!d.done());
        break;
      } else {
        FUZZ_CHECK(d.done() == (s.kind == BodyDecoder::Step::kDone));
        FUZZ_CHECK((d.error() != ParseError::kNone) == (s.kind == BodyDecoder::Step::kError));
        out.end = s.kind;
        out.error = d.error();
        return out;
      }
    }
  } while (at < in.size());
  FUZZ_CHECK(out.consumed == in.size());
  // The connection closes here: only an until-close body ends with it.
  const bool ended = d.end_of_input();
  FUZZ_CHECK(ended == (kind == BodyKind::kUntilClose));
  FUZZ_CHECK(ended == (d.error() == ParseError::kNone));
  return out;
}

void check_body(BodyKind kind, uint64_t cl, std::string_view in, Rng& rng) {
  const BodyResult whole = decode(kind, cl, in, nullptr);
  const BodyResult split = decode(kind, cl, in, &rng);
  FUZZ_CHECK(whole.end == split.end);
  FUZZ_CHECK(whole.error == split.error);
  FUZZ_CHECK(whole.data == split.data);
  if (whole.end != BodyDecoder::Step::kError) {
    FUZZ_CHECK(whole.trailer == split.trailer);
    FUZZ_CHECK(whole.consumed == split.consumed);
  }
  if (kind == BodyKind::kContentLength && whole.end == BodyDecoder::Step::kDone) {
    FUZZ_CHECK(whole.data.size() == cl);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Rng rng{static_cast<uint32_t>(data[0] | data[1] << 8) * 2654435761u | 1u};
  const std::string_view msg(reinterpret_cast<const char*>(data + 2), size - 2);

  Limits limits;
  if ((data[0] & 1) != 0) {  // small limits, so that inputs reach them
    limits.max_request_line = 16 + data[1] % 64;
    limits.max_head_bytes = 32 + data[1] * 2;
    limits.max_headers = 1 + data[0] % 8;
  }

  std::vector<Header> storage1(limits.max_headers), storage2(limits.max_headers);
  RequestParser whole(limits, storage1);
  const ParseStatus s1 = whole.parse(msg);

  RequestParser split(limits, storage2);
  ParseStatus s2 = ParseStatus::kIncomplete;
  std::unique_ptr<char[]> buf;
  size_t n = 0;
  for (;;) {
    buf.reset();  // free the previous buffer before the next call
    buf.reset(new char[n + 1]);
    if (n != 0) std::memcpy(buf.get(), msg.data(), n);
    s2 = split.parse(std::string_view(buf.get(), n));
    if (s2 != ParseStatus::kIncomplete || n == msg.size()) break;
    n = std::min(msg.size(), n + rng.step());
  }
  const std::string_view last(buf.get(), n);

  FUZZ_CHECK(s1 == s2);
  FUZZ_CHECK(whole.error() == split.error());
  FUZZ_CHECK((s1 == ParseStatus::kError) == (whole.error() != ParseError::kNone));
  if (s1 == ParseStatus::kError) FUZZ_CHECK(http_status(whole.error()) >= 400);

  if (s1 != ParseStatus::kComplete) {
    check_body((data[1] & 1) != 0 ? BodyKind::kChunked : BodyKind::kContentLength, data[0], msg,
               rng);
    return 0;
  }

  const size_t head_size = whole.head_size();
  FUZZ_CHECK(head_size <= msg.size() && head_size == split.head_size());
  FUZZ_CHECK(head_size <= limits.max_head_bytes);
  const RequestHead& h = whole.head();
  FUZZ_CHECK(h.headers.size() <= limits.max_headers);
  FUZZ_CHECK(same(flatten(h, msg, head_size), flatten(split.head(), last, head_size)));
  FUZZ_CHECK(h.body != BodyKind::kUntilClose);
  FUZZ_CHECK(h.version_minor <= 1);

  check_body(h.body, h.content_length, msg.substr(head_size), rng);

  // Written back, the head parses to the same content.
  std::vector<char> out(head_size + 2 * h.headers.size() + 64);
  HeadWriter w(out.data(), out.size());
  bool ok = w.request_line(h.method_text, h.target, h.version_minor);
  for (const Header& x : h.headers)
    ok = ok && w.header(x.name, x.value);
  ok = ok && w.end();
  FUZZ_CHECK(ok);
  Limits relaxed = limits;
  relaxed.max_head_bytes += 2 * limits.max_headers + 64;
  std::vector<Header> storage3(limits.max_headers);
  RequestParser again(relaxed, storage3);
  FUZZ_CHECK(again.parse(w.view()) == ParseStatus::kComplete);
  FUZZ_CHECK(again.head_size() == w.size());
  FUZZ_CHECK(same(texts_of(h), texts_of(again.head())));

  // The neutral form.
  namespace ph = egw::proto::http;
  const ph::RequestHead nh = h.neutral();
  const std::string_view head = msg.substr(0, head_size);
  FUZZ_CHECK(nh.method == h.method && nh.method_text == h.method_text);
  FUZZ_CHECK(nh.fields.size() == h.headers.size());
  FUZZ_CHECK((nh.body == ph::Body::kNone) == (h.body == BodyKind::kNone));
  FUZZ_CHECK((nh.body == ph::Body::kUnknown) == (h.body == BodyKind::kChunked));
  FUZZ_CHECK(nh.content_length == h.content_length);
  FUZZ_CHECK(nh.version == (h.version_minor == 0 ? 10 : 11));
  if (!nh.authority.empty()) FUZZ_CHECK(inside(nh.authority, head));
  if (!nh.scheme.empty()) FUZZ_CHECK(inside(nh.scheme, head));
  if (!nh.path.empty() && nh.path != "/") FUZZ_CHECK(inside(nh.path, head));
  if (!nh.upgrade.empty()) {
    FUZZ_CHECK(h.upgrade);
    bool other = false;
    ph::for_each_list_element(nh.upgrade,
                              [&](std::string_view e) { other = other || !ph::iequals(e, "h2c"); });
    FUZZ_CHECK(other);
  }
  if (h.method == Method::kConnect) {
    FUZZ_CHECK(nh.authority == h.target && nh.path.empty());
  } else {
    FUZZ_CHECK(!nh.path.empty());
    if (h.target.front() == '/' || h.target == "*") FUZZ_CHECK(nh.path == h.target);
  }
  std::vector<char> out2(2 * head_size + 64);  // the authority may appear twice
  HeadWriter w2(out2.data(), out2.size());
  bool ok2 =
      w2.request_line(nh.method_text, h.method == Method::kConnect ? nh.authority : nh.path, 1);
  if (!nh.authority.empty()) ok2 = ok2 && w2.header("Host", nh.authority);
  ok2 = ok2 && w2.end();
  FUZZ_CHECK(ok2);
  std::vector<Header> storage4(4);
  Limits big;
  big.max_head_bytes = static_cast<uint32_t>(out2.size()) + 64;
  big.max_request_line = big.max_head_bytes;
  RequestParser forwarded(big, storage4);
  const ParseStatus fs = forwarded.parse(w2.view());
  // An empty Host line is only valid when no authority was sent at all.
  FUZZ_CHECK(fs == ParseStatus::kComplete || nh.authority.empty());
  return 0;
}

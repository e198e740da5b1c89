// proto::h2::ServerSession, sans I/O: frames in, frames out.
#include "proto/h2/server.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include "tests/support/h2_frames.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace egw::proto::h2 {
namespace {

struct Request {
  std::string method, authority, path;
  std::vector<std::pair<std::string, std::string>> fields;
  ph::Body body;
  uint64_t length;
  std::string data;
  bool ended = false;
};

class Harness final : public Handler, public Sink {
 public:
  Harness() : ss(*this, Settings{}) { EXPECT_TRUE(ss.start(0)); }
  ~Harness() {
    for (auto& [id, s] : streams)
      ss.detach(*s);
  }

  // Handler
  Stream* begin_stream(int32_t id) override {
    auto& s = streams[id];
    s = std::make_unique<Stream>();
    return s.get();
  }
  void on_request(Stream& s, const ph::RequestHead& h, bool end) override {
    Request r{std::string(h.method_text),
              std::string(h.authority),
              std::string(h.path),
              {},
              h.body,
              h.content_length,
              {},
              end};
    for (const auto& f : h.fields)
      r.fields.emplace_back(f.name, f.value);
    requests[s.id] = r;
    upgrades[s.id] = std::string(h.upgrade);
  }
  void on_request_rejected(Stream& s, uint16_t status) override { rejected[s.id] = status; }
  void on_request_data(Stream& s, const uint8_t* d, size_t n) override {
    requests[s.id].data.append(reinterpret_cast<const char*>(d), n);
    ss.consume(s.id, n);
  }
  void on_request_end(Stream& s, std::span<const ph::Field>) override {
    requests[s.id].ended = true;
  }
  void on_stream_closed(Stream& s, uint32_t code) override {
    closed[s.id] = code;
    streams.erase(s.id);
  }
  size_t body_ready(Stream& s, size_t max, bool* eof, bool*) override {
    std::string& b = bodies[s.id];
    const size_t n = std::min(max, b.size());
    *eof = n == b.size();
    return n;
  }
  bool write_data(Stream& s, const uint8_t* hd, size_t len) override {
    out.append(reinterpret_cast<const char*>(hd), 9);
    std::string& b = bodies[s.id];
    out.append(b, 0, len);
    b.erase(0, len);
    return true;
  }
  std::span<const ph::Field> response_trailers(Stream&) override { return {}; }
  // Sink
  void write(const uint8_t* d, size_t n) override {
    out.append(reinterpret_cast<const char*>(d), n);
  }

  ServerSession::Status feed(std::string_view b) {
    return ss.recv(reinterpret_cast<const uint8_t*>(b.data()), b.size(), 0);
  }
  std::vector<Frame> drain() {
    ss.send(*this, 1 << 30);
    auto f = parse(out);
    out.clear();
    return f;
  }
  // The preface, an empty SETTINGS and the ACK of ours.
  void handshake() {
    ASSERT_EQ(feed(std::string(kPreface) + frame(NGHTTP2_SETTINGS, 0, 0) +
                   frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0)),
              ServerSession::Status::kOk);
    drain();
  }
  std::string headers(uint32_t id, std::vector<std::pair<std::string, std::string>> extra,
                      bool end = true, std::string path = "/") {
    std::vector<std::pair<std::string, std::string>> f = {{":method", end ? "GET" : "POST"},
                                                          {":scheme", "http"},
                                                          {":authority", "a.test"},
                                                          {":path", path}};
    f.insert(f.end(), extra.begin(), extra.end());
    return frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (end ? NGHTTP2_FLAG_END_STREAM : 0),
                 id, hpack.encode(f));
  }

  ServerSession ss;
  Hpack hpack;
  std::map<int32_t, std::unique_ptr<Stream>> streams;
  std::map<int32_t, Request> requests;
  std::map<int32_t, uint16_t> rejected;
  std::map<int32_t, std::string> upgrades;
  std::map<int32_t, uint32_t> closed;
  std::map<int32_t, std::string> bodies;
  std::string out;
};

const Frame* find(const std::vector<Frame>& fs, uint8_t type, uint32_t id = UINT32_MAX) {
  for (const auto& f : fs)
    if (f.type == type && (id == UINT32_MAX || f.id == id)) return &f;
  return nullptr;
}

uint32_t goaway_code(const std::vector<Frame>& fs) {
  const Frame* g = find(fs, NGHTTP2_GOAWAY);
  if (!g || g->payload.size() < 8) return UINT32_MAX;
  return (uint8_t(g->payload[4]) << 24) | (uint8_t(g->payload[5]) << 16) |
         (uint8_t(g->payload[6]) << 8) | uint8_t(g->payload[7]);
}

TEST(H2Server, SendsItsSettingsFirst) {
  Harness h;
  const auto fs = h.drain();
  ASSERT_FALSE(fs.empty());
  EXPECT_EQ(fs[0].type, NGHTTP2_SETTINGS);
  // MAX_CONCURRENT_STREAMS=100 among them, and NO_RFC7540_PRIORITIES=1.
  EXPECT_NE(fs[0].payload.find(std::string("\x00\x03", 2) + u32(100)), std::string::npos);
  EXPECT_NE(fs[0].payload.find(std::string("\x00\x09", 2) + u32(1)), std::string::npos);
}

TEST(H2Server, RequestHeadIsNeutralAndCookiesAreJoined) {
  Harness h;
  h.handshake();
  ASSERT_EQ(h.feed(h.headers(1, {{"cookie", "a=1"}, {"x-y", "z"}, {"cookie", "b=2"}})),
            ServerSession::Status::kOk);
  ASSERT_EQ(h.requests.count(1), 1u);
  const Request& r = h.requests[1];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.authority, "a.test");
  EXPECT_EQ(r.path, "/");
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.body, ph::Body::kNone);
  std::vector<std::pair<std::string, std::string>> want = {{"x-y", "z"}, {"cookie", "a=1; b=2"}};
  EXPECT_EQ(r.fields, want);
  // A response with a body: HEADERS, then DATA with END_STREAM; the stream closes.
  h.bodies[1] = "hello";
  ASSERT_TRUE(h.ss.submit_response(1, 200, {}, false));
  const auto fs = h.drain();
  ASSERT_NE(find(fs, NGHTTP2_HEADERS, 1), nullptr);
  const Frame* d = find(fs, NGHTTP2_DATA, 1);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->payload, "hello");
  EXPECT_TRUE(d->flags & NGHTTP2_FLAG_END_STREAM);
  EXPECT_EQ(h.closed.at(1), kNoError);
}

TEST(H2Server, AuthorityAndHostMustAgree) {
  Harness h;
  h.handshake();
  h.feed(h.headers(1, {{"host", "b.test"}}));
  EXPECT_EQ(h.requests.count(1), 0u);
  const auto fs = h.drain();
  const Frame* r = find(fs, NGHTTP2_RST_STREAM, 1);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->payload, u32(kProtocolError));
  // The same host in another case is the same authority.
  h.feed(h.headers(3, {{"host", "A.TEST"}}));
  EXPECT_EQ(h.requests.count(3), 1u);
}

TEST(H2Server, ContentLengthMustMatchTheData) {
  Harness h;
  h.handshake();
  h.feed(h.headers(1, {{"content-length", "10"}}, /*end=*/false));
  ASSERT_EQ(h.requests.at(1).body, ph::Body::kLength);
  EXPECT_EQ(h.requests.at(1).length, 10u);
  h.feed(frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, "12345"));
  EXPECT_FALSE(h.requests.at(1).ended);
  const auto fs = h.drain();
  const Frame* r = find(fs, NGHTTP2_RST_STREAM, 1);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->payload, u32(kProtocolError));
}

TEST(H2Server, OversizedHeaderListIsRejectedWith431) {
  Harness h;
  h.handshake();
  std::vector<std::pair<std::string, std::string>> big;
  // 60 copies of one field: a few hundred bytes on the wire once HPACK
  // indexes it, 20 KB of header list (name + value + 32 each) decoded.
  for (int i = 0; i < 60; ++i)
    big.emplace_back("x-big", std::string(300, 'v'));
  h.feed(h.headers(1, big));
  EXPECT_EQ(h.requests.count(1), 0u);
  EXPECT_EQ(h.rejected.at(1), 431);
  // The connection goes on (HPACK state intact).
  h.feed(h.headers(3, {{"x-after", "1"}}));
  EXPECT_EQ(h.requests.count(3), 1u);
}

TEST(H2Server, PingFloodEndsWithEnhanceYourCalm) {
  Harness h;
  h.handshake();
  std::string pings;
  for (int i = 0; i < 1500; ++i)
    pings += frame(NGHTTP2_PING, 0, 0, "12345678");
  EXPECT_EQ(h.feed(pings), ServerSession::Status::kClosed);
  EXPECT_EQ(goaway_code(h.drain()), kEnhanceYourCalm);
}

TEST(H2Server, RapidResetEndsWithEnhanceYourCalm) {
  Harness h;
  h.handshake();
  std::string burst;
  for (uint32_t i = 0; i < 150; ++i) {
    burst += h.headers(1 + 2 * i, {});
    burst += frame(NGHTTP2_RST_STREAM, 0, 1 + 2 * i, u32(kCancel));
  }
  EXPECT_EQ(h.feed(burst), ServerSession::Status::kClosed);
  EXPECT_EQ(goaway_code(h.drain()), kEnhanceYourCalm);
  EXPECT_LT(h.requests.size(), 150u);
}

TEST(H2Server, FramesOnAClosedStreamAreAConnectionError) {
  Harness h;
  h.handshake();
  h.feed(h.headers(1, {}));
  h.bodies[1] = "";
  h.ss.submit_response(1, 204, {}, true);
  h.drain();
  ASSERT_EQ(h.closed.count(1), 1u);
  EXPECT_EQ(h.feed(frame(NGHTTP2_DATA, 0, 1, "x")), ServerSession::Status::kClosed);
  EXPECT_EQ(goaway_code(h.drain()), kStreamClosed);
}

TEST(H2Server, FramesOnAStreamTheServerResetAreIgnored) {
  Harness h;
  h.handshake();
  h.feed(h.headers(1, {}, /*end=*/false));
  h.ss.reset_stream(1, kInternalError);
  h.drain();
  ASSERT_EQ(h.closed.count(1), 1u);
  // DATA the client had in flight: ignored, the connection goes on.
  EXPECT_EQ(h.feed(frame(NGHTTP2_DATA, 0, 1, "x")), ServerSession::Status::kOk);
  EXPECT_EQ(h.feed(h.headers(3, {})), ServerSession::Status::kOk);
  EXPECT_EQ(h.requests.count(3), 1u);
}

TEST(H2Server, LowerStreamIdThanOneUsedIsAProtocolError) {
  Harness h;
  h.handshake();
  h.feed(h.headers(5, {}));
  EXPECT_EQ(h.feed(h.headers(3, {})), ServerSession::Status::kClosed);
  EXPECT_EQ(goaway_code(h.drain()), kProtocolError);
}

TEST(H2Server, ExtendedConnectIsAnUpgrade) {
  Harness h;
  h.handshake();
  h.feed(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
               h.hpack.encode({{":method", "CONNECT"},
                               {":protocol", "websocket"},
                               {":scheme", "https"},
                               {":path", "/chat"},
                               {":authority", "a.test"},
                               {"sec-websocket-version", "13"}})));
  ASSERT_EQ(h.requests.count(1), 1u);
  EXPECT_EQ(h.requests[1].method, "GET");
  EXPECT_EQ(h.requests[1].path, "/chat");
  EXPECT_EQ(h.requests[1].body, ph::Body::kNone);
  EXPECT_EQ(h.upgrades[1], "websocket");
}

TEST(H2Server, GracefulShutdownTakesStreamsUntilTheFinalGoaway) {
  Harness h;
  h.handshake();
  h.ss.shutdown_notice();
  h.drain();
  EXPECT_FALSE(h.ss.goaway_sent());
  h.feed(h.headers(1, {}));
  EXPECT_EQ(h.requests.count(1), 1u);
  h.ss.goaway(kNoError);
  const auto fs = h.drain();
  ASSERT_NE(find(fs, NGHTTP2_GOAWAY), nullptr);
  EXPECT_EQ(find(fs, NGHTTP2_GOAWAY)->payload.substr(0, 4), u32(1));
  h.feed(h.headers(3, {}));
  EXPECT_EQ(h.requests.count(3), 0u);  // after the last stream: ignored
}

// An idle connection before its first request holds no nghttp2 session; the
// one built again from the record is the same: the client's SETTINGS (here a
// 10-byte stream window) still hold, our SETTINGS are not sent twice, and a
// PING answered before is not answered again.
TEST(H2Server, IdleBeforeItsFirstRequestTheSessionIsFreedAndComesBackTheSame) {
  Harness h;
  const std::string client_settings =
      std::string("\x00\x04", 2) + u32(10);  // SETTINGS_INITIAL_WINDOW_SIZE = 10
  ASSERT_EQ(h.feed(std::string(kPreface) + frame(NGHTTP2_SETTINGS, 0, 0, client_settings) +
                   frame(NGHTTP2_PING, 0, 0, "12345678")),
            ServerSession::Status::kOk);
  auto fs = h.drain();
  ASSERT_NE(find(fs, NGHTTP2_PING), nullptr);
  // Answered, and nothing left to send: it sleeps before the client's ACK
  // (a burst of new clients holds no session each for a round trip).
  EXPECT_TRUE(h.ss.hibernated());
  EXPECT_FALSE(h.ss.settings_acked());
  ASSERT_EQ(h.feed(frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0)), ServerSession::Status::kOk);
  EXPECT_TRUE(h.ss.settings_acked());
  EXPECT_TRUE(h.ss.hibernated());  // the ACK called for no answer
  EXPECT_TRUE(h.drain().empty());
  EXPECT_EQ(h.ss.hibernations(), 2u);
  EXPECT_TRUE(h.ss.want_read());
  EXPECT_FALSE(h.ss.want_write());
  EXPECT_FALSE(h.ss.finished());

  ASSERT_EQ(h.feed(h.headers(1, {})), ServerSession::Status::kOk);
  EXPECT_FALSE(h.ss.hibernated());
  EXPECT_FALSE(h.ss.may_hibernate());
  ASSERT_EQ(h.requests.count(1), 1u);
  h.bodies[1] = std::string(100, 'x');
  ASSERT_TRUE(h.ss.submit_response(1, 200, {}, false));
  fs = h.drain();
  for (const auto& f : fs) {
    EXPECT_NE(f.type, NGHTTP2_SETTINGS) << "a SETTINGS frame again after the session came back";
    EXPECT_NE(f.type, NGHTTP2_PING) << "the PING answered twice";
  }
  ASSERT_NE(find(fs, NGHTTP2_HEADERS, 1), nullptr);
  const Frame* d = find(fs, NGHTTP2_DATA, 1);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->payload.size(), 10u);  // the client's stream window, from before
  // With a stream, the session stays.
  EXPECT_FALSE(h.ss.hibernated());
}

// A PING on a hibernated session wakes it; answered, it goes back to sleep.
TEST(H2Server, KeepAlivePingsWakeAnIdleSessionThatThenSleepsAgain) {
  Harness h;
  h.handshake();
  EXPECT_TRUE(h.ss.hibernated());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(h.feed(frame(NGHTTP2_PING, 0, 0, "abcdefgh")), ServerSession::Status::kOk);
    EXPECT_FALSE(h.ss.hibernated());
    const auto fs = h.drain();
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0].type, NGHTTP2_PING);
    EXPECT_TRUE(fs[0].flags & NGHTTP2_FLAG_ACK);
    EXPECT_TRUE(h.ss.hibernated());
  }
  EXPECT_EQ(h.ss.hibernations(), 4u);
  // The glitch budget counted each PING once, not again on every replay.
  EXPECT_EQ(h.ss.glitches(), 4u);  // the client's SETTINGS and three PINGs
}

// A client that sends more before its first request than the record holds
// keeps its session (nothing it sent is lost).
TEST(H2Server, ClientThatSaysMuchBeforeItsFirstRequestKeepsItsSession) {
  Harness h;
  h.handshake();
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(h.feed(frame(NGHTTP2_PING, 0, 0, "abcdefgh")), ServerSession::Status::kOk);
    h.drain();
  }
  EXPECT_FALSE(h.ss.hibernated());
  EXPECT_FALSE(h.ss.may_hibernate());
  ASSERT_EQ(h.feed(h.headers(1, {})), ServerSession::Status::kOk);
  EXPECT_EQ(h.requests.count(1), 1u);
}

// The client's GOAWAY before any request ends the connection: the session
// does not go back to sleep (it would read on forever).
TEST(H2Server, ClientGoawayBeforeAnyRequestEndsTheSession) {
  Harness h;
  h.handshake();
  ASSERT_TRUE(h.ss.hibernated());
  ASSERT_EQ(h.feed(frame(NGHTTP2_GOAWAY, 0, 0, u32(0) + u32(kNoError))),
            ServerSession::Status::kOk);
  EXPECT_FALSE(h.ss.hibernated());
  h.drain();
  EXPECT_FALSE(h.ss.hibernated());
  EXPECT_TRUE(h.ss.finished());
}

// Drain and timeouts: the final GOAWAY of a hibernated session (last stream 0).
TEST(H2Server, GoawayReachesAHibernatedSession) {
  Harness h;
  h.handshake();
  ASSERT_TRUE(h.ss.hibernated());
  h.ss.shutdown_notice();  // nothing to protect: no stream was ever opened
  EXPECT_FALSE(h.ss.want_write());
  h.ss.goaway(kSettingsTimeout);
  EXPECT_TRUE(h.ss.want_write());
  const auto fs = h.drain();
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].type, NGHTTP2_GOAWAY);
  EXPECT_EQ(fs[0].payload.substr(0, 4), u32(0));
  EXPECT_EQ(goaway_code(fs), kSettingsTimeout);
  // Written without building a session (a drain of many idle connections
  // allocates nothing), and the connection is over.
  EXPECT_TRUE(h.ss.hibernated());
  EXPECT_EQ(h.ss.hibernations(), 1u);
  EXPECT_TRUE(h.ss.goaway_sent());
  EXPECT_TRUE(h.ss.finished());
  // A request racing the GOAWAY is not taken.
  EXPECT_EQ(h.feed(h.headers(1, {})), ServerSession::Status::kOk);
  EXPECT_EQ(h.requests.count(1), 0u);
  EXPECT_TRUE(h.drain().empty());
}

}  // namespace
}  // namespace egw::proto::h2

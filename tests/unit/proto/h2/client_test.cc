// proto::h2::ClientSession, sans I/O: against raw server frames, and against
// our own ServerSession (the two codecs talk to each other in memory).
#include "proto/h2/client.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/h2/server.h"
#include "tests/support/h2_frames.h"

namespace egw::proto::h2 {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Response {
  std::vector<uint16_t> statuses;  // every head, 1xx included
  Fields fields;
  ph::Body body = ph::Body::kNone;
  bool has_length = false;
  uint64_t length = 0;
  std::string data;
  Fields trailers;
  bool end_on_head = false;
  bool ended = false;
  int64_t closed = -1;  // the close code, once closed
};

class Client final : public ClientHandler, public Sink {
 public:
  explicit Client(ClientSettings settings = {}) : cs(*this, settings) { EXPECT_TRUE(cs.start()); }
  ~Client() {
    for (auto& [id, s] : streams)
      cs.detach(*s);
  }

  int32_t get(const std::string& path, bool end = true, Fields extra = {}) {
    auto s = std::make_unique<ClientStream>();
    std::vector<ClientSession::Nv> pseudo = {{":method", end ? "GET" : "POST"},
                                             {":scheme", "http"},
                                             {":authority", "a.test"},
                                             {":path", path}};
    std::vector<ClientSession::Nv> fields;
    for (const auto& [n, v] : extra)
      fields.push_back({n, v});
    const int32_t id = cs.submit_request(*s, pseudo, fields, end);
    if (id > 0) streams[id] = std::move(s);
    return id;
  }

  // ClientHandler
  void on_response_head(ClientStream& s, const ph::ResponseHead& h, bool end) override {
    Response& r = responses[s.id];
    r.statuses.push_back(h.status);
    if (h.informational()) return;
    for (const auto& f : h.fields)
      r.fields.emplace_back(f.name, f.value);
    r.body = h.body;
    r.has_length = h.has_length;
    r.length = h.content_length;
    r.end_on_head = end;
  }
  void on_response_data(ClientStream& s, const uint8_t* d, size_t n) override {
    responses[s.id].data.append(reinterpret_cast<const char*>(d), n);
    cs.consume(s.id, n);
  }
  void on_response_end(ClientStream& s, std::span<const ph::Field> t) override {
    Response& r = responses[s.id];
    r.ended = true;
    for (const auto& f : t)
      r.trailers.emplace_back(f.name, f.value);
  }
  void on_stream_closed(ClientStream& s, uint32_t code) override {
    responses[s.id].closed = code;
    ClientSession::release(s);
    closed_streams.push_back(std::move(streams[s.id]));
    streams.erase(s.id);
  }
  size_t body_ready(ClientStream& s, size_t max, bool* eof, bool* trailers) override {
    std::string& b = bodies[s.id];
    const size_t n = std::min(max, b.size());
    *eof = ends[s.id] && n == b.size();
    *trailers = *eof && !req_trailers.empty();
    return n;
  }
  void write_data(ClientStream& s, const uint8_t* hd, size_t len) override {
    out.append(reinterpret_cast<const char*>(hd), 9);
    std::string& b = bodies[s.id];
    out.append(b, 0, len);
    b.erase(0, len);
  }
  std::span<const ph::Field> request_trailers(ClientStream&) override { return req_trailers; }
  void on_goaway(int32_t last, uint32_t code) override { goaway = {last, code}; }
  void on_settings() override { ++settings; }
  void on_ping_ack() override { ++pings_acked; }
  // Sink
  void write(const uint8_t* d, size_t n) override {
    out.append(reinterpret_cast<const char*>(d), n);
  }

  ClientSession::Status feed(std::string_view b) {
    return cs.recv(reinterpret_cast<const uint8_t*>(b.data()), b.size());
  }
  std::string take() {
    cs.send(*this, 1 << 30);
    std::string o;
    o.swap(out);
    return o;
  }

  ClientSession cs;
  std::map<int32_t, std::unique_ptr<ClientStream>> streams;
  std::vector<std::unique_ptr<ClientStream>> closed_streams;
  std::map<int32_t, Response> responses;
  std::map<int32_t, std::string> bodies;
  std::map<int32_t, bool> ends;
  std::vector<ph::Field> req_trailers;
  std::pair<int32_t, uint32_t> goaway{-1, 0};
  int settings = 0, pings_acked = 0;
  std::string out;
};

// The server side as raw frames.
std::string response_headers(Hpack& hp, uint32_t id, Fields f, bool end) {
  return frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (end ? NGHTTP2_FLAG_END_STREAM : 0), id,
               hp.encode(f));
}

TEST(H2Client, SendsPrefaceSettingsWithoutPushAndTheRequest) {
  Client c;
  ASSERT_EQ(c.get("/x"), 1);
  const std::string out = c.take();
  ASSERT_EQ(out.substr(0, kPreface.size()), kPreface);
  const auto frames = parse(std::string_view(out).substr(kPreface.size()));
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].type, NGHTTP2_SETTINGS);
  // ENABLE_PUSH = 0 is among the settings.
  bool push_off = false;
  for (size_t i = 0; i + 6 <= frames[0].payload.size(); i += 6) {
    const uint16_t id = (uint8_t(frames[0].payload[i]) << 8) | uint8_t(frames[0].payload[i + 1]);
    const uint32_t v = (uint8_t(frames[0].payload[i + 2]) << 24) |
                       (uint8_t(frames[0].payload[i + 3]) << 16) |
                       (uint8_t(frames[0].payload[i + 4]) << 8) | uint8_t(frames[0].payload[i + 5]);
    if (id == NGHTTP2_SETTINGS_ENABLE_PUSH) push_off = v == 0;
  }
  EXPECT_TRUE(push_off);
  bool headers = false;
  for (const auto& f : frames)
    headers = headers || (f.type == NGHTTP2_HEADERS && f.id == 1);
  EXPECT_TRUE(headers);
}

TEST(H2Client, ResponseHeadBodyAndEnd) {
  Client c;
  Hpack hp;
  c.get("/x");
  c.take();
  // SETTINGS_MAX_CONCURRENT_STREAMS (0x3) = 7.
  ASSERT_EQ(c.feed(frame(NGHTTP2_SETTINGS, 0, 0, std::string("\x00\x03", 2) + u32(7)) +
                   response_headers(hp, 1, {{":status", "200"}, {"content-length", "5"}}, false) +
                   frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, "hello")),
            ClientSession::Status::kOk);
  EXPECT_EQ(c.settings, 1);
  EXPECT_EQ(c.cs.peer_max_streams(), 7u);
  const Response& r = c.responses[1];
  EXPECT_EQ(r.statuses, std::vector<uint16_t>{200});
  EXPECT_EQ(r.body, ph::Body::kLength);
  EXPECT_TRUE(r.has_length);
  EXPECT_EQ(r.length, 5u);
  EXPECT_EQ(r.data, "hello");
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.closed, kNoError);
}

TEST(H2Client, InformationalThenFinalThenTrailers) {
  Client c;
  Hpack hp;
  c.get("/x");
  c.take();
  ASSERT_EQ(c.feed(frame(NGHTTP2_SETTINGS, 0, 0) +
                   response_headers(hp, 1, {{":status", "103"}, {"link", "</a>"}}, false) +
                   response_headers(hp, 1, {{":status", "200"}, {"x-a", "1"}}, false) +
                   frame(NGHTTP2_DATA, 0, 1, "abc") +
                   response_headers(hp, 1, {{"grpc-status", "0"}}, true)),
            ClientSession::Status::kOk);
  const Response& r = c.responses[1];
  EXPECT_EQ(r.statuses, (std::vector<uint16_t>{103, 200}));
  EXPECT_EQ(r.fields, (Fields{{"x-a", "1"}}));
  EXPECT_EQ(r.body, ph::Body::kUnknown);
  EXPECT_EQ(r.data, "abc");
  EXPECT_EQ(r.trailers, (Fields{{"grpc-status", "0"}}));
  EXPECT_EQ(r.closed, kNoError);
}

TEST(H2Client, TrailersOnlyResponseEndsOnItsHead) {
  Client c;
  Hpack hp;
  c.get("/x");
  c.take();
  ASSERT_EQ(
      c.feed(frame(NGHTTP2_SETTINGS, 0, 0) +
             response_headers(
                 hp, 1,
                 {{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "3"}},
                 true)),
      ClientSession::Status::kOk);
  const Response& r = c.responses[1];
  EXPECT_TRUE(r.end_on_head);
  EXPECT_EQ(r.body, ph::Body::kNone);
  EXPECT_EQ(r.closed, kNoError);
}

TEST(H2Client, GoawayRefusesTheStreamsAboveTheLastOne) {
  Client c;
  c.get("/a");
  c.get("/b");
  c.get("/c");
  c.take();
  ASSERT_EQ(
      c.feed(frame(NGHTTP2_SETTINGS, 0, 0) + frame(NGHTTP2_GOAWAY, 0, 0, u32(1) + u32(kNoError))),
      ClientSession::Status::kOk);
  EXPECT_EQ(c.goaway, (std::pair<int32_t, uint32_t>{1, kNoError}));
  EXPECT_EQ(c.responses[3].closed, kRefusedStream);
  EXPECT_EQ(c.responses[5].closed, kRefusedStream);
  EXPECT_EQ(c.responses.count(1) ? c.responses[1].closed : -1, -1);  // still open
  EXPECT_FALSE(c.cs.accepts_streams());
  EXPECT_EQ(c.get("/d"), 0);
}

TEST(H2Client, RefusedStreamIsReportedAsSuch) {
  Client c;
  c.get("/a");
  c.take();
  ASSERT_EQ(
      c.feed(frame(NGHTTP2_SETTINGS, 0, 0) + frame(NGHTTP2_RST_STREAM, 0, 1, u32(kRefusedStream))),
      ClientSession::Status::kOk);
  EXPECT_EQ(c.responses[1].closed, kRefusedStream);
  EXPECT_TRUE(c.cs.accepts_streams());  // the connection goes on
}

TEST(H2Client, MalformedResponsesResetTheStreamOnly) {
  for (const Fields& bad :
       {Fields{{":status", "200"}, {"connection", "close"}},
        Fields{{":status", "200"}, {"Upper", "x"}}, Fields{{"x-no-status", "1"}},
        Fields{{":status", "200"}, {":path", "/"}}}) {
    Client c;
    Hpack hp;
    c.get("/a");
    c.take();
    ASSERT_EQ(c.feed(frame(NGHTTP2_SETTINGS, 0, 0) + response_headers(hp, 1, bad, true)),
              ClientSession::Status::kOk);
    c.take();  // the RST_STREAM goes out; the close is reported then
    EXPECT_EQ(c.responses[1].closed, kProtocolError) << bad.back().first;
    EXPECT_TRUE(c.cs.accepts_streams());
  }
}

TEST(H2Client, AHeadWithoutStatusAfterA1xxIsMalformed) {
  Client c;
  Hpack hp;
  c.get("/a");
  c.take();
  c.feed(frame(NGHTTP2_SETTINGS, 0, 0) + response_headers(hp, 1, {{":status", "103"}}, false) +
         response_headers(hp, 1, {{"grpc-status", "0"}}, true));
  c.take();
  EXPECT_EQ(c.responses[1].statuses, std::vector<uint16_t>{103});
  EXPECT_FALSE(c.responses[1].ended);
  EXPECT_EQ(c.responses[1].closed, kProtocolError);
}

TEST(H2Client, ContentLengthMismatchIsAStreamError) {
  Client c;
  Hpack hp;
  c.get("/a");
  c.take();
  c.feed(frame(NGHTTP2_SETTINGS, 0, 0) +
         response_headers(hp, 1, {{":status", "200"}, {"content-length", "10"}}, false) +
         frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, "short"));
  c.take();
  EXPECT_FALSE(c.responses[1].ended);
  EXPECT_EQ(c.responses[1].closed, kProtocolError);
}

TEST(H2Client, OversizedResponseHeadIsRefused) {
  ClientSettings settings;
  settings.max_headers = 4;
  Client c(settings);
  Hpack hp;
  c.get("/a");
  c.take();
  Fields many = {{":status", "200"}};
  for (int i = 0; i < 10; ++i)
    many.emplace_back("x-f" + std::to_string(i), "v");
  c.feed(frame(NGHTTP2_SETTINGS, 0, 0) + response_headers(hp, 1, many, true));
  c.take();
  EXPECT_TRUE(c.responses[1].statuses.empty());
  EXPECT_EQ(c.responses[1].closed, kInternalError);
}

TEST(H2Client, ServerPushIsAProtocolError) {
  Client c;
  Hpack hp;
  c.get("/a");
  c.take();
  const std::string promise = u32(2) + hp.encode({{":method", "GET"},
                                                  {":scheme", "http"},
                                                  {":authority", "a.test"},
                                                  {":path", "/pushed"}});
  // Once the server has acknowledged ENABLE_PUSH = 0, a PUSH_PROMISE is a
  // connection error: GOAWAY PROTOCOL_ERROR goes out, and the session is
  // over from then on.
  c.feed(frame(NGHTTP2_SETTINGS, 0, 0) + frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0) +
         frame(NGHTTP2_PUSH_PROMISE, NGHTTP2_FLAG_END_HEADERS, 1, promise));
  const auto frames = parse(c.take());
  uint32_t code = UINT32_MAX;
  for (const auto& f : frames) {
    if (f.type == NGHTTP2_GOAWAY && f.payload.size() >= 8) {
      code = (uint8_t(f.payload[4]) << 24) | (uint8_t(f.payload[5]) << 16) |
             (uint8_t(f.payload[6]) << 8) | uint8_t(f.payload[7]);
    }
  }
  EXPECT_EQ(code, kProtocolError);
  EXPECT_FALSE(c.cs.want_read());
  EXPECT_EQ(c.feed(""), ClientSession::Status::kClosed);
}

TEST(H2Client, PingIsAnswered) {
  Client c;
  c.take();
  c.feed(frame(NGHTTP2_SETTINGS, 0, 0));
  c.cs.ping();
  const auto frames = parse(c.take());
  const Frame* ping = nullptr;
  for (const auto& f : frames)
    if (f.type == NGHTTP2_PING) ping = &f;
  ASSERT_NE(ping, nullptr);
  c.feed(frame(NGHTTP2_PING, NGHTTP2_FLAG_ACK, 0, ping->payload));
  EXPECT_EQ(c.pings_acked, 1);
}

// --- against our own server codec --------------------------------------------------------

class Server final : public Handler, public Sink {
 public:
  Server() : ss(*this, Settings{}) { EXPECT_TRUE(ss.start(0)); }
  ~Server() {
    for (auto& [id, s] : streams)
      ss.detach(*s);
  }
  Stream* begin_stream(int32_t id) override {
    auto& s = streams[id];
    s = std::make_unique<Stream>();
    return s.get();
  }
  void on_request(Stream& s, const ph::RequestHead& h, bool end) override {
    paths[s.id] = std::string(h.path);
    authority[s.id] = std::string(h.authority);
    if (end) on_request_end(s, {});
  }
  void on_request_rejected(Stream&, uint16_t) override {}
  void on_request_data(Stream& s, const uint8_t* d, size_t n) override {
    data[s.id].append(reinterpret_cast<const char*>(d), n);
    ss.consume(s.id, n);
  }
  void on_request_end(Stream& s, std::span<const ph::Field> t) override {
    for (const auto& f : t)
      trailers[s.id].emplace_back(f.name, f.value);
    const std::string body = "you sent " + std::to_string(data[s.id].size());
    bodies[s.id] = body;
    const ServerSession::Nv fields[] = {{"x-from", "server"}};
    ss.submit_response(s.id, 200, fields, false);
  }
  void on_stream_closed(Stream& s, uint32_t) override {
    ServerSession::release(s);
    streams.erase(s.id);
  }
  size_t body_ready(Stream& s, size_t max, bool* eof, bool*) override {
    const size_t n = std::min(max, bodies[s.id].size());
    *eof = n == bodies[s.id].size();
    return n;
  }
  bool write_data(Stream& s, const uint8_t* hd, size_t len) override {
    out.append(reinterpret_cast<const char*>(hd), 9);
    out.append(bodies[s.id], 0, len);
    bodies[s.id].erase(0, len);
    return true;
  }
  std::span<const ph::Field> response_trailers(Stream&) override { return {}; }
  void write(const uint8_t* d, size_t n) override {
    out.append(reinterpret_cast<const char*>(d), n);
  }

  ServerSession ss;
  std::map<int32_t, std::unique_ptr<Stream>> streams;
  std::map<int32_t, std::string> paths, authority, data, bodies;
  std::map<int32_t, Fields> trailers;
  std::string out;
};

void exchange(Client& c, Server& s) {
  for (int i = 0; i < 64; ++i) {
    const std::string to_server = c.take();
    if (!to_server.empty()) {
      s.ss.recv(reinterpret_cast<const uint8_t*>(to_server.data()), to_server.size(), 0);
    }
    s.ss.send(s, 1 << 30);
    std::string to_client;
    to_client.swap(s.out);
    if (!to_client.empty()) c.feed(to_client);
    if (to_server.empty() && to_client.empty()) return;
  }
}

TEST(H2Client, TalksToOurServerWithBodiesAndTrailers) {
  Client c;
  Server s;
  const std::string big(300 * 1024, 'z');  // past the default 64 KiB windows
  const int32_t a = c.get("/upload", false);
  c.bodies[a] = big;
  c.ends[a] = true;
  c.req_trailers = {{"x-sum", "42"}};
  const int32_t b = c.get("/plain");
  exchange(c, s);
  EXPECT_EQ(s.paths[a], "/upload");
  EXPECT_EQ(s.authority[a], "a.test");
  EXPECT_EQ(s.data[a].size(), big.size());
  EXPECT_EQ(s.trailers[a], (Fields{{"x-sum", "42"}}));
  EXPECT_EQ(c.responses[a].data, "you sent " + std::to_string(big.size()));
  EXPECT_EQ(c.responses[a].fields, (Fields{{"x-from", "server"}}));
  EXPECT_EQ(c.responses[b].data, "you sent 0");
  EXPECT_EQ(c.responses[a].closed, kNoError);
  EXPECT_EQ(c.responses[b].closed, kNoError);
}

}  // namespace
}  // namespace egw::proto::h2

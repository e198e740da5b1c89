// libFuzzer target for the HTTP/2 server codec (proto::h2::ServerSession
// over nghttp2), sans I/O.
//
// Input: one byte that seeds the split points and the handler's choices,
// then client bytes (the preface is prepended). The handler answers
// requests at once or later, with bodies of seeded sizes and sometimes
// trailers, consumes request data, and resets some streams. Invariants (a
// failure traps):
//   - every stream handed out is closed at most once, and only streams
//     handed out are reported;
//   - a request's body never exceeds its content-length, and its end comes
//     at most once, after its head;
//   - open_streams() equals the streams not yet closed;
//   - the output is a sequence of whole frames, each no longer than the
//     default maximum frame size.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/h2/server.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace egw::proto::h2;
namespace ph = egw::proto::http;
using egw::fuzz::Rng;

struct Entry {
  std::unique_ptr<Stream> s;
  bool head = false, ended = false;
  uint64_t length = UINT64_MAX;
  uint64_t got = 0;
  std::string body;
  bool trailers = false;
};

class Harness final : public Handler, public Sink {
 public:
  explicit Harness(uint32_t seed) : rng{seed * 2654435761u | 1u}, ss(*this, settings()) {}
  static Settings settings() {
    Settings s;
    s.max_concurrent_streams = 8;
    s.initial_window = 65535;
    s.connection_window = 1 << 20;
    return s;
  }
  ~Harness() {
    for (auto& [id, e] : live)
      ss.detach(*e.s);
  }

  Stream* begin_stream(int32_t id) override {
    if (live.count(id) || seen.count(id)) __builtin_trap();
    seen[id] = true;
    if (rng.next() % 16 == 0) return nullptr;  // refused
    auto& e = live[id];
    e.s = std::make_unique<Stream>();
    return e.s.get();
  }
  void on_request(Stream& s, const ph::RequestHead& h, bool end) override {
    Entry& e = at(s);
    if (e.head) __builtin_trap();
    e.head = true;
    e.ended = end;
    if (h.body == ph::Body::kLength) e.length = h.content_length;
    if (rng.next() % 2) answer(s);
  }
  void on_request_rejected(Stream& s, uint16_t status) override {
    if (status != 431) __builtin_trap();
    answer(s);
  }
  void on_request_data(Stream& s, const uint8_t*, size_t len) override {
    Entry& e = at(s);
    if (!e.head || e.ended) __builtin_trap();
    e.got += len;
    if (e.got > e.length) __builtin_trap();
    ss.consume(s.id, len);
  }
  void on_request_end(Stream& s, std::span<const ph::Field>) override {
    Entry& e = at(s);
    if (!e.head || e.ended) __builtin_trap();
    e.ended = true;
    if (e.length != UINT64_MAX && e.got != e.length) __builtin_trap();
  }
  void on_stream_closed(Stream& s, uint32_t) override {
    auto it = live.find(s.id);
    if (it == live.end() || it->second.s.get() != &s) __builtin_trap();
    live.erase(it);
  }
  size_t body_ready(Stream& s, size_t max, bool* eof, bool* trailers) override {
    Entry& e = at(s);
    const size_t n = std::min(max, e.body.size());
    *eof = n == e.body.size();
    *trailers = *eof && e.trailers;
    return n;
  }
  bool write_data(Stream& s, const uint8_t* hd, size_t len) override {
    Entry& e = at(s);
    if (len > e.body.size()) __builtin_trap();
    out.append(reinterpret_cast<const char*>(hd), 9);
    out.append(e.body, 0, len);
    e.body.erase(0, len);
    return true;
  }
  std::span<const ph::Field> response_trailers(Stream&) override { return trailer_fields; }
  void write(const uint8_t* d, size_t n) override {
    out.append(reinterpret_cast<const char*>(d), n);
  }

  Entry& at(Stream& s) {
    auto it = live.find(s.id);
    if (it == live.end()) __builtin_trap();
    return it->second;
  }
  void answer(Stream& s) {
    Entry& e = at(s);
    e.body.assign(rng.next() % 40000, 'b');
    e.trailers = rng.next() % 4 == 0;
    const ServerSession::Nv fields[] = {{"x-a", "1"}};
    ss.submit_response(s.id, 200, fields, e.body.empty() && !e.trailers);
  }
  void step() {
    // Later answers, resets.
    for (auto& [id, e] : live) {
      if (e.head && e.body.empty() && rng.next() % 8 == 0) ss.reset_stream(id, kCancel);
    }
    ss.send(*this, 1 << 20);
    egw::fuzz::check_h2_frames(out);
    if (ss.open_streams() != live.size()) __builtin_trap();
  }
  Rng rng;
  ServerSession ss;
  std::map<int32_t, Entry> live;
  std::map<int32_t, bool> seen;
  std::vector<ph::Field> trailer_fields = {{"grpc-status", "0"}};
  std::string out;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Harness h(data[0]);
  if (!h.ss.start(0)) return 0;
  std::string input = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t off = 0;
  uint64_t now = 0;
  while (off < input.size()) {
    const size_t n = std::min<size_t>(input.size() - off, 1 + h.rng.next() % 512);
    // A fresh buffer for each piece: views that outlive it would show.
    std::vector<uint8_t> piece(input.begin() + static_cast<long>(off),
                               input.begin() + static_cast<long>(off + n));
    off += n;
    now += h.rng.next() % 50;
    const auto st = h.ss.recv(piece.data(), piece.size(), now);
    h.step();
    if (st == ServerSession::Status::kClosed) break;
  }
  h.step();
  return 0;
}

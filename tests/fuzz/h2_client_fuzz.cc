// libFuzzer target for the HTTP/2 client codec (proto::h2::ClientSession
// over nghttp2), sans I/O: what an endpoint may send back.
//
// Input: one byte that seeds the split points and the handler's choices,
// then server bytes. Before the server bytes are fed, the client has
// submitted a few requests (some with bodies and trailers); while they are
// fed it submits more, resets some and pings. Invariants (a failure traps):
//   - only streams submitted are reported, each closed at most once;
//   - a response's heads come before its data, its final head at most once,
//     its end at most once and after the final head; data never exceeds a
//     content-length; an end that claims one matches it;
//   - open_streams() equals the streams not yet closed;
//   - the output is a sequence of whole frames no longer than the default
//     maximum frame size; each DATA frame is checked as it is written (its
//     header's length, between whole frames) and its payload not kept.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/h2/client.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace egw::proto::h2;
namespace ph = egw::proto::http;
using egw::fuzz::Rng;

struct Entry {
  std::unique_ptr<ClientStream> s;
  bool final_head = false, ended = false;
  uint64_t length = UINT64_MAX;
  uint64_t got = 0;
  size_t body_left = 0;
  uint64_t sent = 0;
  bool body_end = true;
};

class Harness final : public ClientHandler, public Sink {
 public:
  explicit Harness(uint32_t seed) : rng{seed * 2654435761u | 1u}, cs(*this, settings()) {}
  static ClientSettings settings() {
    ClientSettings s;
    s.initial_window = 65535;
    s.connection_window = 1 << 20;
    s.max_headers = 32;
    return s;
  }
  ~Harness() {
    for (auto& [id, e] : live)
      cs.detach(*e.s);
  }

  void submit() {
    auto s = std::make_unique<ClientStream>();
    const bool body = rng.next() % 3 == 0;
    const ClientSession::Nv pseudo[] = {{":method", body ? "POST" : "GET"},
                                        {":scheme", "http"},
                                        {":authority", "a.test"},
                                        {":path", "/p"}};
    const ClientSession::Nv fields[] = {{"x-a", "1"}};
    const int32_t id = cs.submit_request(*s, pseudo, fields, !body);
    if (id <= 0) return;
    if (live.count(id) || seen.count(id)) __builtin_trap();
    seen[id] = true;
    Entry& e = live[id];
    e.s = std::move(s);
    if (body) {
      e.body_left = rng.next() % 70000;
      e.body_end = rng.next() % 4 != 0;  // sometimes the rest comes later
    }
  }

  void on_response_head(ClientStream& s, const ph::ResponseHead& h, bool end) override {
    Entry& e = at(s);
    if (e.final_head || e.ended) __builtin_trap();
    if (h.status < 100 || h.status > 999) __builtin_trap();
    if (h.informational()) {
      if (end) __builtin_trap();
      return;
    }
    e.final_head = true;
    if (h.body == ph::Body::kLength) e.length = h.content_length;
    if (end != (h.body == ph::Body::kNone)) __builtin_trap();
    if (end) e.ended = true;
  }
  void on_response_data(ClientStream& s, const uint8_t*, size_t len) override {
    Entry& e = at(s);
    if (!e.final_head || e.ended) __builtin_trap();
    e.got += len;
    if (e.got > e.length) __builtin_trap();
    if (rng.next() % 2) cs.consume(s.id, len);
  }
  void on_response_end(ClientStream& s, std::span<const ph::Field>) override {
    Entry& e = at(s);
    if (!e.final_head || e.ended) __builtin_trap();
    e.ended = true;
    if (e.length != UINT64_MAX && e.got != e.length) __builtin_trap();
  }
  void on_stream_closed(ClientStream& s, uint32_t) override {
    auto it = live.find(s.id);
    if (it == live.end() || it->second.s.get() != &s) __builtin_trap();
    ClientSession::release(s);
    live.erase(it);
  }
  size_t body_ready(ClientStream& s, size_t max, bool* eof, bool* trailers) override {
    Entry& e = at(s);
    const size_t n = std::min(max, e.body_left);
    *eof = e.body_end && n == e.body_left;
    *trailers = *eof && rng.next() % 2;
    return n;
  }
  void write_data(ClientStream& s, const uint8_t* hd, size_t len) override {
    Entry& e = at(s);
    if (len > e.body_left || len > 16384) __builtin_trap();
    // The DATA frame is checked here and not kept: copying every body byte
    // into the output made the target slow without testing anything more.
    const size_t n = (size_t{hd[0]} << 16) | (size_t{hd[1]} << 8) | hd[2];
    if (n != len || hd[3] != 0 || !pending_frames_whole()) __builtin_trap();
    e.sent += len;
    e.body_left -= len;
  }
  // DATA goes out between whole frames only.
  bool pending_frames_whole() {
    egw::fuzz::check_h2_frames(out);
    return out.empty();
  }
  std::span<const ph::Field> request_trailers(ClientStream&) override { return trailer_fields; }
  void on_goaway(int32_t, uint32_t) override {}
  void write(const uint8_t* d, size_t n) override {
    // The 24-byte client preface comes first and is not a frame.
    const size_t skip = std::min(preface_left, n);
    preface_left -= skip;
    out.append(reinterpret_cast<const char*>(d) + skip, n - skip);
  }

  Entry& at(ClientStream& s) {
    auto it = live.find(s.id);
    if (it == live.end() || it->second.s.get() != &s) __builtin_trap();
    return it->second;
  }
  void step() {
    switch (rng.next() % 16) {
      case 0:
        submit();
        break;
      case 1:
        if (!live.empty()) cs.reset_stream(live.begin()->first, kCancel);
        break;
      case 2:
        cs.ping();
        break;
      case 3:
        for (auto& [id, e] : live) {
          if (!e.body_end) {
            e.body_end = true;
            cs.resume(id);
          }
        }
        break;
      default:
        break;
    }
    cs.send(*this, 1 << 20);
    egw::fuzz::check_h2_frames(out);
    if (cs.open_streams() != live.size()) __builtin_trap();
  }
  Rng rng;
  ClientSession cs;
  std::map<int32_t, Entry> live;
  std::map<int32_t, bool> seen;
  std::vector<ph::Field> trailer_fields = {{"x-t", "1"}};
  std::string out;
  size_t preface_left = 24;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Harness h(data[0]);
  if (!h.cs.start()) return 0;
  for (int i = 0; i < 3; ++i)
    h.submit();
  h.cs.send(h, 1 << 20);
  egw::fuzz::check_h2_frames(h.out);
  size_t off = 1;
  while (off < size) {
    const size_t n = std::min<size_t>(size - off, h.rng.step());
    // A fresh buffer for each piece: views that outlive it would show.
    std::vector<uint8_t> piece(data + off, data + off + n);
    off += n;
    const auto st = h.cs.recv(piece.data(), piece.size());
    h.step();
    if (st == ClientSession::Status::kClosed) break;
  }
  h.step();
  return 0;
}

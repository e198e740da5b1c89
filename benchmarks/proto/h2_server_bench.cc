// The HTTP/2 server codec (proto::h2::ServerSession over nghttp2), one
// request and response per iteration on one connection, sans I/O:
//   HEADERS in (a curl-like GET, HPACK-indexed as a client sends its second
//   and later requests) -> the neutral head -> a 200 with two fields and a
//   100-byte body out (HEADERS + DATA, the body through NO_COPY).
// Reports allocations per request (nghttp2's and ours together).
#include <benchmark/benchmark.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "proto/h2/server.h"
#include "tests/support/h2_frames.h"

namespace egw::proto::h2 {
namespace {

// `count` HEADERS frames for streams 1, 3, 5... from one HPACK encoder.
std::vector<std::string> requests(size_t count) {
  nghttp2_hd_deflater* d = nullptr;
  nghttp2_hd_deflate_new(&d, 4096);
  const char* nv[][2] = {
      {":method", "GET"},         {":scheme", "http"},           {":authority", "localhost:8080"},
      {":path", "/api/v1/items"}, {"user-agent", "curl/7.88.1"}, {"accept", "*/*"}};
  std::vector<nghttp2_nv> v;
  for (auto& [n, val] : nv) {
    v.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n)),
                 reinterpret_cast<uint8_t*>(const_cast<char*>(val)), strlen(n), strlen(val),
                 NGHTTP2_NV_FLAG_NONE});
  }
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    std::string block(256, '\0');
    const auto n = nghttp2_hd_deflate_hd(d, reinterpret_cast<uint8_t*>(block.data()), block.size(),
                                         v.data(), v.size());
    block.resize(static_cast<size_t>(n));
    // The request, and the connection window its response used, back (as
    // a client that reads does).
    out.push_back(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                        static_cast<uint32_t>(1 + 2 * i), block) +
                  frame(NGHTTP2_WINDOW_UPDATE, 0, 0, std::string("\0\0\0\x64", 4)));
  }
  nghttp2_hd_deflate_del(d);
  return out;
}

class Server final : public Handler, public Sink {
 public:
  static Settings settings() {
    Settings s;
    s.glitch_burst = 1u << 30;
    return s;
  }
  Server() : ss(*this, settings()) {
    ss.start(0);
    const std::string hello = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
                              frame(NGHTTP2_SETTINGS, 0, 0, "") +
                              frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, "");
    ss.recv(reinterpret_cast<const uint8_t*>(hello.data()), hello.size(), 0);
    ss.send(*this, SIZE_MAX);
  }
  ~Server() {
    if (live) ss.detach(stream);
  }
  Stream* begin_stream(int32_t) override {
    ServerSession::release(stream);
    stream.reset();  // as H2Session reuses stream storage
    live = true;
    return &stream;
  }
  void on_request(Stream& s, const ph::RequestHead& h, bool) override {
    benchmark::DoNotOptimize(h.path.data());
    ++served;
    static constexpr ServerSession::Nv kFields[] = {{"content-type", "text/plain"},
                                                    {"content-length", "100"}};
    left = 100;
    ss.submit_response(s.id, 200, kFields, false);
  }
  void on_request_rejected(Stream&, uint16_t) override {}
  void on_request_data(Stream&, const uint8_t*, size_t) override {}
  void on_request_end(Stream&, std::span<const ph::Field>) override {}
  void on_stream_closed(Stream&, uint32_t) override { live = false; }
  size_t body_ready(Stream&, size_t max, bool* eof, bool*) override {
    const size_t n = std::min(max, left);
    *eof = n == left;
    return n;
  }
  bool write_data(Stream&, const uint8_t*, size_t len) override {
    bytes += 9 + len;
    left -= len;
    return true;
  }
  std::span<const ph::Field> response_trailers(Stream&) override { return {}; }
  void write(const uint8_t*, size_t len) override { bytes += len; }

  ServerSession ss;
  Stream stream;
  bool live = false;
  size_t left = 0;
  size_t bytes = 0;
  size_t served = 0;
};

void BM_H2RequestResponse(benchmark::State& state) {
  constexpr size_t kPerConnection = 100000;
  static const std::vector<std::string> reqs = requests(kPerConnection);
  auto server = std::make_unique<Server>();
  size_t i = 0;
  bench::AllocCounter allocs;
  for (auto _ : state) {
    if (i == kPerConnection) {
      state.PauseTiming();
      server = std::make_unique<Server>();
      i = 0;
      state.ResumeTiming();
    }
    const std::string& f = reqs[i++];
    server->ss.recv(reinterpret_cast<const uint8_t*>(f.data()), f.size(), 0);
    server->ss.send(*server, SIZE_MAX);
  }
  allocs.report(state);
  state.SetItemsProcessed(state.iterations());
  if (server->served != i)
    state.SkipWithError(("a request was not served: " + std::string(server->ss.error())).c_str());
  if (server->ss.error().size()) state.SkipWithError(std::string(server->ss.error()).c_str());
}
BENCHMARK(BM_H2RequestResponse);

}  // namespace
}  // namespace egw::proto::h2

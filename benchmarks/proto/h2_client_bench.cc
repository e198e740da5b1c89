// The HTTP/2 client codec (proto::h2::ClientSession over nghttp2), one
// request and response per iteration on one connection, sans I/O, as the
// proxy's upstream side runs it: a GET with six fields submitted and
// serialised (HEADERS out), then the endpoint's answer fed back (HEADERS
// with :status 200 and two fields, HPACK-indexed as a server sends its
// second and later responses, and 100 bytes of DATA with END_STREAM), the
// body credited back. Reports allocations per request (nghttp2's and ours).
#include <benchmark/benchmark.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "proto/h2/client.h"
#include "tests/support/h2_frames.h"

namespace egw::proto::h2 {
namespace {

// `count` responses for streams 1, 3, 5... from one HPACK encoder.
std::vector<std::string> responses(size_t count) {
  nghttp2_hd_deflater* d = nullptr;
  nghttp2_hd_deflate_new(&d, 4096);
  const char* nv[][2] = {
      {":status", "200"}, {"content-type", "text/plain"}, {"content-length", "100"}};
  std::vector<nghttp2_nv> v;
  for (auto& [n, val] : nv) {
    v.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n)),
                 reinterpret_cast<uint8_t*>(const_cast<char*>(val)), strlen(n), strlen(val),
                 NGHTTP2_NV_FLAG_NONE});
  }
  const std::string body(100, 'b');
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    std::string block(256, '\0');
    const auto n = nghttp2_hd_deflate_hd(d, reinterpret_cast<uint8_t*>(block.data()), block.size(),
                                         v.data(), v.size());
    block.resize(static_cast<size_t>(n));
    const auto id = static_cast<uint32_t>(1 + 2 * i);
    out.push_back(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, block) +
                  frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, id, body));
  }
  nghttp2_hd_deflate_del(d);
  return out;
}

class Client final : public ClientHandler, public Sink {
 public:
  Client() : cs(*this, ClientSettings{}) {
    cs.start();
    cs.send(*this, SIZE_MAX);
    const std::string hello =
        frame(NGHTTP2_SETTINGS, 0, 0, "") + frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, "");
    cs.recv(reinterpret_cast<const uint8_t*>(hello.data()), hello.size());
    cs.send(*this, SIZE_MAX);
  }
  ~Client() {
    if (live) cs.detach(stream);
  }
  void request() {
    ClientSession::release(stream);
    stream.reset();  // as H2Connection reuses stream storage
    static constexpr ClientSession::Nv kPseudo[] = {{":method", "GET"},
                                                    {":scheme", "http"},
                                                    {":authority", "localhost:8080"},
                                                    {":path", "/api/v1/items"}};
    static constexpr ClientSession::Nv kFields[] = {
        {"user-agent", "curl/7.88.1"}, {"accept", "*/*"}, {"x-forwarded-for", "127.0.0.1"}};
    live = cs.submit_request(stream, kPseudo, kFields, true) > 0;
  }
  void on_response_head(ClientStream&, const ph::ResponseHead& h, bool) override {
    benchmark::DoNotOptimize(h.status);
  }
  void on_response_data(ClientStream& s, const uint8_t*, size_t len) override {
    cs.consume(s.id, len);
  }
  void on_response_end(ClientStream&, std::span<const ph::Field>) override { ++served; }
  void on_stream_closed(ClientStream&, uint32_t) override { live = false; }
  size_t body_ready(ClientStream&, size_t, bool* eof, bool*) override {
    *eof = true;
    return 0;
  }
  void write_data(ClientStream&, const uint8_t*, size_t len) override { bytes += 9 + len; }
  std::span<const ph::Field> request_trailers(ClientStream&) override { return {}; }
  void on_goaway(int32_t, uint32_t) override {}
  void write(const uint8_t*, size_t len) override { bytes += len; }

  ClientSession cs;
  ClientStream stream;
  bool live = false;
  size_t bytes = 0;
  size_t served = 0;
};

void BM_H2ClientRequestResponse(benchmark::State& state) {
  constexpr size_t kPerConnection = 100000;
  static const std::vector<std::string> resps = responses(kPerConnection);
  auto client = std::make_unique<Client>();
  size_t i = 0;
  bench::AllocCounter allocs;
  for (auto _ : state) {
    if (i == kPerConnection) {
      state.PauseTiming();
      client = std::make_unique<Client>();
      i = 0;
      state.ResumeTiming();
    }
    client->request();
    client->cs.send(*client, SIZE_MAX);
    const std::string& f = resps[i++];
    client->cs.recv(reinterpret_cast<const uint8_t*>(f.data()), f.size());
  }
  client->cs.send(*client, SIZE_MAX);
  allocs.report(state);
  state.SetItemsProcessed(state.iterations());
  if (client->served != i)
    state.SkipWithError(("a response was not seen: " + std::string(client->cs.error())).c_str());
}
BENCHMARK(BM_H2ClientRequestResponse);

}  // namespace
}  // namespace egw::proto::h2

// HTTP/1.1 request head parsing: a browser GET, a curl GET and a worst case
// near the limits. Each iteration parses one head into reused storage; the
// allocs counter must stay 0.
#include <benchmark/benchmark.h>

#include <array>
#include <string>

#include "benchmarks/support/alloc_counter.h"
#include "proto/h1/parser.h"

namespace egw::proto::h1 {
namespace {

// ~500 bytes, 12 fields.
constexpr std::string_view kBrowserGet =
    "GET /search?q=io_uring+reverse+proxy&lang=en HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://www.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "\r\n";

constexpr std::string_view kCurlGet =
    "GET /api/v1/items HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";

// 100 fields and a long target, just under the default 32 KiB head limit.
std::string worst_case() {
  std::string s = "GET /" + std::string(4000, 'p') + " HTTP/1.1\r\nHost: example.com\r\n";
  for (int i = 1; i < 100; ++i) {
    s += "X-Header-" + std::to_string(i) + ": " + std::string(270, 'v') + "\r\n";
  }
  s += "\r\n";
  return s;
}

void parse_loop(benchmark::State& state, std::string_view text) {
  std::array<Header, 100> storage;
  RequestParser parser(Limits{}, storage);
  if (parser.parse(text) != ParseStatus::kComplete) {
    state.SkipWithError(to_string(parser.error()));
    return;
  }
  bench::AllocCounter allocs;
  for (auto _ : state) {
    parser.reset();
    benchmark::DoNotOptimize(parser.parse(text));
    benchmark::DoNotOptimize(parser.head().headers.data());
  }
  allocs.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["head_bytes"] = static_cast<double>(text.size());
}

void BM_H1ParseBrowserGet(benchmark::State& state) {
  parse_loop(state, kBrowserGet);
}
BENCHMARK(BM_H1ParseBrowserGet);

void BM_H1ParseCurlGet(benchmark::State& state) {
  parse_loop(state, kCurlGet);
}
BENCHMARK(BM_H1ParseCurlGet);

void BM_H1ParseWorstCase(benchmark::State& state) {
  static const std::string text = worst_case();
  parse_loop(state, text);
}
BENCHMARK(BM_H1ParseWorstCase);

// The browser GET arriving in 64-byte receive buffers: each call passes the
// longer prefix, as a connection does while the head arrives.
void BM_H1ParseBrowserGetIn64ByteSteps(benchmark::State& state) {
  std::array<Header, 100> storage;
  RequestParser parser(Limits{}, storage);
  bench::AllocCounter allocs;
  for (auto _ : state) {
    parser.reset();
    ParseStatus s = ParseStatus::kIncomplete;
    for (size_t n = 64; s == ParseStatus::kIncomplete; n += 64) {
      s = parser.parse(kBrowserGet.substr(0, n));
    }
    benchmark::DoNotOptimize(s);
  }
  allocs.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBrowserGet.size()));
}
BENCHMARK(BM_H1ParseBrowserGetIn64ByteSteps);

}  // namespace
}  // namespace egw::proto::h1

// One access log line per request, as a worker formats it into its buffer:
// the JSON line (every field), the combined format and a short template.
// Allocations per line must be 0.
#include <benchmark/benchmark.h>

#include "benchmarks/support/alloc_counter.h"
#include "src/accesslog/format.h"

namespace {

using namespace egw::accesslog;

Record sample(const egw::SocketAddress& client, uint64_t i) {
  Record r;
  r.time_ns = 1796320907123456789ull + i * 1'000'000ull;  // a new second every 1000 lines
  r.client = &client;
  r.listener = "web";
  r.protocol = "h1";
  r.version = "HTTP/1.1";
  r.method = "GET";
  r.authority = "www.example.com";
  r.path = "/api/v1/items?id=12345&sort=asc";
  r.status = 200;
  r.bytes_out = 4312;
  r.cluster = "app";
  r.endpoint = "10.0.0.17:8080";
  r.termination = "done";
  r.user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
  r.referer = "https://www.example.com/items";
  r.phase_us = {31, -1, -1, 212, 1840, 2105};
  return r;
}

void run(benchmark::State& state, const char* spec) {
  Format f;
  std::string err;
  if (!Format::compile(spec, f, err)) {
    state.SkipWithError(err.c_str());
    return;
  }
  const auto client = *egw::SocketAddress::parse("198.51.100.23:51234");
  static char buf[1 << 16];
  size_t used = 0;
  uint64_t i = 0, bytes = 0;
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    const Record r = sample(client, i++);
    if (used > sizeof(buf) - 2048) used = 0;
    const size_t n = f.append(r, buf + used, sizeof(buf) - used);
    used += n;
    bytes += n;
    benchmark::DoNotOptimize(buf[used - 1]);
  }
  allocs.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_AccessLogJson(benchmark::State& state) {
  run(state, "json");
}
BENCHMARK(BM_AccessLogJson);

void BM_AccessLogCombined(benchmark::State& state) {
  run(state, "combined");
}
BENCHMARK(BM_AccessLogCombined);

void BM_AccessLogTemplate(benchmark::State& state) {
  run(state, "%time %client %method %path %status %bytes_out %total_us");
}
BENCHMARK(BM_AccessLogTemplate);

}  // namespace

// TLS sessions in memory (no sockets): what one worker pays per handshake
// and per 16 KiB record. A client Session and a server Session are wired back
// to back; the ciphertext goes through the real output callbacks and feed().
//
//   BM_FullHandshake      TLS 1.3, ECDSA P-256 leaf signed by a P-256 CA, X25519,
//                         the client verifying chain and name (both sides' CPU).
//   BM_ResumedHandshake   the same with a session ticket (PSK + ECDHE).
//   BM_RecordEncrypt      Session::write of 16 KiB (one record) on the server.
//   BM_RecordDecrypt      Session::feed + read of one 16 KiB record.
// Arg 0 = TLS13-AES128-GCM-SHA256, 1 = TLS13-CHACHA20-POLY1305-SHA256.
//
// "allocs" is per iteration; wolfSSL allocates internally (per handshake,
// and for records larger than its static buffer).
//
// The certificates are made at start-up with the openssl CLI in a temporary
// directory (removed at exit).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/support/alloc_counter.h"
#include "src/tls/context.h"
#include "src/tls/session.h"

namespace {

using egw::tls::ClientContext;
using egw::tls::ClientOptions;
using egw::tls::SavedSession;
using egw::tls::ServerContext;
using egw::tls::ServerOptions;
using egw::tls::Session;
using Status = Session::Status;

struct Pki {
  std::string dir;
  std::string ca, leaf, leaf_key;
  bool ok = false;

  Pki() {
    char tmpl[] = "/tmp/egw-tls-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) return;
    dir = tmpl;
    ca = dir + "/ca.pem";
    leaf = dir + "/leaf.pem";
    leaf_key = dir + "/leaf.key";
    const std::string d = dir;
    const std::string cmds[] = {
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + d + "/ca.key",
        "openssl req -x509 -new -sha256 -days 2 -key " + d + "/ca.key -subj /CN=bench-ca" +
            " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign" +
            " -out " + ca,
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + leaf_key,
        "openssl req -new -sha256 -key " + leaf_key + " -subj /CN=bench.test -out " + d +
            "/leaf.csr",
        "printf 'subjectAltName=DNS:bench.test\\nbasicConstraints=CA:FALSE\\n' > " + d +
            "/leaf.ext",
        "openssl x509 -req -sha256 -days 2 -in " + d + "/leaf.csr -CA " + ca + " -CAkey " + d +
            "/ca.key -set_serial 7 -extfile " + d + "/leaf.ext -out " + leaf,
    };
    for (const std::string& c : cmds) {
      if (std::system((c + " >/dev/null 2>&1").c_str()) != 0) {
        std::fprintf(stderr, "failed: %s\n", c.c_str());
        return;
      }
    }
    ok = true;
  }
  ~Pki() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

const char* cipher_for(int64_t arg) {
  return arg == 0 ? "TLS13-AES128-GCM-SHA256" : "TLS13-CHACHA20-POLY1305-SHA256";
}

struct Contexts {
  std::shared_ptr<ServerContext> server;
  std::shared_ptr<ClientContext> client;
};

// Contexts per cipher, made once.
const Contexts* contexts(int64_t arg) {
  static Pki pki;
  static Contexts made[2];
  static bool tried[2] = {false, false};
  Contexts& c = made[arg];
  if (!tried[arg]) {
    tried[arg] = true;
    if (!pki.ok) return nullptr;
    std::string detail;
    ServerOptions so;
    so.certificates = {{pki.leaf, pki.leaf_key}};
    auto s = ServerContext::create(so, nullptr, &detail);
    ClientOptions co;
    co.ca_file = pki.ca;
    co.cipher_list = cipher_for(arg);
    co.groups = "X25519";
    auto cl = ClientContext::create(co, &detail);
    if (!s || !cl) {
      std::fprintf(stderr, "context: %s\n", detail.c_str());
      return nullptr;
    }
    c.server = *s;
    c.client = *cl;
  }
  return c.server ? &c : nullptr;
}

// Two sessions wired back to back through two queues.
struct Pair {
  std::unique_ptr<Session> client;
  std::unique_ptr<Session> server;
  std::vector<uint8_t> to_server;
  std::vector<uint8_t> to_client;

  Pair(const Contexts& c, const SavedSession* resume) {
    to_server.reserve(64 * 1024);
    to_client.reserve(64 * 1024);
    client = Session::client(*c.client, "bench.test", resume);
    server = Session::server(*c.server);
    client->set_output(
        [this](const uint8_t* p, size_t n) { to_server.insert(to_server.end(), p, p + n); });
    server->set_output(
        [this](const uint8_t* p, size_t n) { to_client.insert(to_client.end(), p, p + n); });
  }
  Pair(const Pair&) = delete;

  static void drain(Session& s) {
    s.read([](const uint8_t* p, size_t n) { benchmark::DoNotOptimize(p + n); });
  }

  // Both handshakes, then the client reads the server's post-handshake
  // flight (the TLS 1.3 ticket), as a real client would.
  bool handshake() {
    Status cs = Status::kWantInput, ss = Status::kWantInput;
    for (int i = 0; i < 8; ++i) {
      if (cs != Status::kOk) cs = client->handshake();
      server->feed(to_server.data(), to_server.size());
      to_server.clear();
      if (ss != Status::kOk) ss = server->handshake();
      client->feed(to_client.data(), to_client.size());
      to_client.clear();
      if (cs == Status::kError || ss == Status::kError) return false;
      if (cs == Status::kOk && ss == Status::kOk) {
        drain(*client);
        return true;
      }
    }
    return false;
  }
};

void BM_FullHandshake(benchmark::State& state) {
  const Contexts* c = contexts(state.range(0));
  if (!c) return state.SkipWithError("no TLS contexts");
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    Pair p(*c, nullptr);
    if (!p.handshake()) return state.SkipWithError(p.client->error().c_str());
  }
  allocs.report(state);
  state.counters["handshakes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FullHandshake)->Arg(0)->Unit(benchmark::kMicrosecond);

void BM_ResumedHandshake(benchmark::State& state) {
  const Contexts* c = contexts(state.range(0));
  if (!c) return state.SkipWithError("no TLS contexts");
  std::shared_ptr<SavedSession> saved;
  {
    Pair first(*c, nullptr);
    if (!first.handshake()) return state.SkipWithError("first handshake failed");
    saved = first.client->save();
    if (!saved) return state.SkipWithError("no ticket");
  }
  {
    Pair check(*c, saved.get());
    if (!check.handshake() || !check.server->resumed()) {
      return state.SkipWithError("not resumed");
    }
  }
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    Pair p(*c, saved.get());
    if (!p.handshake()) return state.SkipWithError(p.client->error().c_str());
  }
  allocs.report(state);
  state.counters["handshakes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ResumedHandshake)->Arg(0)->Unit(benchmark::kMicrosecond);

constexpr size_t kRecord = 16 * 1024;

void BM_RecordEncrypt(benchmark::State& state) {
  const Contexts* c = contexts(state.range(0));
  if (!c) return state.SkipWithError("no TLS contexts");
  Pair p(*c, nullptr);
  if (!p.handshake()) return state.SkipWithError("handshake failed");
  std::vector<uint8_t> plain(kRecord, 0x5a);
  // Warm-up: wolfSSL sizes its buffers on the first records.
  for (int i = 0; i < 4; ++i) {
    p.server->write(plain.data(), plain.size());
    p.to_client.clear();
  }
  egw::bench::AllocCounter allocs;
  for (auto _ : state) {
    if (p.server->write(plain.data(), plain.size()) != Status::kOk) {
      return state.SkipWithError("write failed");
    }
    benchmark::DoNotOptimize(p.to_client.data());
    p.to_client.clear();
  }
  allocs.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecord));
}
BENCHMARK(BM_RecordEncrypt)->Arg(0)->Arg(1);

void BM_RecordDecrypt(benchmark::State& state) {
  const Contexts* c = contexts(state.range(0));
  if (!c) return state.SkipWithError("no TLS contexts");
  Pair p(*c, nullptr);
  if (!p.handshake()) return state.SkipWithError("handshake failed");
  std::vector<uint8_t> plain(kRecord, 0x5a);
  // A batch of records, made outside the timing and refilled when used up
  // (each record decrypts once: sequence numbers only go forward).
  constexpr size_t kBatch = 512;
  std::vector<size_t> offsets;
  auto refill = [&] {
    p.to_client.clear();
    offsets.clear();
    for (size_t i = 0; i < kBatch; ++i) {
      offsets.push_back(p.to_client.size());
      p.server->write(plain.data(), plain.size());
    }
    offsets.push_back(p.to_client.size());
  };
  refill();
  size_t next = 0;
  size_t got = 0;
  auto sink = [&got](const uint8_t*, size_t n) { got += n; };
  for (int i = 0; i < 4; ++i, ++next) {  // warm-up
    p.client->feed(p.to_client.data() + offsets[next], offsets[next + 1] - offsets[next]);
    p.client->read(sink);
  }
  egw::bench::AllocCounter allocs;
  uint64_t refill_allocs = 0;  // the encryption side's, not counted
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      const uint64_t before = egw::bench::allocations();
      refill();
      refill_allocs += egw::bench::allocations() - before;
      next = 0;
      state.ResumeTiming();
    }
    p.client->feed(p.to_client.data() + offsets[next], offsets[next + 1] - offsets[next]);
    ++next;
    if (p.client->read(sink) != Status::kWantInput) return state.SkipWithError("read failed");
  }
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(allocs.count() - refill_allocs),
                                                benchmark::Counter::kAvgIterations);
  if (got < kRecord) state.SkipWithError("nothing decrypted");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecord));
}
BENCHMARK(BM_RecordDecrypt)->Arg(0)->Arg(1);

}  // namespace

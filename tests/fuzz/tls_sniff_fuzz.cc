// libFuzzer target for the TLS ClientHello sniffer.
//
// Input: the byte stream as a client would send it (the seeds are real and
// hand-made hellos). Invariants (a failure traps):
//   - kNotTls exactly when the first byte is not 22;
//   - kNeedMore: input size < need <= kMaxInput, and no reason;
//   - kDone: each view lies inside the input or inside the used part of
//     scratch; the name is empty or 1..255 bytes of [A-Za-z0-9._-]; the ALPN
//     list is well-formed; no reason. kNotTls / kInvalid have a reason;
//   - a shorter prefix is consistent with the whole: a final status there
//     stays the same, and its `need` is exact: below it the input gives the
//     same `need` (or an early kInvalid), at or above it the input makes
//     progress;
//   - a smaller scratch changes nothing but may make a fragmented hello
//     kInvalid;
//   - an accepted hello, cut into records of other sizes, gives the same name
//     and ALPN.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/tls_sniff/client_hello.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace egw::proto::tls_sniff;

using egw::fuzz::Rng;

bool inside(std::string_view v, const uint8_t* base, size_t size) {
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return p >= base && p + v.size() <= base + size;
}

bool valid_name(std::string_view name) {
  if (name.size() > 255) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool valid_alpn(std::string_view raw) {
  while (!raw.empty()) {
    const size_t n = static_cast<uint8_t>(raw[0]);
    if (n == 0 || n + 1 > raw.size()) return false;
    raw.remove_prefix(n + 1);
  }
  return true;
}

// Checks one result for `in` against the rules that need no other call.
void check_alone(const SniffResult& r, std::span<const uint8_t> in,
                 std::span<const uint8_t> scratch) {
  FUZZ_CHECK((r.status == SniffStatus::kNotTls) == (!in.empty() && in[0] != 22));
  switch (r.status) {
    case SniffStatus::kNeedMore:
      FUZZ_CHECK(r.need > in.size() && r.need <= kMaxInput);
      FUZZ_CHECK(r.reason == nullptr && r.server_name.empty() && r.alpn_raw.empty());
      break;
    case SniffStatus::kDone:
      FUZZ_CHECK(r.reason == nullptr && r.need == 0);
      for (std::string_view v : {r.server_name, r.alpn_raw}) {
        FUZZ_CHECK(v.empty() || inside(v, in.data(), in.size()) ||
                   inside(v, scratch.data(), std::min(scratch.size(), kMaxClientHello)));
      }
      FUZZ_CHECK(valid_name(r.server_name));
      FUZZ_CHECK(valid_alpn(r.alpn_raw));
      break;
    case SniffStatus::kNotTls:
    case SniffStatus::kInvalid:
      FUZZ_CHECK(r.reason != nullptr && r.reason[0] != '\0');
      FUZZ_CHECK(r.server_name.empty() && r.alpn_raw.empty());
      break;
  }
}

// Copies `in` (a prefix, or a smaller scratch) into an allocation of its own
// size, so that ASan sees any read past its end.
std::unique_ptr<uint8_t[]> exact_copy(std::span<const uint8_t> in) {
  std::unique_ptr<uint8_t[]> p(new uint8_t[in.size() + 1]);
  if (!in.empty()) std::memcpy(p.get(), in.data(), in.size());
  return p;
}

// The handshake message of an accepted hello: its records' fragments.
std::vector<uint8_t> message_of(std::span<const uint8_t> in) {
  std::vector<uint8_t> m;
  size_t at = 0;
  for (;;) {
    const size_t len = static_cast<size_t>(in[at + 3]) << 8 | in[at + 4];
    m.insert(m.end(), in.begin() + at + 5, in.begin() + at + 5 + len);
    at += 5 + len;
    if (m.size() >= 4 && m.size() == 4 + (static_cast<size_t>(m[1]) << 16 | m[2] << 8 | m[3])) {
      return m;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::vector<uint8_t> scratch(kMaxClientHello);
  const std::span<const uint8_t> in(data, size);
  uint32_t seed = 2166136261u;
  for (size_t i = 0; i < size; ++i)
    seed = (seed ^ data[i]) * 16777619u;
  Rng rng{seed | 1u};

  const SniffResult whole = sniff_client_hello(in, scratch);
  check_alone(whole, in, scratch);
  // Keep copies of the views' contents: later calls overwrite scratch.
  const std::string name(whole.server_name), alpn(whole.alpn_raw);

  // Two prefixes: one at random, one just below the input's own `need`
  // point (the input minus one byte).
  for (size_t p : {size == 0 ? size_t{0} : rng.next() % size, size == 0 ? size_t{0} : size - 1}) {
    const auto copy = exact_copy(in.first(p));
    const std::span<const uint8_t> prefix(copy.get(), p);
    const SniffResult r = sniff_client_hello(prefix, scratch);
    check_alone(r, prefix, scratch);
    if (r.status != SniffStatus::kNeedMore) {
      FUZZ_CHECK(whole.status == r.status);  // decided on the prefix: stays so
    } else if (size < r.need) {
      // Below `need` nothing moves, unless a byte already there is wrong.
      FUZZ_CHECK(whole.status == SniffStatus::kInvalid ||
                 (whole.status == SniffStatus::kNeedMore && whole.need == r.need));
    } else {
      FUZZ_CHECK(whole.status != SniffStatus::kNeedMore || whole.need > r.need);
    }
  }

  // A smaller scratch, in an allocation of its exact size.
  {
    const size_t n = rng.next() % (kMaxClientHello + 1);
    std::unique_ptr<uint8_t[]> small(new uint8_t[n + 1]);
    const SniffResult r = sniff_client_hello(in, std::span<uint8_t>(small.get(), n));
    check_alone(r, in, std::span<const uint8_t>(small.get(), n));
    if (r.status != whole.status) {
      FUZZ_CHECK(whole.status == SniffStatus::kDone && r.status == SniffStatus::kInvalid);
    } else if (r.status == SniffStatus::kDone) {
      FUZZ_CHECK(r.server_name == name && r.alpn_raw == alpn);
    } else if (r.status == SniffStatus::kNeedMore) {
      FUZZ_CHECK(r.need == whole.need);
    }
  }

  if (whole.status != SniffStatus::kDone) return 0;

  // Cut into records of other sizes, the same hello.
  const std::vector<uint8_t> message = message_of(in);
  FUZZ_CHECK(message.size() <= kMaxClientHello);
  std::vector<uint8_t> again;
  for (size_t at = 0; at < message.size();) {
    const uint32_t r = rng.next();
    size_t len = (r & 3) == 0 ? 1 + (r >> 8) % kMaxRecordLength : 1 + (r >> 8) % 64;
    len = std::min(len, message.size() - at);
    again.insert(again.end(), {22, 3, static_cast<uint8_t>(r >> 2 & 3),
                               static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    again.insert(again.end(), message.begin() + at, message.begin() + at + len);
    at += len;
  }
  const SniffResult r = sniff_client_hello(again, scratch);
  check_alone(r, again, scratch);
  FUZZ_CHECK(r.status == SniffStatus::kDone);
  FUZZ_CHECK(r.server_name == name && r.alpn_raw == alpn);
  return 0;
}

// libFuzzer target for the PROXY protocol parser and writer.
//
// Input: the start of a connection's byte stream. Invariants (a failure
// traps):
//   - kNeedMore: size < need <= kMaxHeader, no reason; kInvalid has a
//     reason; kDone: 0 < length <= min(size, kMaxHeader), version 1 or 2,
//     a family when not local, every view inside the header's bytes;
//   - the header delimits itself: exactly its bytes parse to the same
//     header, every shorter prefix needs more, and a decision on a prefix
//     stays the decision on the whole input;
//   - what parses is written back: write_v1() / write_v2() of the parsed
//     addresses (and v2's TLVs, cut to 255 bytes) parse to the same values
//     (a LOCAL header's TLVs are not read, so only its command is compared).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "proto/proxy_protocol/header.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace egw::proto::proxy_protocol;

bool inside(std::string_view v, const uint8_t* base, size_t size) {
  if (v.empty()) return true;
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return p >= base && p + v.size() <= base + size;
}

void check_alone(const Header& h, std::span<const uint8_t> in) {
  switch (h.status) {
    case Status::kNeedMore:
      FUZZ_CHECK(h.need > in.size() && h.need <= kMaxHeader && h.reason == nullptr);
      break;
    case Status::kInvalid:
      FUZZ_CHECK(h.reason != nullptr && h.reason[0] != '\0');
      break;
    case Status::kDone:
      FUZZ_CHECK(h.length > 0 && h.length <= in.size() && h.length <= kMaxHeader);
      FUZZ_CHECK(h.version == 1 || h.version == 2);
      FUZZ_CHECK(h.local || h.addr.family != Family::kNone);
      for (std::string_view v : {h.alpn, h.authority, h.unique_id, h.netns, h.ssl.version, h.ssl.cn,
                                 h.ssl.cipher, h.ssl.sig_alg, h.ssl.key_alg}) {
        FUZZ_CHECK(inside(v, in.data(), h.length));
      }
      FUZZ_CHECK(h.unique_id.size() <= 128);
      if (h.version == 1) FUZZ_CHECK(h.length <= kMaxV1);
      break;
  }
}

std::unique_ptr<uint8_t[]> exact_copy(std::span<const uint8_t> in) {
  std::unique_ptr<uint8_t[]> p(new uint8_t[in.size() + 1]);
  if (!in.empty()) std::memcpy(p.get(), in.data(), in.size());
  return p;
}

bool same_addresses(const Addresses& a, const Addresses& b) {
  const size_t n = a.family == Family::kInet ? 4 : 16;
  return a.family == b.family && std::memcmp(a.src, b.src, n) == 0 &&
         std::memcmp(a.dst, b.dst, n) == 0 && a.src_port == b.src_port && a.dst_port == b.dst_port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  const Header whole = parse(in);
  check_alone(whole, in);

  uint32_t seed = 2166136261u;
  for (size_t i = 0; i < size; ++i)
    seed = (seed ^ data[i]) * 16777619u;
  egw::fuzz::Rng rng{seed | 1u};

  // A prefix at random and the input less one byte, each in an allocation
  // of its own size.
  for (size_t p : {size == 0 ? size_t{0} : rng.next() % size, size == 0 ? size_t{0} : size - 1}) {
    const auto copy = exact_copy(in.first(p));
    const std::span<const uint8_t> prefix(copy.get(), p);
    const Header r = parse(prefix);
    check_alone(r, prefix);
    if (r.status != Status::kNeedMore) {
      FUZZ_CHECK(whole.status == r.status);
      if (r.status == Status::kDone) FUZZ_CHECK(whole.length == r.length);
    } else if (size < r.need) {
      FUZZ_CHECK(whole.status == Status::kInvalid ||
                 (whole.status == Status::kNeedMore && whole.need >= r.need));
    }
  }
  if (whole.status != Status::kDone) return 0;

  // Exactly the header's bytes: the same header; one byte less: need more.
  {
    const auto copy = exact_copy(in.first(whole.length));
    const Header r = parse(std::span<const uint8_t>(copy.get(), whole.length));
    FUZZ_CHECK(r.status == Status::kDone && r.length == whole.length);
    const Header s = parse(std::span<const uint8_t>(copy.get(), whole.length - 1));
    FUZZ_CHECK(s.status == Status::kNeedMore);
  }

  // Written back, read again.
  uint8_t out[kMaxWrite];
  if (whole.version == 1 || whole.local) {
    const Addresses a = whole.local ? Addresses{} : whole.addr;
    const size_t n = write_v1(a, out);
    FUZZ_CHECK(n > 0 && n <= kMaxV1);
    const Header r = parse(std::span<const uint8_t>(out, n));
    FUZZ_CHECK(r.status == Status::kDone && r.length == n && r.local == whole.local);
    if (!whole.local) FUZZ_CHECK(same_addresses(r.addr, whole.addr));
  }
  if (whole.version == 2) {
    V2Params p;
    if (!whole.local) p.addr = whole.addr;
    p.alpn = whole.alpn;
    p.authority = whole.authority;
    p.ssl = whole.ssl;
    p.crc = (seed & 1) != 0;
    const size_t n = write_v2(p, out);
    FUZZ_CHECK(n > 0);
    const Header r = parse(std::span<const uint8_t>(out, n));
    FUZZ_CHECK(r.status == Status::kDone && r.length == n);
    FUZZ_CHECK(r.local == whole.local);
    if (whole.local) return 0;  // a LOCAL header's TLVs are not read
    FUZZ_CHECK(same_addresses(r.addr, whole.addr));
    FUZZ_CHECK(r.alpn == whole.alpn.substr(0, 255));
    FUZZ_CHECK(r.authority == whole.authority.substr(0, 255));
    FUZZ_CHECK(r.ssl.present == whole.ssl.present);
    if (r.ssl.present) {
      FUZZ_CHECK(r.ssl.client == whole.ssl.client && r.ssl.verify == whole.ssl.verify);
      FUZZ_CHECK(r.ssl.version == whole.ssl.version.substr(0, 255));
      FUZZ_CHECK(r.ssl.cipher == whole.ssl.cipher.substr(0, 255));
      FUZZ_CHECK(r.ssl.cn == whole.ssl.cn.substr(0, 255));
    }
    FUZZ_CHECK(r.crc_verified == p.crc);
  }
  return 0;
}

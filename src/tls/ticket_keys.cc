#include "src/tls/ticket_keys.h"

// wolfSSL: options.h must come before any other wolfSSL header.
#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/aes.h>
//
#include <string.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>

#include "egw/assert.h"
#include "egw/clock.h"

namespace egw::tls {

namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
static_assert(kNonceSize <= TicketKeys::kIvSize && kTagSize <= TicketKeys::kMacSize);

// Fills `out` from the OS RNG. getrandom(2) without flags blocks only before
// the pool is first initialised, i.e. never once the system has booted.
bool random_bytes(uint8_t* out, size_t n) {
  while (n > 0) {
    const ssize_t got = ::getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

uint64_t default_now_ms() {
  return clock::now_ns() / 1'000'000u;
}

// AES-256-GCM over `ticket` in place. The name and IV are authenticated as
// associated data so that neither can be swapped onto another ticket.
bool gcm(bool encrypt, const uint8_t key[TicketKeys::kKeySize],
         const uint8_t name[TicketKeys::kNameSize], const uint8_t iv[TicketKeys::kIvSize],
         uint8_t tag[kTagSize], uint8_t* ticket, int len) {
  uint8_t aad[TicketKeys::kNameSize + TicketKeys::kIvSize];
  memcpy(aad, name, TicketKeys::kNameSize);
  memcpy(aad + TicketKeys::kNameSize, iv, TicketKeys::kIvSize);
  Aes aes;
  if (wc_AesInit(&aes, nullptr, INVALID_DEVID) != 0) return false;
  int rc = wc_AesGcmSetKey(&aes, key, TicketKeys::kKeySize);
  if (rc == 0) {
    const auto n = static_cast<word32>(len);
    rc = encrypt ? wc_AesGcmEncrypt(&aes, ticket, ticket, n, iv, kNonceSize, tag, kTagSize, aad,
                                    sizeof(aad))
                 : wc_AesGcmDecrypt(&aes, ticket, ticket, n, iv, kNonceSize, tag, kTagSize, aad,
                                    sizeof(aad));
  }
  wc_AesFree(&aes);
  explicit_bzero(&aes, sizeof(aes));
  return rc == 0;
}

}  // namespace

TicketKeys::TicketKeys(uint32_t rotate_every_s, NowFn now_ms)
    : period_ms_(uint64_t{rotate_every_s} * 1000u), now_ms_(now_ms ? now_ms : default_now_ms) {
  std::lock_guard lock(mu_);
  rotate_locked();
  rotations_ = 0;  // the first key is not a rotation
  have_previous_ = false;
  explicit_bzero(&previous_, sizeof(previous_));
}

TicketKeys::~TicketKeys() {
  explicit_bzero(&current_, sizeof(current_));
  explicit_bzero(&previous_, sizeof(previous_));
}

uint64_t TicketKeys::now() const {
  return now_ms_();
}

void TicketKeys::rotate() {
  std::lock_guard lock(mu_);
  rotate_locked();
}

uint64_t TicketKeys::rotations() const {
  std::lock_guard lock(mu_);
  return rotations_;
}

namespace {
constexpr size_t kKeyBytes = TicketKeys::kNameSize + TicketKeys::kKeySize;
constexpr size_t kStateBytes = 1 + 2 * kKeyBytes + 8;  // version, keys, ms left
}  // namespace

std::string TicketKeys::export_keys() const {
  std::lock_guard lock(mu_);
  std::string out(kStateBytes, '\0');
  out[0] = static_cast<char>(have_previous_ ? 2 : 1);
  memcpy(out.data() + 1, &current_, kKeyBytes);
  if (have_previous_) memcpy(out.data() + 1 + kKeyBytes, &previous_, kKeyBytes);
  const uint64_t t = now();
  const uint64_t left = next_rotation_ms_ > t ? next_rotation_ms_ - t : 0;
  for (size_t i = 0; i < 8; ++i)
    out[1 + 2 * kKeyBytes + i] = static_cast<char>((left >> (8 * i)) & 0xff);
  return out;
}

bool TicketKeys::import_keys(std::string_view state) {
  static_assert(sizeof(Key) == kKeyBytes);
  if (state.size() != kStateBytes || (state[0] != 1 && state[0] != 2)) return false;
  uint64_t left = 0;
  for (size_t i = 0; i < 8; ++i)
    left |= uint64_t{static_cast<uint8_t>(state[1 + 2 * kKeyBytes + i])} << (8 * i);
  std::lock_guard lock(mu_);
  memcpy(&current_, state.data() + 1, kKeyBytes);
  have_previous_ = state[0] == 2;
  if (have_previous_) {
    memcpy(&previous_, state.data() + 1 + kKeyBytes, kKeyBytes);
  } else {
    explicit_bzero(&previous_, sizeof(previous_));
  }
  if (period_ms_) next_rotation_ms_ = now() + std::min(left, period_ms_);
  return true;
}

void TicketKeys::rotate_locked() {
  Key fresh;
  // Without randomness no ticket can be protected; the process cannot go on.
  EGW_RELEASE_ASSERT(random_bytes(fresh.name, sizeof(fresh.name)) &&
                         random_bytes(fresh.secret, sizeof(fresh.secret)),
                     "getrandom failed for a session-ticket key");
  previous_ = current_;
  have_previous_ = true;
  current_ = fresh;
  explicit_bzero(&fresh, sizeof(fresh));
  ++rotations_;
  if (period_ms_ > 0) next_rotation_ms_ = now() + period_ms_;
}

void TicketKeys::maybe_rotate_locked() {
  if (period_ms_ > 0 && now() >= next_rotation_ms_) rotate_locked();
}

bool TicketKeys::seal(uint8_t name[kNameSize], uint8_t iv[kIvSize], uint8_t mac[kMacSize],
                      uint8_t* ticket, int len, int* out_len) {
  if (len < 0 || !random_bytes(iv, kIvSize)) return false;
  Key key;
  {
    std::lock_guard lock(mu_);
    maybe_rotate_locked();
    key = current_;
  }
  memcpy(name, key.name, kNameSize);
  memset(mac, 0, kMacSize);
  const bool ok = gcm(true, key.secret, name, iv, mac, ticket, len);
  explicit_bzero(&key, sizeof(key));
  if (ok) *out_len = len;
  return ok;
}

TicketKeys::Opened TicketKeys::open(const uint8_t name[kNameSize], const uint8_t iv[kIvSize],
                                    const uint8_t mac[kMacSize], uint8_t* ticket, int len,
                                    int* out_len) {
  if (len < 0) return Opened::kReject;
  Key key;
  Opened verdict;
  {
    std::lock_guard lock(mu_);
    maybe_rotate_locked();
    if (memcmp(name, current_.name, kNameSize) == 0) {
      key = current_;
      verdict = Opened::kOk;
    } else if (have_previous_ && memcmp(name, previous_.name, kNameSize) == 0) {
      key = previous_;
      verdict = Opened::kRenew;
    } else {
      return Opened::kReject;
    }
  }
  uint8_t tag[kTagSize];
  memcpy(tag, mac, kTagSize);
  const bool ok = gcm(false, key.secret, name, iv, tag, ticket, len);
  explicit_bzero(&key, sizeof(key));
  if (!ok) return Opened::kReject;
  *out_len = len;
  return verdict;
}

}  // namespace egw::tls

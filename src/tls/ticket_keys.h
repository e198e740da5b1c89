// TicketKeys: the session-ticket encryption keys shared by every worker and
// every server context of the process, so that a ticket issued by any of them
// is accepted by all of them.
//
// Tickets are sealed with AES-256-GCM (wolfCrypt). Each key has a random
// 16-byte name, carried in clear in the ticket so that the key can be found
// again. Two keys are live: the current one seals and opens, the previous one
// only opens (and asks for a fresh ticket). A ticket sealed under any older
// key is rejected, which makes the server fall back to a full handshake. With
// rotation every R seconds a ticket therefore stays usable for between R and
// 2R seconds (and never longer than the ticket lifetime the context announces).
//
// Keys come from the OS RNG (getrandom). Rotation is lazy: the first seal or
// open after the period has passed rotates (rotate() forces one).
//
// Thread-safety: every member function may be called from any thread. A mutex
// guards the key pair for the few instructions that copy it; the AES work runs
// outside it. Tickets are sealed/opened only during handshakes, never per
// record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace egw::tls {

class TicketKeys {
 public:
  static constexpr size_t kNameSize = 16;  // = WOLFSSL_TICKET_NAME_SZ
  static constexpr size_t kIvSize = 16;    // = WOLFSSL_TICKET_IV_SZ (12 used as the GCM nonce)
  static constexpr size_t kMacSize = 32;   // = WOLFSSL_TICKET_MAC_SZ (16 used as the GCM tag)
  static constexpr size_t kKeySize = 32;   // AES-256

  // Monotonic milliseconds; injectable so tests can move time.
  using NowFn = uint64_t (*)();

  // rotate_every_s == 0 disables lazy rotation (rotate() still works).
  explicit TicketKeys(uint32_t rotate_every_s = 3600, NowFn now_ms = nullptr);
  ~TicketKeys();
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // Makes a new current key; the current one becomes the previous one and
  // the previous one is forgotten (wiped).
  void rotate();
  // Number of rotations so far (lazy and forced).
  uint64_t rotations() const;

  // The key pair and the time left before the next rotation, as bytes, for
  // the process that takes over in a binary upgrade (over a socketpair to
  // its own child: the secrets never touch a file). import_keys() takes
  // them in place of its own; false (and nothing changed) when `state` is
  // not what export_keys() makes.
  std::string export_keys() const;
  bool import_keys(std::string_view state);

  // Seals `len` bytes of `ticket` in place under the current key: fills
  // `name` and `iv`, writes the tag to mac[0..15] (mac[16..31] zero) and sets
  // *out_len = len. False only if the RNG or wolfCrypt fails.
  bool seal(uint8_t name[kNameSize], uint8_t iv[kIvSize], uint8_t mac[kMacSize], uint8_t* ticket,
            int len, int* out_len);

  enum class Opened : uint8_t {
    kOk,      // current key: use the ticket
    kRenew,   // previous key: use the ticket, and issue a new one
    kReject,  // unknown key, or the tag does not verify: full handshake
  };
  // Opens a ticket sealed by seal() (by any holder of these keys) in place and
  // sets *out_len on success.
  Opened open(const uint8_t name[kNameSize], const uint8_t iv[kIvSize], const uint8_t mac[kMacSize],
              uint8_t* ticket, int len, int* out_len);

 private:
  struct Key {
    uint8_t name[kNameSize];
    uint8_t secret[kKeySize];
  };
  // Rotates if the period has passed. Caller holds mu_.
  void maybe_rotate_locked();
  void rotate_locked();
  uint64_t now() const;

  const uint64_t period_ms_;
  const NowFn now_ms_;
  mutable std::mutex mu_;
  Key current_{};
  Key previous_{};
  bool have_previous_ = false;
  uint64_t next_rotation_ms_ = 0;
  uint64_t rotations_ = 0;
};

}  // namespace egw::tls

// Cidr: an IPv4 or IPv6 address block, for matching a client's address.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv4 addresses here, in a
// peer and in a block alike: a dual-stack listener reports IPv4 clients in
// that form, and "10.0.0.0/8" must match them. So "::ffff:10.0.0.0/104" is
// the block 10.0.0.0/8, and an IPv6 block such as "::/0" matches IPv6 peers
// only (write "0.0.0.0/0" as well to match everyone).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "egw/address.h"

namespace egw::route {

// The address bytes to match `ip` (4 or 16 bytes, as SocketAddress::ip_bytes
// gives them) with: the last 4 bytes of an IPv4-mapped IPv6 address, else
// `ip` itself. A view into `ip`.
std::string_view canonical_ip(std::string_view ip);

class Cidr {
 public:
  // Parses "10.0.0.0/8", "fe80::/10", or a bare address ("127.0.0.1" is /32,
  // "::1" is /128). The prefix is 0-32 or 0-128 in plain decimal. Bits past
  // the prefix must be zero ("10.0.0.1/8" is rejected: it is almost always a
  // typo for /32 or for 10.0.0.0/8). No zone ids, no surrounding spaces, no
  // brackets. nullopt when `text` is not such a block. Used by the config
  // loader for validation and by Router::build().
  static std::optional<Cidr> parse(std::string_view text);

  // True when `ip` (4 or 16 bytes; see canonical_ip) lies in the block. An
  // address of the other family, or an empty view, is never inside.
  bool contains(std::string_view ip) const;
  // False for an address that is not IPv4 or IPv6 (a Unix socket peer).
  bool contains(const SocketAddress& addr) const { return contains(addr.ip_bytes()); }

  bool is_ipv4() const { return size_ == 4; }
  uint8_t prefix_len() const { return prefix_; }
  // "10.0.0.0/8", "fe80::/10" (a mapped block prints as IPv4).
  std::string to_string() const;

 private:
  Cidr() = default;  // only parse() makes one, so size_ is always 4 or 16

  std::array<uint8_t, 16> bytes_{};  // the first size_ bytes are used
  uint8_t size_ = 0;                 // 4 or 16
  uint8_t prefix_ = 0;               // 0..8 * size_
};

}  // namespace egw::route

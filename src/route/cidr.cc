#include "src/route/cidr.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cstring>

namespace egw::route {
namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_mapped(const uint8_t* ip16) {
  return std::memcmp(ip16, kMappedPrefix, 12) == 0;
}

}  // namespace

std::string_view canonical_ip(std::string_view ip) {
  if (ip.size() == 16 && is_mapped(reinterpret_cast<const uint8_t*>(ip.data()))) {
    return ip.substr(12);
  }
  return ip;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view addr = text.substr(0, slash);
  // inet_pton needs a NUL-terminated string; anything longer than the
  // longest IPv6 text is not an address.
  char buf[INET6_ADDRSTRLEN];
  if (addr.empty() || addr.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, addr.data(), addr.size());
  buf[addr.size()] = '\0';

  Cidr c;
  if (addr.find(':') != std::string_view::npos) {
    if (inet_pton(AF_INET6, buf, c.bytes_.data()) != 1) return std::nullopt;
    c.size_ = 16;
  } else {
    if (inet_pton(AF_INET, buf, c.bytes_.data()) != 1) return std::nullopt;
    c.size_ = 4;
  }

  unsigned prefix = 8u * c.size_;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    // Plain decimal: no sign, no spaces, no leading zero ("/08").
    if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) {
      return std::nullopt;
    }
    prefix = 0;
    for (char d : digits) {
      if (d < '0' || d > '9') return std::nullopt;
      prefix = prefix * 10 + static_cast<unsigned>(d - '0');
    }
    if (prefix > 8u * c.size_) return std::nullopt;
  }

  // Bits past the prefix must be zero.
  for (unsigned bit = prefix; bit < 8u * c.size_; ++bit) {
    if (c.bytes_[bit / 8] & (0x80u >> (bit % 8))) return std::nullopt;
  }
  c.prefix_ = static_cast<uint8_t>(prefix);

  // With the bits past the prefix zero, a block inside ::ffff:0:0/96 has a
  // prefix of at least 96: it is an IPv4 block.
  if (c.size_ == 16 && is_mapped(c.bytes_.data()) && c.prefix_ >= 96) {
    std::memmove(c.bytes_.data(), c.bytes_.data() + 12, 4);
    std::memset(c.bytes_.data() + 4, 0, 12);
    c.size_ = 4;
    c.prefix_ = static_cast<uint8_t>(c.prefix_ - 96);
  }
  return c;
}

bool Cidr::contains(std::string_view ip) const {
  ip = canonical_ip(ip);
  if (ip.size() != size_) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(ip.data());
  const unsigned full = prefix_ / 8;
  if (std::memcmp(p, bytes_.data(), full) != 0) return false;
  const unsigned rest = prefix_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xffu << (8 - rest));
  return (p[full] & mask) == bytes_[full];
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(size_ == 4 ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf));
  return fmt::format("{}/{}", buf, prefix_);
}

}  // namespace egw::route

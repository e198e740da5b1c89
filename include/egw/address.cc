#include "egw/address.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace egw {

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned p = 0;
  if (port.empty() || port.size() > 5) return std::nullopt;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p > 65535) return std::nullopt;
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  SocketAddress a;
  if (text.front() != '[') {
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
    if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1) return std::nullopt;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(p));
    a.len_ = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1) return std::nullopt;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(p));
    a.len_ = sizeof(sockaddr_in6);
  }
  return a;
}

SocketAddress SocketAddress::from(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (len > sizeof(a.storage_)) len = sizeof(a.storage_);
  std::memcpy(&a.storage_, sa, len);
  a.len_ = len;
  return a;
}

std::optional<SocketAddress> SocketAddress::peer_of(int fd) {
  SocketAddress a;
  socklen_t len = sizeof(a.storage_);
  if (::getpeername(fd, a.get_mut(), &len) != 0) return std::nullopt;
  a.len_ = std::min<socklen_t>(len, sizeof(a.storage_));  // a Unix path is cut
  return a;
}

std::optional<SocketAddress> SocketAddress::local_of(int fd) {
  SocketAddress a;
  socklen_t len = sizeof(a.storage_);
  if (::getsockname(fd, a.get_mut(), &len) != 0) return std::nullopt;
  a.len_ = std::min<socklen_t>(len, sizeof(a.storage_));
  return a;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string_view SocketAddress::ip_bytes() const {
  if (family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
    return {reinterpret_cast<const char*>(&sin->sin_addr), 4};
  }
  if (family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return {reinterpret_cast<const char*>(&sin6->sin6_addr), 16};
  }
  return {};
}

size_t SocketAddress::format_ip(char* buf, size_t cap) const {
  const void* src = nullptr;
  if (family() == AF_INET) src = &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr;
  if (family() == AF_INET6) src = &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
  if (!src || !inet_ntop(family(), src, buf, static_cast<socklen_t>(cap))) return 0;
  return std::strlen(buf);
}

std::string SocketAddress::ip_string() const {
  char buf[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
              sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof(buf));
  } else if (family() == AF_UNIX) {
    return "unix";
  }
  return buf;
}

std::string SocketAddress::to_string() const {
  if (family() == AF_INET6) return fmt::format("[{}]:{}", ip_string(), port());
  if (family() == AF_INET) return fmt::format("{}:{}", ip_string(), port());
  return ip_string();
}

bool SocketAddress::operator==(const SocketAddress& o) const {
  return family() == o.family() && port() == o.port() && ip_bytes() == o.ip_bytes();
}

}  // namespace egw

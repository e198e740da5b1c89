// SocketAddress: an IPv4 or IPv6 socket address, parsed from and printed as
// "127.0.0.1:9000" / "[::1]:9000". 32 bytes (every session keeps its peer's):
// a Unix socket's address keeps only its family ("unix").
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace egw {

class SocketAddress {
 public:
  SocketAddress() = default;
  // Parses "a.b.c.d:port" or "[v6]:port" (numeric only: no DNS on the data
  // path). nullopt on anything else, including a missing or invalid port.
  static std::optional<SocketAddress> parse(std::string_view text);
  static SocketAddress from(const sockaddr* sa, socklen_t len);
  // Reads the peer (or local) address of a connected socket.
  static std::optional<SocketAddress> peer_of(int fd);
  static std::optional<SocketAddress> local_of(int fd);

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* get_mut() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t len() const { return len_; }
  int family() const { return storage_.sa.sa_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  bool valid() const { return len_ != 0; }
  // The IP address bytes (4 or 16), for hashing and CIDR matching.
  std::string_view ip_bytes() const;

  std::string to_string() const;  // "127.0.0.1:9000", "[::1]:9000"
  std::string ip_string() const;  // "127.0.0.1", "::1"
  // The IP as text into `buf` without allocating; returns its length (0 on
  // failure; needs cap >= INET6_ADDRSTRLEN).
  size_t format_ip(char* buf, size_t cap) const;
  bool operator==(const SocketAddress& o) const;

 private:
  union Storage {
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  };
  Storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace egw

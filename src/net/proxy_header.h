// The PROXY protocol where it meets sockets: reading the addresses out of a
// parsed header, and the header we put in front of a connection to an
// endpoint (send_proxy), written on the socket as soon as it connected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "egw/address.h"
#include "proto/proxy_protocol/header.h"
#include "src/config/config.h"
#include "src/tls/session.h"

namespace egw::net {

// The source and destination a PROXY header names; false when it names
// none (LOCAL, UNKNOWN): the connection's own addresses stand.
bool proxied_addresses(const proto::proxy_protocol::Header& h, SocketAddress& src,
                       SocketAddress& dst);

// The header a connection to an endpoint starts with, for a client that
// connected from `src` to `dst` (either may be null or of different
// families: then a LOCAL / UNKNOWN header), over `tls` when we terminated
// it (v2 then carries ALPN, SNI, version and cipher). Returns its length in
// `out` (proto::proxy_protocol::kMaxWrite bytes), 0 for kOff.
size_t build_proxy_header(config::ClusterConfig::SendProxy version, const SocketAddress* src,
                          const SocketAddress* dst, tls::Session* tls, std::span<uint8_t> out);

// The address a client connected to: the one its PROXY header named, else
// the socket's own, read once when first asked for (8 bytes until then).
class Destination {
 public:
  void set(const SocketAddress& a) { addr_ = std::make_unique<SocketAddress>(a); }
  // Null when `fd` has no address to give.
  const SocketAddress* get(int fd);

 private:
  std::unique_ptr<SocketAddress> addr_;
};

// Writes `header` on `fd`, a socket that has just connected (its send
// buffer is empty, so a header of at most kMaxWrite bytes goes in whole
// without waiting). False, with errno set, when it did not.
bool write_proxy_header(int fd, std::span<const uint8_t> header);

}  // namespace egw::net

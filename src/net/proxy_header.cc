#include "src/net/proxy_header.h"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

namespace egw::net {

namespace pp = proto::proxy_protocol;

namespace {

SocketAddress make(pp::Family f, const uint8_t* ip, uint16_t port) {
  if (f == pp::Family::kInet) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    std::memcpy(&a.sin_addr, ip, 4);
    return SocketAddress::from(reinterpret_cast<const sockaddr*>(&a), sizeof(a));
  }
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  std::memcpy(&a.sin6_addr, ip, 16);
  return SocketAddress::from(reinterpret_cast<const sockaddr*>(&a), sizeof(a));
}

// The address's bytes for a header of family `f`, or false.
bool ip_of(const SocketAddress& a, pp::Family& f, uint8_t out[16]) {
  const std::string_view ip = a.ip_bytes();
  if (ip.size() == 4) {
    f = pp::Family::kInet;
  } else if (ip.size() == 16) {
    f = pp::Family::kInet6;
  } else {
    return false;
  }
  std::memcpy(out, ip.data(), ip.size());
  return true;
}

}  // namespace

bool proxied_addresses(const pp::Header& h, SocketAddress& src, SocketAddress& dst) {
  if (h.status != pp::Status::kDone || h.local || h.addr.family == pp::Family::kNone) return false;
  src = make(h.addr.family, h.addr.src, h.addr.src_port);
  dst = make(h.addr.family, h.addr.dst, h.addr.dst_port);
  return true;
}

size_t build_proxy_header(config::ClusterConfig::SendProxy version, const SocketAddress* src,
                          const SocketAddress* dst, tls::Session* tls, std::span<uint8_t> out) {
  using SP = config::ClusterConfig::SendProxy;
  if (version == SP::kOff) return 0;
  pp::Addresses a;
  pp::Family fs = pp::Family::kNone, fd = pp::Family::kNone;
  if (src && dst && ip_of(*src, fs, a.src) && ip_of(*dst, fd, a.dst) && fs == fd) {
    a.family = fs;
    a.src_port = src->port();
    a.dst_port = dst->port();
  } else {
    a = pp::Addresses{};  // mixed or unknown families: say nothing rather than half
  }
  if (version == SP::kV1) return pp::write_v1(a, out);
  pp::V2Params p;
  p.addr = a;
  if (tls && tls->handshake_done()) {
    p.alpn = tls->alpn();
    p.authority = tls->sni();
    p.ssl.present = true;
    p.ssl.client = pp::kSslClientSsl;
    if (!tls->peer_subject().empty()) {
      // A verified client certificate on this connection.
      p.ssl.client |= pp::kSslClientCertConn | pp::kSslClientCertSess;
      p.ssl.cn = tls->peer_subject();
    }
    p.ssl.verify = 0;
    p.ssl.version = tls->version();
    p.ssl.cipher = tls->cipher();
  }
  return pp::write_v2(p, out);
}

const SocketAddress* Destination::get(int fd) {
  if (!addr_) {
    auto a = SocketAddress::local_of(fd);
    addr_ = std::make_unique<SocketAddress>(a ? *a : SocketAddress());
  }
  return addr_->valid() ? addr_.get() : nullptr;
}

bool write_proxy_header(int fd, std::span<const uint8_t> header) {
  for (;;) {
    const ssize_t n = ::send(fd, header.data(), header.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(header.size())) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n >= 0) errno = EAGAIN;  // a short write into an empty buffer: never seen
    return false;
  }
}

}  // namespace egw::net

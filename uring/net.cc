#include "uring/net.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace egw::uring {

Result<UniqueFd> listen_tcp(const SocketAddress& addr, const ListenOptions& options) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return fail_errno("setsockopt(SO_REUSEADDR)");
  }
  if (options.reuseport &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return fail_errno("setsockopt(SO_REUSEPORT)");
  }
  if (addr.family() == AF_INET6) {
    const int v6only = options.v6_only ? 1 : 0;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  if (options.freebind) ::setsockopt(fd.get(), IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
  // Accepted sockets inherit it: no Nagle delay on what the proxy writes,
  // at no cost per accept.
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::bind(fd.get(), addr.get(), addr.len()) != 0) return fail_errno("bind");
  if (::listen(fd.get(), options.backlog) != 0) return fail_errno("listen");
  return fd;
}

Result<UniqueFd> tcp_socket(int family, bool nonblocking) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd) return fail_errno("socket");
  return fd;
}

void tune_tcp(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace egw::uring

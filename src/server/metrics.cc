#include "src/server/metrics.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "egw/log.h"

namespace egw::server {

std::unique_ptr<MetricsServer> MetricsServer::bind(const SocketAddress& addr, std::string& error) {
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->listen_ = UniqueFd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  m->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m->listen_ || !m->stop_) {
    error = fmt::format("socket: {}", std::strerror(errno));
    return nullptr;
  }
  const int one = 1;
  ::setsockopt(m->listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(m->listen_.get(), addr.get(), addr.len()) != 0 ||
      ::listen(m->listen_.get(), 64) != 0) {
    error = fmt::format("cannot listen on {}: {}", addr.to_string(), std::strerror(errno));
    return nullptr;
  }
  // Non-blocking: during a binary upgrade two processes poll this socket,
  // and the one that loses the race must not block in accept.
  ::fcntl(m->listen_.get(), F_SETFL, ::fcntl(m->listen_.get(), F_GETFL) | O_NONBLOCK);
  if (auto a = SocketAddress::local_of(m->listen_.get())) m->address_ = *a;
  return m;
}

std::unique_ptr<MetricsServer> MetricsServer::adopt(UniqueFd fd, std::string& error) {
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  auto a = SocketAddress::local_of(fd.get());
  int type = 0;
  socklen_t len = sizeof(type);
  if (!a || ::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    error = "the handed-over metrics descriptor is not a TCP socket";
    return nullptr;
  }
  m->address_ = *a;
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  m->listen_ = std::move(fd);
  m->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m->stop_) {
    error = fmt::format("eventfd: {}", std::strerror(errno));
    return nullptr;
  }
  return m;
}

void MetricsServer::hand_over() {
  handed_over_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(stop_.get(), &one, sizeof(one));
}

MetricsServer::~MetricsServer() {
  if (thread_.joinable()) {
    stop_flag_ = true;
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_.get(), &one, sizeof(one));
    thread_.join();
  }
}

void MetricsServer::start(Render render) {
  render_ = std::move(render);
  thread_ = std::thread([this] { run(); });
}

void MetricsServer::run() {
  log::set_thread_tag("metrics");
  for (;;) {
    pollfd p[2] = {{listen_ ? listen_.get() : -1, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      EGW_LOG(error, "metrics: poll: {}", std::strerror(errno));
      return;
    }
    if (p[1].revents) {
      uint64_t v;
      [[maybe_unused]] const ssize_t r = ::read(stop_.get(), &v, sizeof(v));
      if (stop_flag_) return;
      if (handed_over_) listen_.reset();
      continue;
    }
    if (!listen_ || !(p[0].revents & POLLIN)) continue;
    // (An accepted socket does not inherit O_NONBLOCK: serve() blocks,
    // bounded by its timeouts.)
    UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) continue;
    serve(c.get());
  }
}

namespace {

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // gone, or too slow (SO_SNDTIMEO)
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void respond(int fd, std::string_view status, std::string_view type, std::string_view body) {
  send_all(fd, fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                           "Connection: close\r\n\r\n",
                           status, type, body.size()));
  send_all(fd, body);
}

}  // namespace

void MetricsServer::serve(int fd) {
  const timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  char buf[8192];
  size_t have = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, buf + have, sizeof(buf) - have, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed, or nothing in 2 s
    have += static_cast<size_t>(n);
    if (std::string_view(buf, have).find("\r\n\r\n") != std::string_view::npos) break;
    if (have == sizeof(buf)) {
      respond(fd, "431 Request Header Fields Too Large", "text/plain", "request head too large\n");
      return;
    }
  }
  const std::string_view head(buf, have);
  const std::string_view line = head.substr(0, head.find("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    respond(fd, "400 Bad Request", "text/plain", "bad request line\n");
    return;
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (target != "/metrics") {
    respond(fd, "404 Not Found", "text/plain", "only /metrics is served here\n");
    return;
  }
  if (method != "GET" && method != "HEAD") {
    respond(fd, "405 Method Not Allowed", "text/plain", "GET /metrics\n");
    return;
  }
  const std::string body = render_();
  const std::string_view type = "text/plain; version=0.0.4; charset=utf-8";
  if (method == "HEAD") {
    send_all(fd, fmt::format("HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                             "Connection: close\r\n\r\n",
                             type, body.size()));
    return;
  }
  respond(fd, "200 OK", type, body);
}

}  // namespace egw::server

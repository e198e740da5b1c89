#include "src/downstream/proxy_reader.h"

#include <poll.h>
#include <sys/socket.h>

#include "egw/clock.h"
#include "egw/log.h"
#include "proto/proxy_protocol/header.h"
#include "src/net/proxy_header.h"
#include "src/server/worker.h"

namespace egw::downstream {

namespace pp = proto::proxy_protocol;

void ProxyReader::describe(SessionInfo& out) const {
  out.protocol = "proxy_header";
  out.state = "reading";
  out.listener = &snap_.runtime->config->listeners[listener_].name;
  out.peer = peer_;
  out.accept_ns = accept_ns_;
}

ProxyReader::ProxyReader(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
                         UniqueFd fd)
    : worker_(worker),
      snap_(snap),
      fd_(std::move(fd)),
      poller_(worker.loop(), *this),
      listener_(static_cast<uint32_t>(listener)),
      accept_ns_(clock::cached_ns()) {
  if (auto p = SocketAddress::peer_of(fd_.get())) peer_ = *p;
  timer_.set_callback([this] {
    worker_.stats().proxy_timeouts.fetch_add(1, std::memory_order_relaxed);
    EGW_LOG(debug, "client {}: no whole PROXY protocol header in time", peer_.to_string());
    finish(false);
  });
}

ProxyReader::~ProxyReader() {
  worker_.loop().timers().cancel(timer_);
}

void ProxyReader::start() {
  const server::ListenerRuntime& lr = snap_.runtime->listeners[listener_];
  bool trusted = false;
  for (const route::Cidr& c : lr.proxy_trusted) {
    if (c.contains(peer_)) {
      trusted = true;
      break;
    }
  }
  if (!trusted) {
    worker_.stats().proxy_untrusted.fetch_add(1, std::memory_order_relaxed);
    EGW_LOG_RATELIMITED(warn, 1000,
                        "listener {}: connection from {}, which is not in proxy_protocol.trusted: "
                        "closed",
                        snap_.runtime->config->listeners[listener_].name, peer_.to_string());
    finish(false);
    return;
  }
  worker_.loop().timers().schedule_after(
      timer_, snap_.runtime->config->listeners[listener_].proxy_protocol->timeout_ms);
  read();
}

void ProxyReader::read() {
  uint8_t buf[pp::kMaxHeader];
  const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    finish(false);  // gone before saying anything (a balancer's TCP check)
    return;
  }
  const size_t have = n > 0 ? static_cast<size_t>(n) : 0;
  const pp::Header h = pp::parse(std::span<const uint8_t>(buf, have));
  if (h.status == pp::Status::kNeedMore) {
    if (peer_done_ && have > 0) {
      worker_.stats().proxy_invalid.fetch_add(1, std::memory_order_relaxed);
      EGW_LOG(debug, "client {}: closed in the middle of its PROXY protocol header",
              peer_.to_string());
      finish(false);
      return;
    }
    if (peer_done_) {
      finish(false);
      return;
    }
    // Wake once `need` bytes are there (the poll honours SO_RCVLOWAT).
    const int want = static_cast<int>(h.need);
    if (want != rcvlowat_ && have > 0) {
      ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want));
      rcvlowat_ = want;
    }
    poller_.arm(fd_.get(), POLLIN | POLLRDHUP);
    return;
  }
  if (h.status == pp::Status::kInvalid) {
    worker_.stats().proxy_invalid.fetch_add(1, std::memory_order_relaxed);
    EGW_LOG_RATELIMITED(
        warn, 1000, "listener {}: client {}: bad PROXY protocol header ({}): closed",
        snap_.runtime->config->listeners[listener_].name, peer_.to_string(), h.reason);
    finish(false);
    return;
  }
  // Exactly the header's bytes leave the socket; the rest is the session's.
  const ssize_t got = ::recv(fd_.get(), buf, h.length, MSG_DONTWAIT);
  if (got != static_cast<ssize_t>(h.length)) {
    finish(false);
    return;
  }
  if (rcvlowat_ != 0) {
    const int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    rcvlowat_ = 0;
  }
  auto& stats = worker_.stats();
  stats.proxy_headers.fetch_add(1, std::memory_order_relaxed);
  has_addresses_ = net::proxied_addresses(h, addresses_.src, addresses_.dst);
  if (!has_addresses_) stats.proxy_local.fetch_add(1, std::memory_order_relaxed);
  EGW_LOG(trace, "client {}: PROXY v{} header: {}", peer_.to_string(), h.version,
          has_addresses_ ? addresses_.src.to_string() + " -> " + addresses_.dst.to_string()
                         : std::string("no addresses"));
  finish(true);
}

void ProxyReader::on_poll_ready(uring::PollWaiter&, int result) {
  if (finishing_) return;
  if (result < 0) {
    finish(false);
    return;
  }
  if (result & (POLLRDHUP | POLLHUP | POLLERR)) peer_done_ = true;
  read();
}

void ProxyReader::finish(bool ok) {
  if (finishing_) return;
  finishing_ = true;
  ok_ = ok;
  worker_.loop().timers().cancel(timer_);
  poller_.close();  // on_poll_released follows, always
}

void ProxyReader::on_poll_released(uring::PollWaiter&) {
  worker_.proxy_read(*this);  // hands the socket on (or closes it); destroys *this
}

}  // namespace egw::downstream

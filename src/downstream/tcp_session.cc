#include "src/downstream/tcp_session.h"

#include <cstring>

#include <poll.h>
#include <sys/socket.h>

#include "egw/clock.h"
#include "egw/log.h"
#include "proto/tls_sniff/client_hello.h"
#include "src/downstream/proxy_reader.h"
#include "src/route/router.h"
#include "src/server/worker.h"
#include "uring/copy_relay.h"
#include "uring/splice_relay.h"

namespace egw::downstream {

TcpSession::TcpSession(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
                       UniqueFd client, const Proxied* proxied)
    : worker_(worker),
      snap_(snap),
      listener_(snap.runtime->config->listeners[listener]),
      listener_index_(listener),
      client_(std::move(client)),
      attempt_(worker, *this),
      connector_(worker.loop(), *this),
      poller_(worker.loop(), *this) {
  if (proxied) {
    peer_ = proxied->src;
    dst_.set(proxied->dst);
  } else if (auto p = SocketAddress::peer_of(client_.get())) {
    peer_ = *p;
  }
  hash_ = upstream::hash_client(peer_);
  timer_.set_callback([this] { on_timer(); });
  accept_ns_ = clock::cached_ns();
}

TcpSession::~TcpSession() {
  EGW_ASSERT(attempt_.endpoint() < 0);
}

void TcpSession::start() {
  // The socket moves on below (TLS relay): its address is read now if a
  // PROXY header toward an endpoint may need it.
  if (snap_.runtime->listeners[listener_index_].sends_proxy) dst_.get(client_.get());
  if (const auto& ctx = snap_.runtime->listener_tls[listener_index_]) {
    // Terminate TLS: the handshake comes first.
    state_ = State::kHandshake;
    net::TlsRelayHandler& handler = *this;
    auto relay = std::make_unique<net::TlsRelay>(worker_.loop(), handler);
    tls_relay_ = relay.get();
    relay_ = std::move(relay);
    relay_live_ = true;
    tls_relay_->open_a(std::move(client_), tls::Session::server(*ctx));
    worker_.loop().timers().schedule_after(timer_, listener_.tls->handshake_timeout_ms);
    return;
  }
  if (snap_.routers[listener_index_]) {
    state_ = State::kSniffing;
    worker_.loop().timers().schedule_after(timer_, listener_.client_idle_timeout_ms);
    sniff();
    return;
  }
  route("");
}

void TcpSession::sniff() {
  // Peek at what has arrived (up to a whole ClientHello in its records).
  uint8_t buf[proto::tls_sniff::kMaxClientHello + 512];
  uint8_t scratch[proto::tls_sniff::kMaxClientHello];
  const ssize_t n = ::recv(client_.get(), buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    close();  // gone before saying anything
    return;
  }
  const size_t have = n > 0 ? static_cast<size_t>(n) : 0;
  const auto r = proto::tls_sniff::sniff_client_hello(std::span(buf, have), std::span(scratch));
  if (r.status == proto::tls_sniff::SniffStatus::kNeedMore && r.need <= sizeof(buf)) {
    if (peer_done_) {
      // The client stopped sending (or failed) in the middle of its hello:
      // it can never complete a handshake.
      EGW_LOG(debug, "client {} (listener {}): closed in the middle of its ClientHello",
              peer_.to_string(), listener_.name);
      close();
      return;
    }
    // Wake once `need` bytes are there (the poll honours SO_RCVLOWAT).
    const int want = static_cast<int>(r.need);
    if (want != rcvlowat_ && have > 0) {
      ::setsockopt(client_.get(), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want));
      rcvlowat_ = want;
    }
    poller_live_ = true;
    poller_.arm(client_.get(), POLLIN | POLLRDHUP);
    return;
  }
  if (rcvlowat_ != 0) {
    const int one = 1;
    ::setsockopt(client_.get(), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
  }
  std::string_view sni;
  if (r.status == proto::tls_sniff::SniffStatus::kDone && !r.server_name.empty()) {
    sni = r.server_name;
    worker_.stats().sni_routed.fetch_add(1, std::memory_order_relaxed);
  } else {
    // Not TLS, or no server name: only routes without sni apply.
    worker_.stats().sni_missing.fetch_add(1, std::memory_order_relaxed);
    EGW_LOG(debug, "client {} (listener {}): no server name to route on ({})", peer_.to_string(),
            listener_.name, r.reason ? r.reason : "no SNI");
  }
  worker_.loop().timers().cancel(timer_);
  route(sni);
}

void TcpSession::on_poll_ready(uring::PollWaiter&, int result) {
  if (state_ != State::kSniffing) return;
  if (result < 0) {
    close();
    return;
  }
  // With the rest of the hello still missing, EOF or an error would make
  // POLLIN fire again at once: sniff() closes instead.
  if (result & (POLLRDHUP | POLLHUP | POLLERR)) peer_done_ = true;
  sniff();
}

void TcpSession::on_poll_released(uring::PollWaiter&) {
  poller_live_ = false;
  maybe_destroy();
}

void TcpSession::route(std::string_view sni) {
  const server::ListenerRuntime& lr = snap_.runtime->listeners[listener_index_];
  int ci = lr.default_cluster;
  if (const route::Router* router = snap_.routers[listener_index_].get()) {
    route::RequestView view;
    view.host = sni;
    view.path = "/";
    view.peer = &peer_;
    const int r = router->match(view);
    if (r >= 0) ci = lr.route_clusters[static_cast<size_t>(r)];
  }
  if (ci < 0) {
    worker_.stats().refused_no_endpoint.fetch_add(1, std::memory_order_relaxed);
    fail("no route");
    return;
  }
  cluster_ = snap_.clusters[static_cast<size_t>(ci)].get();
  idle_timeout_ms_ = std::min<uint64_t>(listener_.client_idle_timeout_ms,
                                        cluster_->cluster.config().server_idle_timeout_ms);
  state_ = State::kPicking;
  attempt_.begin(*cluster_, hash_, snap_.listener_latency[listener_index_]);
  attempt_.pick();
}

void TcpSession::on_tls_ready(net::TlsRelay& r, int side) {
  auto& stats = worker_.stats();
  tls::Session* s = r.session(side);
  if (side == 0) {
    stats.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
    if (s && s->resumed()) stats.tls_resumed.fetch_add(1, std::memory_order_relaxed);
    snap_.listener_latency[listener_index_]->record(stats::Phase::kTlsHandshake, accept_ns_,
                                                    clock::cached_ns());
    tls_us_ = static_cast<int32_t>(
        std::min<uint64_t>((clock::cached_ns() - accept_ns_) / 1000, INT32_MAX));
    if (state_ != State::kHandshake) return;
    worker_.loop().timers().cancel(timer_);
    route(s ? s->sni() : std::string_view());
    return;
  }
  stats.tls_upstream_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (s && s->resumed()) stats.tls_upstream_resumed.fetch_add(1, std::memory_order_relaxed);
}

void TcpSession::on_queued() {
  state_ = State::kQueued;

  if (!timer_.armed()) {
    worker_.loop().timers().schedule_after(timer_, cluster_->cluster.config().queue_timeout_ms);
  }
}

void TcpSession::on_refused(upstream::Attempt::Refusal why) {
  EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: {}; closing client {} (listener {})",
                      cluster_->cluster.name(), upstream::Attempt::to_string(why),
                      peer_.to_string(), listener_.name);
  fail(upstream::Attempt::to_string(why));
}

void TcpSession::on_picked(int index) {
  if (state_ == State::kQueued) worker_.loop().timers().cancel(timer_);
  state_ = State::kConnecting;
  auto& ep = cluster_->cluster.endpoint(static_cast<size_t>(index));
  ep.sessions.fetch_add(1, std::memory_order_relaxed);
  connector_live_ = true;
  attempt_.connect_started(clock::cached_ns());
  if (auto st = connector_.connect(ep.address(), cluster_->cluster.config().connect_timeout_ms);
      !st) {
    // No socket at all (descriptor limit): not the endpoint's fault.
    EGW_LOG_RATELIMITED(error, 1000, "cannot connect to {}: {}", ep.label(), st.error().message());
    fail("socket");
  }
}

void TcpSession::on_connect_done(uring::Connector& c, int err) {
  if (state_ != State::kConnecting) return;
  if (err == 0) {
    attempt_.connect_succeeded();
    UniqueFd up = c.take_fd();
    if (!send_proxy_header(up.get())) {
      c.close();
      fail("PROXY header");
      return;
    }
    start_relay(std::move(up));
    c.close();  // its job is done; on_connector_released() follows
    return;
  }
  const std::string label =
      cluster_->cluster.endpoint(static_cast<size_t>(attempt_.endpoint())).label();
  if (attempt_.connect_failed(err)) {
    state_ = State::kPicking;
    attempt_.pick();
    return;
  }
  EGW_LOG_RATELIMITED(warn, 1000,
                      "cluster {}: connect to {} failed ({}); giving up after {} attempts",
                      cluster_->cluster.name(), label,
                      err == ETIMEDOUT ? "timeout" : std::strerror(err), attempt_.attempts() + 1);
  fail("connect failed");
}

bool TcpSession::send_proxy_header(int fd) {
  const auto version = cluster_->cluster.config().send_proxy;
  if (version == config::ClusterConfig::SendProxy::kOff) return true;
  uint8_t header[proto::proxy_protocol::kMaxWrite];
  // dst_ was read at start (the client socket may have moved since).
  const size_t n = net::build_proxy_header(version, &peer_, dst_.get(-1),
                                           tls_relay_ ? tls_relay_->session(0) : nullptr, header);
  if (net::write_proxy_header(fd, std::span<const uint8_t>(header, n))) return true;
  EGW_LOG_RATELIMITED(warn, 1000, "cluster {}: cannot write the PROXY header: {}",
                      cluster_->cluster.name(), std::strerror(errno));
  return false;
}

void TcpSession::start_relay(UniqueFd upstream) {
  state_ = State::kRelaying;
  std::unique_ptr<tls::Session> up_session;
  if (cluster_->tls) {
    up_session = tls::Session::client(*cluster_->tls, {});
    if (!up_session) {
      fail("tls client session");
      return;
    }
  }
  if (!tls_relay_ && up_session) {
    // TLS to the endpoint only: the client side stays plain.
    net::TlsRelayHandler& handler = *this;
    auto relay = std::make_unique<net::TlsRelay>(worker_.loop(), handler);
    tls_relay_ = relay.get();
    relay_ = std::move(relay);
    relay_live_ = true;
    tls_relay_->open_a(std::move(client_), nullptr);
  }
  if (tls_relay_) {
    tls_relay_->open_b(std::move(upstream), std::move(up_session));
  } else {
    uring::RelayHandler& handler = *this;
    if (worker_.pipes().max() > 0) {
      relay_ = std::make_unique<uring::SpliceRelay>(worker_.loop(), worker_.pipes(), handler);
      worker_.stats().relays_splice.fetch_add(1, std::memory_order_relaxed);
    } else {
      relay_ = std::make_unique<uring::CopyRelay>(worker_.loop(), handler);
      worker_.stats().relays_copy.fetch_add(1, std::memory_order_relaxed);
    }
    relay_live_ = true;
    relay_->start(std::move(client_), std::move(upstream));
  }
  if (state_ == State::kRelaying) arm_idle_timer();
}

void TcpSession::arm_idle_timer() {
  worker_.loop().timers().schedule_after(timer_, idle_timeout_ms_);
}

void TcpSession::on_timer() {
  const uint64_t now = worker_.loop().now_ms();
  switch (state_) {
    case State::kQueued:
      attempt_.queue_timed_out();
      fail("queue timeout");
      return;
    case State::kSniffing:
      EGW_LOG(debug, "client {} (listener {}): no ClientHello in time", peer_.to_string(),
              listener_.name);
      termination_ = "no ClientHello in time";
      close();
      return;
    case State::kHandshake:
      worker_.stats().tls_timeouts.fetch_add(1, std::memory_order_relaxed);
      termination_ = "TLS handshake timeout";
      close();
      return;
    case State::kRelaying: {
      const uint64_t last = relay_->last_activity_ms();
      if (now - last >= idle_timeout_ms_) {
        worker_.stats().idle_timeouts.fetch_add(1, std::memory_order_relaxed);
        termination_ = "idle timeout";
        close();
        return;
      }
      // Activity since: sleep until the idle deadline counted from it.
      worker_.loop().timers().schedule(timer_, last + idle_timeout_ms_);
      return;
    }
    default:
      return;
  }
}

void TcpSession::on_relay_done(uring::Relay&, int err) {
  if (tls_relay_ && tls_relay_->failed_side() >= 0) {
    const int side = tls_relay_->failed_side();
    const bool handshake = tls_relay_->session(side) && !tls_relay_->ready(side);
    termination_ = side == 0 ? "client TLS failed" : "endpoint TLS failed";
    if (side == 0 && handshake) {
      worker_.stats().tls_failures.fetch_add(1, std::memory_order_relaxed);
      EGW_LOG(debug, "tls handshake from {} failed: {}", peer_.to_string(), tls_relay_->error());
    } else if (side == 1 && handshake) {
      worker_.stats().tls_upstream_failures.fetch_add(1, std::memory_order_relaxed);
      const std::string why =
          tls_relay_->error().empty() ? std::strerror(err) : tls_relay_->error();
      if (attempt_.endpoint() >= 0) {
        EGW_LOG_RATELIMITED(
            warn, 1000, "cluster {}: TLS to {} failed: {}", cluster_->cluster.name(),
            cluster_->cluster.endpoint(static_cast<size_t>(attempt_.endpoint())).label(), why);
      }
    }
  }
  close();
}

void TcpSession::fail(const char* why) {
  termination_ = why;
  EGW_LOG(debug, "client {} (listener {}): closing: {}", peer_.to_string(), listener_.name, why);
  close();
}

void TcpSession::describe(SessionInfo& out) const {
  static constexpr const char* kStates[] = {"sniffing",   "tls_handshake", "picking", "queued",
                                            "connecting", "relaying",      "closing"};
  out.protocol = "tcp";
  out.state = kStates[static_cast<size_t>(state_)];
  out.listener = &listener_.name;
  out.peer = peer_;
  out.accept_ns = accept_ns_;
}

void TcpSession::abort() {
  close();
}

void TcpSession::log_access() {
  const uint64_t now = clock::cached_ns();
  accesslog::Record r;
  r.time_ns = clock::wall_ns();
  r.client = &peer_;
  r.listener = listener_.name;
  r.protocol = "tcp";
  if (relay_) {
    r.bytes_in = relay_->bytes_a_to_b();
    r.bytes_out = relay_->bytes_b_to_a();
  }
  if (cluster_) {
    r.cluster = cluster_->cluster.name();
    if (attempt_.endpoint() >= 0)
      r.endpoint =
          cluster_->cluster.endpoint_config(static_cast<size_t>(attempt_.endpoint())).address_text;
  }
  r.retries = attempt_.attempts();
  r.termination = termination_ ? termination_ : "closed";
  if (tls_relay_) proxy::set_tls(r, tls_relay_->session(0));
  using P = stats::Phase;
  r.phase_us[static_cast<size_t>(P::kTlsHandshake)] = tls_us_;
  r.phase_us[static_cast<size_t>(P::kQueueWait)] = attempt_.queue_wait_us();
  r.phase_us[static_cast<size_t>(P::kConnect)] = attempt_.connect_us();
  r.phase_us[static_cast<size_t>(P::kTotal)] = static_cast<int64_t>((now - accept_ns_) / 1000);
  snap_.access_logs[listener_index_]->write(*snap_.runtime->access_formats[listener_index_], r);
}

void TcpSession::close() {
  if (state_ == State::kClosing) return;
  if (snap_.access_logs[listener_index_]) log_access();
  state_ = State::kClosing;
  worker_.loop().timers().cancel(timer_);
  if (relay_) {
    auto& st = worker_.stats();
    st.bytes_in.fetch_add(relay_->bytes_a_to_b(), std::memory_order_relaxed);
    st.bytes_out.fetch_add(relay_->bytes_b_to_a(), std::memory_order_relaxed);
    if (attempt_.endpoint() >= 0) {
      auto& ep = cluster_->cluster.endpoint(static_cast<size_t>(attempt_.endpoint()));
      ep.bytes_to.fetch_add(relay_->bytes_a_to_b(), std::memory_order_relaxed);
      ep.bytes_from.fetch_add(relay_->bytes_b_to_a(), std::memory_order_relaxed);
    }
    relay_->close();
  }
  attempt_.leave_queue();
  attempt_.release();
  client_.reset();
  if (connector_live_) connector_.close();
  if (poller_live_) poller_.close();
  maybe_destroy();
}

void TcpSession::on_connector_released(uring::Connector&) {
  connector_live_ = false;
  maybe_destroy();
}

void TcpSession::on_relay_released(uring::Relay&) {
  relay_live_ = false;
  maybe_destroy();
}

void TcpSession::maybe_destroy() {
  if (state_ != State::kClosing || connector_live_ || relay_live_ || poller_live_) return;
  worker_.session_ended(*this, snap_);  // destroys *this
}

}  // namespace egw::downstream

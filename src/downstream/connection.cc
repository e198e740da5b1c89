#include "src/downstream/connection.h"

#include <algorithm>
#include <cstring>

#include "egw/clock.h"
#include "egw/log.h"
#include "src/downstream/h1_session.h"
#include "src/downstream/h2_session.h"
#include "src/downstream/proxy_reader.h"
#include "src/server/worker.h"

namespace egw::downstream {

using uring::IoBuf;

proxy::Client client_of(net::ByteStream& stream, const SocketAddress& peer, uint64_t hash,
                        net::Destination& dst, const uint32_t* handshake_us) {
  proxy::Client client;
  client.tls_handshake_us = handshake_us ? *handshake_us : 0;
  client.peer = &peer;
  client.hash = hash;
  client.stream = &stream;
  client.dst = &dst;
  if (tls::Session* t = stream.tls_session()) {
    client.tls = true;
    client.subject = t->peer_subject();
  }
  return client;
}

Connection::Connection(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener,
                       UniqueFd fd, const Proxied* proxied)
    : worker_(worker),
      snap_(snap),
      stream_(worker.loop(), *this),
      accept_ns_(clock::cached_ns()),
      listener_(static_cast<uint32_t>(listener)) {
  if (proxied) {
    peer_ = proxied->src;
    dst_.set(proxied->dst);
  } else if (auto p = SocketAddress::peer_of(fd.get())) {
    peer_ = *p;
  }
  hash_ = upstream::hash_client(peer_);
  timer_.set_callback([this] { on_timer(); });
  const auto& ctx = snap.runtime->listener_tls[listener];
  stream_.open(std::move(fd), ctx ? tls::Session::server(*ctx) : nullptr);
}

Connection::~Connection() {
  worker_.loop().timers().cancel(timer_);
  EGW_ASSERT(codec_ == nullptr);
}

void Connection::start() {
  stream_.start_recv();
  // The handshake, then the first request, must each arrive in time.
  const config::ListenerConfig& lc = *snap_.http_listeners[listener_]->config;
  worker_.loop().timers().schedule_after(
      timer_, stream_.is_tls() ? lc.tls->handshake_timeout_ms : lc.http.request_timeout_ms);
}

bool Connection::choose(Kind k) {
  worker_.loop().timers().cancel(timer_);
  kind_ = k;
  const ClientConn conn{stream_, timer_, peer_, dst_, hash_, accept_ns_, &handshake_us_};
  if (k == Kind::kH2) {
    H2Session* s = worker_.h2_sessions().create(worker_, snap_, listener_, conn);
    if (!s) {
      close(/*reset=*/false);
      return false;
    }
    codec_ = s;
    s->start();
    if (codec_ && draining_) codec_->drain();
    return codec_ != nullptr;
  }
  H1Session* s = worker_.http_sessions().create(worker_, snap_, listener_, conn);
  if (!s) {
    close(/*reset=*/false);
    return false;
  }
  codec_ = s;
  s->start();
  // Draining: this request is answered, with Connection: close.
  if (codec_ && draining_) codec_->drain();
  return codec_ != nullptr;
}

void Connection::on_ready(net::ByteStream&) {
  // The TLS handshake is done (a plain stream never reports).
  auto& stats = worker_.stats();
  stats.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (stream_.tls_session()->resumed()) stats.tls_resumed.fetch_add(1, std::memory_order_relaxed);
  const proxy::ListenerView& lv = *snap_.http_listeners[listener_];
  const uint64_t now = clock::cached_ns();
  if (lv.latency) lv.latency->record(stats::Phase::kTlsHandshake, accept_ns_, now);
  handshake_us_ = static_cast<uint32_t>(std::min<uint64_t>((now - accept_ns_) / 1000, UINT32_MAX));
  if (stream_.alpn() == "h2" && lv.config->http.http2) {
    choose(Kind::kH2);  // drained at once when draining: GOAWAY
    return;
  }
  // HTTP/1.1 (ALPN http/1.1, or none): the codec starts with the first byte.
  worker_.loop().timers().schedule_after(timer_, first_byte_wait_ms());
}

void Connection::on_data(net::ByteStream&, const IoBuf& buf) {
  if (codec_) {
    codec_->on_data(buf);
    return;
  }
  if (stream_.closing()) {
    worker_.loop().release(buf);
    return;
  }
  Kind k = Kind::kH1;
  const proxy::ListenerView& lv = *snap_.http_listeners[listener_];
  if (!stream_.is_tls() && lv.config->http.http2) {
    // Cleartext: prior knowledge starts with the preface, and no HTTP/1.1
    // request line starts like it. The first read almost always holds all
    // 24 bytes; a shorter one that matches so far is kept until it is decided.
    const size_t n = std::min<size_t>(buf.len, kPreface.size() - sniffed_);
    if (std::memcmp(buf.data, kPreface.data() + sniffed_, n) == 0) {
      if (sniffed_ + n < kPreface.size()) {
        // Only ever a prefix of the preface: keep its bytes as they came.
        sniffed_ = static_cast<uint8_t>(sniffed_ + n);
        worker_.loop().release(buf);
        return;
      }
      k = Kind::kH2;
    } else if (const size_t need = sniffed_ < 4 ? 4 - sniffed_ : 0;
               n >= need && std::memcmp(buf.data, kPreface.data() + sniffed_, need) == 0) {
      // "PRI " and then not the preface: a broken HTTP/2 client (PRI is
      // reserved for the preface), told so in HTTP/2 (GOAWAY PROTOCOL_ERROR).
      k = Kind::kH2;
    }
  }
  const uint8_t held = sniffed_;
  sniffed_ = 0;
  if (!choose(k)) {
    worker_.loop().release(buf);
    return;
  }
  if (held) {
    // The prefix read before: it was the preface's own bytes, so it is
    // handed on from the constant.
    IoBuf pre = worker_.loop().scratch(held);
    if (!pre.data) {
      worker_.loop().release(buf);
      codec_->abort();
      return;
    }
    std::memcpy(const_cast<uint8_t*>(pre.data), kPreface.data(), held);
    pre.len = held;
    codec_->on_data(pre);
    if (!codec_ || stream_.closing()) {
      worker_.loop().release(buf);
      return;
    }
  }
  codec_->on_data(buf);
}

void Connection::on_eof(net::ByteStream&) {
  if (codec_) {
    codec_->on_eof();
    return;
  }
  close(false);
}

void Connection::on_error(net::ByteStream&, int err) {
  if (codec_) {
    codec_->on_error(err);
    return;
  }
  if (stream_.is_tls() && !stream_.handshake_done()) {
    if (err == ECONNRESET) {
      close(false);  // gone before finishing the handshake
      return;
    }
    worker_.stats().tls_failures.fetch_add(1, std::memory_order_relaxed);
    EGW_LOG(debug, "tls handshake from {} failed: {}", peer_.to_string(), stream_.error());
    close(/*reset=*/true);  // nothing to say in TLS yet: the peer sees a reset
    return;
  }
  close(false);
}

void Connection::on_sent(net::ByteStream&) {
  if (codec_) codec_->on_sent();
}

void Connection::on_timer() {
  // Only before a codec took the connection: the handshake or the first
  // byte did not come in time.
  if (!stream_.handshake_done()) {
    worker_.stats().tls_timeouts.fetch_add(1, std::memory_order_relaxed);
    close(/*reset=*/true);
    return;
  }
  close(false);
}

void Connection::abort() {
  if (codec_) {
    codec_->abort();
    return;
  }
  close(false);
}

void Connection::describe(SessionInfo& out) const {
  out.listener = &snap_.runtime->config->listeners[listener_].name;
  out.peer = peer_;
  out.accept_ns = accept_ns_;
  if (codec_) {
    codec_->describe(out);
    return;
  }
  out.protocol = "http";
  out.state = stream_.handshake_done() ? "waiting_first_byte" : "tls_handshake";
}

uint64_t Connection::first_byte_wait_ms() const {
  const uint64_t t = snap_.http_listeners[listener_]->config->http.request_timeout_ms;
  return draining_ ? std::min<uint64_t>(t, worker_.drain_idle_ms()) : t;
}

void Connection::drain() {
  if (draining_) return;
  draining_ = true;
  if (codec_) {
    codec_->drain();
    return;
  }
  // Nothing asked yet: a request that comes soon is still answered (a
  // client that just connected would otherwise see its connection close
  // under it); the TLS handshake keeps its own timeout.
  if (worker_.drain_idle_ms() == 0) {
    close(false);
  } else if (stream_.handshake_done() || !stream_.is_tls()) {
    worker_.loop().timers().schedule_after(timer_, first_byte_wait_ms());
  }
}

void Connection::close(bool reset) {
  if (stream_.closing()) return;
  worker_.loop().timers().cancel(timer_);
  if (reset) {
    stream_.abort();
  } else {
    stream_.close();
  }
}

void Connection::on_released(net::ByteStream&) {
  if (Codec* c = codec_) {
    codec_ = nullptr;
    if (kind_ == Kind::kH2) {
      worker_.h2_sessions().destroy(static_cast<H2Session*>(c));
    } else {
      worker_.http_sessions().destroy(static_cast<H1Session*>(c));
    }
  }
  worker_.session_ended(*this, snap_);  // destroys *this
}

}  // namespace egw::downstream

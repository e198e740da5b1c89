// Connection: one accepted client connection of an http listener, before and
// under its codec. It owns the byte stream (socket, TLS), the connection's
// timer, the peer's address and hash, and it chooses the codec:
//
//   TLS:       the handshake (timed), then ALPN: "h2" -> HTTP/2, else HTTP/1.1
//   cleartext: the first bytes: the 24-byte HTTP/2 preface -> HTTP/2 (prior
//              knowledge), anything else -> HTTP/1.1
//
// Until then it holds nothing else: a connection that has sent no byte costs
// its socket and this object. The codec (H1Session or H2Session, from worker
// slabs) then gets every stream event; it closes the stream when it is done,
// and the Connection frees both once nothing is in flight.
#pragma once

#include <array>
#include <cstdint>

#include "egw/address.h"
#include "egw/unique_fd.h"
#include "src/downstream/session.h"
#include "src/net/byte_stream.h"
#include "src/net/proxy_header.h"
#include "uring/timer_wheel.h"

namespace egw::server {
class Worker;
struct WorkerSnapshot;
}  // namespace egw::server

namespace egw::proxy {
struct ListenerView;
struct Client;
}  // namespace egw::proxy

namespace egw::downstream {

// What a codec gets of its client connection's events.
class Codec {
 public:
  virtual ~Codec() = default;
  virtual void on_data(const uring::IoBuf& plain) = 0;
  virtual void on_eof() = 0;
  virtual void on_error(int err) = 0;
  virtual void on_sent() = 0;
  virtual void abort() = 0;
  virtual void drain() = 0;
  // protocol, state and streams of `out` (the admin API).
  virtual void describe(SessionInfo& out) const = 0;
};

// What a codec knows of its connection (all of it owned by the Connection;
// handed to the codec's constructor, which keeps what it needs).
struct ClientConn {
  net::ByteStream& stream;
  uring::Timer& timer;  // the codec sets its callback
  const SocketAddress& peer;
  net::Destination& dst;
  uint64_t hash = 0;
  uint64_t accept_ns = 0;                  // when it was accepted (the first request's start)
  const uint32_t* handshake_us = nullptr;  // the TLS handshake's duration (0: none)
};

// What an exchange knows of the client behind `stream`: its address and
// hash, where it connected to, TLS, and the verified certificate subject
// (mTLS).
proxy::Client client_of(net::ByteStream& stream, const SocketAddress& peer, uint64_t hash,
                        net::Destination& dst, const uint32_t* handshake_us);

struct Proxied;

class Connection final : public Session, private net::ByteStreamHandler {
 public:
  // The HTTP/2 connection preface (RFC 9113 §3.4).
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

  // `proxied`: the addresses of the connection's PROXY header, if it had one.
  Connection(server::Worker& worker, server::WorkerSnapshot& snap, size_t listener, UniqueFd fd,
             const Proxied* proxied = nullptr);
  ~Connection() override;

  void start();
  void abort() override;
  void drain() override;
  void describe(SessionInfo& out) const override;

 private:
  enum class Kind : uint8_t { kNone, kH1, kH2 };

  void on_ready(net::ByteStream& s) override;
  void on_data(net::ByteStream& s, const uring::IoBuf& buf) override;
  void on_eof(net::ByteStream& s) override;
  void on_error(net::ByteStream& s, int err) override;
  void on_sent(net::ByteStream& s) override;
  void on_released(net::ByteStream& s) override;

  // Creates the codec; false when none could be had (closed).
  bool choose(Kind k);
  // How long the first request byte may take (shorter while draining).
  uint64_t first_byte_wait_ms() const;
  void on_timer();
  void close(bool reset);

  server::Worker& worker_;
  server::WorkerSnapshot& snap_;
  net::ByteStream stream_;
  uring::Timer timer_;
  SocketAddress peer_;
  net::Destination dst_;
  uint64_t hash_ = 0;
  uint64_t accept_ns_;
  Codec* codec_ = nullptr;
  uint32_t listener_;
  Kind kind_ = Kind::kNone;
  uint8_t sniffed_ = 0;  // bytes of a preface prefix seen (split first reads)
  bool draining_ = false;
  uint32_t handshake_us_ = 0;  // TLS: how long the handshake took (access logs)
};

}  // namespace egw::downstream

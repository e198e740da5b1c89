// ByteStream: one TCP connection with optional TLS in front, as every HTTP
// codec sees it: plaintext in, plaintext out. It is the one place where a
// socket meets a tls::Session (the proxy's client connections, its
// connections to endpoints, the L4 TLS relay's sides):
//
//   open(fd[, tls]) | connect(addr, timeout[, tls])
//     -> handshake (TLS) -> on_ready() once -> on_data()... -> on_eof()
//   send() / send_full() / on_sent(): back-pressure counts the plaintext
//     waiting to be encrypted as well as the socket's queue, so a peer that
//     stops reading holds at most the watermarks' worth, TLS or not;
//   shutdown(): close_notify (TLS) and FIN once the queue drained;
//   close() / abort() -> on_released() once nothing is in flight.
//
// Failures come as on_error(err): the socket's errno, ETIMEDOUT for a late
// connect, EPROTO for TLS (error() says why), ECONNRESET for a peer that
// closed during the TLS handshake. A failure to encrypt (out of memory) is reported
// from the loop's flush, before it enters the kernel: the handler may close
// the stream there. Plaintext sent in one loop iteration is encrypted
// together just before the loop enters the kernel.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "egw/address.h"
#include "egw/result.h"
#include "egw/unique_fd.h"
#include "src/net/tls_transport.h"
#include "src/tls/session.h"
#include "uring/event_loop.h"
#include "uring/stream_socket.h"

namespace egw::net {

class ByteStream;

class ByteStreamHandler {
 public:
  // A connect() finished its TCP part (a TLS handshake follows when the
  // stream has a session); for timing, nothing to act on.
  virtual void on_connected(ByteStream&) {}
  // The stream carries plaintext from now on, once: a TLS stream's handshake
  // finished (alpn() says what was agreed), or a plain stream connected. A
  // plain stream opened on a connected socket is ready at once and never
  // reports it.
  virtual void on_ready(ByteStream& s) = 0;
  // Plaintext; the handler owns `plain` and releases it.
  virtual void on_data(ByteStream& s, const uring::IoBuf& plain) = 0;
  // The peer finished sending (FIN, or TLS close_notify).
  virtual void on_eof(ByteStream& s) = 0;
  virtual void on_error(ByteStream& s, int err) = 0;
  // The send queue went below its watermark.
  virtual void on_sent(ByteStream& s) = 0;
  // Nothing is in flight any more: the owner may free the stream now.
  virtual void on_released(ByteStream& s) = 0;

 protected:
  ~ByteStreamHandler() = default;
};

class ByteStream final : private uring::StreamSocketHandler {
 public:
  // Plaintext waiting to be encrypted before the stream counts as full (the
  // ciphertext then queues on the socket, which has its own watermark).
  static constexpr size_t kMaxTlsPending = 256 * 1024;
  // A TLS stream's socket counts as full at half the plain watermark: its
  // queue holds whole worker chunks of ciphertext, not slices of receive
  // buffers, so each queued byte is memory of its own.
  static constexpr size_t kMaxTlsQueued = 128 * 1024;

  ByteStream(uring::EventLoop& loop, ByteStreamHandler& handler);
  ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  // Adopts a connected socket, with `tls` (a server or client session) in
  // front when given. Call start_recv() to begin (a client session sends its
  // ClientHello then).
  void open(UniqueFd fd, std::unique_ptr<tls::Session> tls = nullptr);
  // Connects (with a linked timeout), then runs the handshake of `tls`
  // (a client session) when given; reading starts by itself.
  Status connect(const SocketAddress& to, uint32_t timeout_ms,
                 std::unique_ptr<tls::Session> tls = nullptr);
  void start_recv();
  void pause_recv() { sock_.pause_recv(); }
  void resume_recv() { sock_.resume_recv(); }
  bool recv_paused() const { return sock_.recv_paused(); }

  // Queues `b` (owned; released once sent or encrypted). False when the
  // stream cannot send any more (closing, shut, failed): `b` is released.
  bool send(const uring::IoBuf& b);
  bool send_full() const {
    return sock_.send_full() || (tls_ && (tls_->pending_bytes() >= kMaxTlsPending ||
                                          sock_.queued_bytes() >= kMaxTlsQueued));
  }
  bool send_idle() const { return sock_.send_idle() && (!tls_ || tls_->pending_bytes() == 0); }
  bool write_shut() const { return shut_; }

  // close_notify (TLS, once the handshake is done), then FIN once the queue
  // drained. Input is still delivered (TLS: until the session closes).
  void shutdown();
  void close() { sock_.close(); }
  // Closes with a reset (SO_LINGER 0).
  void abort() { sock_.abort(); }
  bool closing() const { return sock_.closing(); }

  bool is_tls() const { return tls_ != nullptr; }
  tls::Session* tls_session() { return tls_ ? &tls_->session() : nullptr; }
  bool handshake_done() const { return !tls_ || tls_->handshake_done(); }
  // A connect() got as far as TCP (a TLS stream may still be handshaking).
  bool connected() const { return connected_; }
  std::string_view alpn() const;
  // Why a TLS stream failed; empty otherwise.
  std::string_view error() const {
    return tls_ ? std::string_view(tls_->error()) : std::string_view();
  }
  uring::StreamSocket& socket() { return sock_; }
  const uring::StreamSocket& socket() const { return sock_; }

 private:
  void on_connected(uring::StreamSocket& s, int err) override;
  void on_data(uring::StreamSocket& s, const uring::IoBuf& buf) override;
  void on_eof(uring::StreamSocket& s) override;
  void on_error(uring::StreamSocket& s, int err) override;
  void on_sent(uring::StreamSocket& s) override;
  void on_released(uring::StreamSocket& s) override;

  void attach_tls(std::unique_ptr<tls::Session> tls);
  // Feeds the transport's results to the handler; false when the stream
  // failed or closed in the meantime.
  void status(tls::Session::Status st);
  void fail(int err, std::string why);

  ByteStreamHandler& handler_;
  uring::StreamSocket sock_;
  std::unique_ptr<TlsTransport> tls_;
  std::unique_ptr<tls::Session> pending_tls_;  // a client session waiting for the connect
  bool shut_ = false;
  bool failed_ = false;
  bool connected_ = false;
};

}  // namespace egw::net

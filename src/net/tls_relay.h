// TlsRelay: the L4 relay for sessions where either side speaks TLS that the
// proxy terminates or originates (`tls` on a tcp listener, on its cluster,
// or both). Side a is the client, side b the endpoint. Bytes move as
// plaintext between the two: decrypted from one side, encrypted to the other.
//
// Each side is a ByteStream (plain or TLS). Side a opens first (its handshake runs before any
// endpoint is chosen, so a bad or slow handshake costs no upstream connection); the handler hears
// on_tls_ready(a) and connects, then opens side b. Plaintext from a that
// arrives before b is ready waits in a bounded queue (the client is paused
// past kMaxPending).
//
// EOF (FIN, or close_notify on a TLS side) is passed on as close_notify and
// shutdown(SHUT_WR) of the other side; the relay is done once both sides
// passed EOF and drained, or at the first failure (a TLS failure reports
// EPROTO; failed_side() and error() say where and why).
#pragma once

#include <memory>
#include <string>

#include "src/net/byte_stream.h"
#include "src/tls/session.h"
#include "uring/io_queue.h"
#include "uring/relay.h"
#include "uring/stream_socket.h"

namespace egw::net {

class TlsRelay;

class TlsRelayHandler : public uring::RelayHandler {
 public:
  // A side is ready to carry plaintext: its handshake completed (side 0 = a,
  // 1 = b). Plain sides never report.
  virtual void on_tls_ready(TlsRelay& r, int side) = 0;

 protected:
  ~TlsRelayHandler() = default;
};

class TlsRelay final : public uring::Relay, private ByteStreamHandler {
 public:
  static constexpr size_t kMaxPending = 64 * 1024;

  TlsRelay(uring::EventLoop& loop, TlsRelayHandler& handler);
  ~TlsRelay() override;

  // Adopts the client socket; `session` (a server session) or null for
  // plaintext. Starts reading (and handshaking) at once.
  void open_a(UniqueFd fd, std::unique_ptr<tls::Session> session);
  // Adopts the connected endpoint socket; `session` (a client session) or
  // null. A client session sends its ClientHello at once.
  void open_b(UniqueFd fd, std::unique_ptr<tls::Session> session);
  // Relay: both sides plaintext (open_a + open_b).
  void start(UniqueFd a, UniqueFd b) override;
  void close() override;

  uint64_t bytes_a_to_b() const override { return sides_[0].bytes; }
  uint64_t bytes_b_to_a() const override { return sides_[1].bytes; }
  uint64_t last_activity_ms() const override { return last_activity_ms_; }
  bool a_eof() const override { return sides_[0].eof; }
  bool b_eof() const override { return sides_[1].eof; }

  // The TLS session of a side, or null.
  tls::Session* session(int side) { return sides_[side].stream.tls_session(); }
  bool ready(int side) const { return sides_[side].ready; }
  // After a failure: the side that failed (-1 none) and, for TLS, why.
  int failed_side() const { return failed_side_; }
  const std::string& error() const { return error_; }

 private:
  struct Side {
    explicit Side(uring::EventLoop& loop, ByteStreamHandler& h) : stream(loop, h) {}
    ByteStream stream;
    bool open = false;
    bool ready = false;  // carries plaintext (plain, or handshake done)
    bool eof = false;    // the peer finished sending
    bool eof_passed = false;
    uint64_t bytes = 0;  // plaintext received from this side
  };

  int index(const ByteStream& s) const { return &s == &sides_[0].stream ? 0 : 1; }
  void on_ready(ByteStream& s) override;
  void on_data(ByteStream& s, const uring::IoBuf& buf) override;
  void on_eof(ByteStream& s) override;
  void on_error(ByteStream& s, int err) override;
  void on_sent(ByteStream& s) override;
  void on_released(ByteStream& s) override;

  void became_ready(int side);
  void forward(int from, const uring::IoBuf& plain);
  void send_to(int to, const uring::IoBuf& plain);
  void side_eof(int side);
  void pass_eof(int from);
  void check_done();
  void fail(int side, int err, std::string why);
  void finish(int err);

  uring::EventLoop& loop_;
  TlsRelayHandler& handler_;
  Side sides_[2];
  uring::IoQueue pending_;  // a -> b plaintext waiting for b
  uint64_t last_activity_ms_ = 0;
  int failed_side_ = -1;
  std::string error_;
  bool done_ = false;
  bool closing_ = false;
  int released_ = 0;
};

}  // namespace egw::net

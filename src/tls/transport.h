// Transport: a tls::Session on a uring::StreamSocket. The socket's owner
// hands it the ciphertext it receives and gets plaintext back as IoBufs;
// plaintext it sends comes out as ciphertext queued on the socket. Both
// directions go through worker chunks (wolfSSL works on its own buffers, so
// each direction costs one copy beyond wolfSSL's own).
#pragma once

#include <memory>

#include "src/tls/session.h"
#include "uring/event_loop.h"
#include "uring/stream_socket.h"

namespace egw::tls {

class Transport {
 public:
  Transport(uring::EventLoop& loop, uring::StreamSocket& sock, std::unique_ptr<Session> session);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Feeds received ciphertext (released here) and drives the session:
  // handshake first, then decryption; each piece of plaintext goes to
  // `deliver(const uring::IoBuf&)`, which takes ownership. Returns kOk or
  // kWantInput while all is well, kClosed at the peer's close, kError on
  // failure (session().error() says why).
  template <class F>
  Session::Status on_ciphertext(const uring::IoBuf& buf, F&& deliver) {
    session_->feed(buf.data, buf.len);
    loop_.release(buf);
    return pump(deliver);
  }
  // Drives the session without new input (a client's first flight).
  template <class F>
  Session::Status pump(F&& deliver) {
    if (!session_->handshake_done()) {
      const Session::Status s = session_->handshake();
      if (s != Session::Status::kOk) return s;
      just_done_ = true;
    }
    return session_->read([&](const uint8_t* p, size_t n) { deliver(copy_in(p, n)); });
  }
  // True once, right after the handshake completed.
  bool take_handshake_done() {
    const bool d = just_done_;
    just_done_ = false;
    return d;
  }

  // Encrypts `b` (released here) onto the socket. False when the session
  // failed (the bytes are dropped; close the connection).
  bool send(const uring::IoBuf& b);
  // Sends close_notify.
  void close_notify() { session_->close_notify(); }

  Session& session() { return *session_; }
  bool handshake_done() const { return session_->handshake_done(); }

 private:
  uring::IoBuf copy_in(const uint8_t* p, size_t n);
  void on_output(const uint8_t* p, size_t n);
  // Appends to the current chunk of `c` (a new one when full): a slice of it.
  uring::IoBuf append(uring::Chunk*& c, const uint8_t* p, size_t n);

  uring::EventLoop& loop_;
  uring::StreamSocket& sock_;
  std::unique_ptr<Session> session_;
  uring::Chunk* in_chunk_ = nullptr;   // plaintext being delivered
  uring::Chunk* out_chunk_ = nullptr;  // ciphertext being sent
  bool just_done_ = false;
  bool failed_ = false;
};

}  // namespace egw::tls

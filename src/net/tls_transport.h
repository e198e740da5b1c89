// TlsTransport: a tls::Session on a uring::StreamSocket. The socket's owner
// hands it the ciphertext it receives and gets plaintext back as IoBufs;
// plaintext it sends comes out as ciphertext queued on the socket. Both
// directions go through worker chunks (wolfSSL works on its own buffers, so
// each direction costs one copy beyond wolfSSL's own).
//
// Plaintext sent in one loop iteration is encrypted together just before the
// loop enters the kernel (a response head and a small body make one record,
// not two): the same batching the socket's send queue does.
#pragma once

#include <memory>
#include <string>

#include "egw/inline_function.h"
#include "src/tls/session.h"
#include "uring/event_loop.h"
#include "uring/io_queue.h"
#include "uring/stream_socket.h"

namespace egw::net {

class TlsTransport final : private uring::Flushable {
 public:
  // Called (from the loop's flush) when encrypting queued plaintext failed:
  // the connection cannot go on.
  using FailFn = InlineFunction<void(), 16>;

  TlsTransport(uring::EventLoop& loop, uring::StreamSocket& sock,
               std::unique_ptr<tls::Session> session);
  ~TlsTransport();
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // Feeds received ciphertext (released here) and drives the session:
  // handshake first, then decryption; each piece of plaintext goes to
  // `deliver(const uring::IoBuf&)`, which takes ownership. Returns kOk or
  // kWantInput while all is well, kClosed at the peer's close, kError on
  // failure (session().error() says why).
  template <class F>
  tls::Session::Status on_ciphertext(const uring::IoBuf& buf, F&& deliver) {
    session_->feed(buf.data, buf.len);
    loop_.release(buf);
    return pump(deliver);
  }
  // Drives the session without new input (a client's first flight).
  template <class F>
  tls::Session::Status pump(F&& deliver) {
    tls::Session::Status s = tls::Session::Status::kOk;
    if (!session_->handshake_done()) {
      s = session_->handshake();
      if (s == tls::Session::Status::kOk) just_done_ = true;
    }
    if (s == tls::Session::Status::kOk) {
      s = session_->read([&](const uint8_t* p, size_t n) { deliver(copy_in(p, n)); });
    }
    session_->park_input();
    drop_chunks();
    return s;
  }
  // True once, right after the handshake completed.
  bool take_handshake_done() {
    const bool d = just_done_;
    just_done_ = false;
    return d;
  }

  // Queues `b` (released once encrypted) to be encrypted onto the socket
  // before the loop next enters the kernel. False when the session already
  // failed (the bytes are dropped; close the connection).
  bool send(const uring::IoBuf& b);
  // Encrypts what is queued now.
  void flush() override;
  // Plaintext queued and not yet encrypted.
  size_t pending_bytes() const { return pending_.bytes(); }
  void set_on_failure(FailFn f) { on_failure_ = std::move(f); }
  // Encrypts what is queued, then sends close_notify.
  void close_notify() {
    flush();
    session_->close_notify();
    drop_chunks();
  }

  tls::Session& session() { return *session_; }
  // Why the stream over this transport failed (kept by its ByteStream).
  std::string& error() { return error_; }
  const std::string& error() const { return error_; }
  bool handshake_done() const { return session_->handshake_done(); }

 private:
  uring::IoBuf copy_in(const uint8_t* p, size_t n);
  // Gives up this transport's own references to its chunks (the slices
  // handed out keep them alive while used): an idle connection holds none.
  void drop_chunks();
  void on_output(const uint8_t* p, size_t n);
  // Appends to the current chunk of `c` (a new one when full): a slice of it.
  uring::IoBuf append(uring::Chunk*& c, const uint8_t* p, size_t n);

  uring::EventLoop& loop_;
  uring::StreamSocket& sock_;
  std::unique_ptr<tls::Session> session_;
  uring::Chunk* in_chunk_ = nullptr;   // plaintext being delivered
  uring::Chunk* out_chunk_ = nullptr;  // ciphertext being sent
  uring::IoQueue pending_;             // plaintext waiting for flush()
  FailFn on_failure_;
  std::string error_;
  bool just_done_ = false;
  bool failed_ = false;
};

}  // namespace egw::net

// Session: one TLS connection over wolfSSL, sans-I/O. No sockets, no ring:
// the owner feeds the ciphertext it received and is handed, through the
// output callback, the ciphertext to send.
//
// Input (record assembly): feed() copies ciphertext into the session's input
// queue and walks the record headers. wolfSSL's receive callback is served
// only from the complete records at the front of that queue, so wolfSSL never
// holds a partial record (which is what makes the kTLS hand-off exact). A
// header with a bad content type, a major version other than 3 or a length
// above kMaxCiphertext fails the session at once, so that no peer can make it
// buffer more than one record beyond what the owner fed since its last
// read()/handshake().
//
// Output: wolfSSL's send callback hands each piece of ciphertext (handshake
// flights, records, alerts) to the OutputFn synchronously; the bytes are only
// valid during the call, so the owner copies them into its send queue. The
// callback always accepts everything, so wolfSSL never sees a short write and
// never has to retry one.
//
// Server side: the WOLFSSL object is made only once the whole ClientHello is
// queued: the session reads the SNI from it, picks the certificate
// (ServerContext::select) and creates the WOLFSSL from that certificate's
// WOLFSSL_CTX, so no context switch happens inside wolfSSL.
//
// Threading: a Session belongs to one worker; its context may be shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "egw/inline_function.h"
#include "src/tls/context.h"

struct WOLFSSL;
struct WOLFSSL_SESSION;

namespace egw::tls {

// Frees a WOLFSSL (wolfSSL_free).
struct WolfSslDeleter {
  void operator()(WOLFSSL* ssl) const;
};
using WolfSslPtr = std::unique_ptr<WOLFSSL, WolfSslDeleter>;

// Client-side resumption state (session + ticket) saved from one connection
// and offered by a later one to the same server. Immutable once saved; may be
// shared across threads.
class SavedSession {
 public:
  ~SavedSession();
  SavedSession(const SavedSession&) = delete;
  SavedSession& operator=(const SavedSession&) = delete;
  WOLFSSL_SESSION* native() const { return session_; }

 private:
  friend class Session;
  explicit SavedSession(WOLFSSL_SESSION* s) : session_(s) {}
  WOLFSSL_SESSION* session_;
};

class Session {
 public:
  // Called with each piece of ciphertext to send, valid only during the call.
  using OutputFn = InlineFunction<void(const uint8_t*, size_t), 32>;

  enum class Status : uint8_t {
    kOk,         // done (handshake complete / plaintext returned / written)
    kWantInput,  // feed() more ciphertext, then call again
    kClosed,     // the peer closed (see close_notify_received())
    kError,      // failed for good: error() says why; close the connection
  };
  enum class Role : uint8_t { kServer, kClient };
  enum class State : uint8_t { kHandshake, kOpen, kClosed, kFailed };

  static constexpr size_t kRecordHeaderSize = 5;
  static constexpr size_t kMaxPlaintext = 16384;  // 2^14 (RFC 8446 §5.1)
  // The largest record body accepted: TLS 1.2's 2^14 + 2048 (RFC 5246
  // §6.2.3), which also covers TLS 1.3's 2^14 + 256.
  static constexpr size_t kMaxCiphertext = kMaxPlaintext + 2048;
  // A ClientHello longer than this is refused before wolfSSL sees it.
  static constexpr size_t kMaxClientHello = 64 * 1024;

  // A server session on `context` (kept alive by the session). Never null.
  static std::unique_ptr<Session> server(ServerContext& context);
  // A client session: SNI `sni`, or options().sni when `sni` is empty; with
  // options().verify the server's name is checked against it. `resume`
  // offers a saved session (ticket). Null only if wolfSSL cannot allocate.
  static std::unique_ptr<Session> client(ClientContext& context, std::string_view sni,
                                         const SavedSession* resume = nullptr);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Where ciphertext goes; set once, before the first handshake() call.
  void set_output(OutputFn out) { output_ = std::move(out); }

  // Ciphertext as received, split anywhere. Call handshake() or read() after
  // each feed: they drain the queue. Ignored once the session has failed.
  void feed(const uint8_t* data, size_t len);
  // The peer shut down its sending side (recv returned 0).
  void feed_eof();

  // Advances the handshake (a client's first call emits its ClientHello).
  // kOk once complete; kWantInput until then. After kOk, records that arrived
  // with the last flight may already be queued: call read().
  Status handshake();
  bool handshake_done() const { return state_ == State::kOpen || state_ == State::kClosed; }

  // Decrypts what is queued and calls sink(const uint8_t*, size_t) for each
  // piece of plaintext (at most kMaxPlaintext bytes, valid during the call).
  // Returns kWantInput once the queue is drained, kClosed after the peer's
  // close_notify (or EOF at a record boundary), kError on failure. Drives the
  // handshake first if it is not done. The sink must not destroy the session
  // or call read() on it.
  template <class F>
  Status read(F&& sink) {
    uint8_t buf[kMaxPlaintext];
    for (;;) {
      size_t n = 0;
      const Status s = read_some(buf, sizeof(buf), &n);
      if (n > 0) sink(static_cast<const uint8_t*>(buf), n);
      if (s != Status::kOk) return s;
    }
  }
  // One step of read(): up to `cap` bytes of plaintext into `buf`. kOk with
  // *n > 0, or another status with *n == 0.
  Status read_some(uint8_t* buf, size_t cap, size_t* n);

  // Encrypts all of `data` (in records of at most kMaxPlaintext) and hands
  // the records to the output callback before returning. Only after the
  // handshake is done.
  Status write(const uint8_t* data, size_t len);

  // Sends close_notify (once). The session can still read what the peer
  // sends until its own close_notify.
  void close_notify();

  // Client: the resumption state of this connection, or null when there is
  // none yet. With TLS 1.3 the ticket comes after the handshake: call read()
  // on the server's next flight first.
  std::shared_ptr<SavedSession> save() const;

  Role role() const { return role_; }
  State state() const { return state_; }
  // Server: the name the client asked for (as sent). Client: the SNI sent.
  std::string_view sni() const { return sni_; }
  // Negotiated ALPN protocol, empty if none.
  std::string_view alpn() const { return alpn_; }
  std::string_view version() const;  // "TLSv1.3", "TLSv1.2"; empty before the handshake
  // OpenSSL's name: "TLS_AES_128_GCM_SHA256" (TLS 1.3), "ECDHE-ECDSA-AES128-GCM-SHA256" (1.2)
  std::string_view cipher() const;
  bool resumed() const;
  // Server: the verified client certificate's subject ("/CN=..."), empty
  // without one. Client: the server certificate's subject.
  std::string_view peer_subject() const { return peer_subject_; }
  // Server: the certificate SNI picked (index into ServerOptions::certificates).
  size_t certificate_index() const { return certificate_index_; }
  // Why the session failed (empty unless state() == kFailed), e.g.
  // "certificate verify failed: ...".
  std::string error() const { return error_; }
  // Whether the peer's close_notify arrived (false after a bare EOF).
  bool close_notify_received() const { return close_notify_received_; }

  // Once everything fed has been consumed: gives the input queue's memory
  // to a per-thread spare list (an idle connection then holds none; the
  // next feed of any session on this thread takes it back).
  void park_input();

  // Ciphertext fed but not yet handed to wolfSSL (complete or not).
  size_t buffered_input() const { return in_.size() - in_head_; }
  // The wolfSSL object; null on a server before the ClientHello arrived.
  WOLFSSL* native() const { return ssl_.get(); }

 private:
  friend struct SessionCallbacks;
  explicit Session(Role role) : role_(role) {}

  void scan_records();
  int on_recv(char* buf, int size);
  int on_send(const char* buf, int size);
  Status begin_server();
  void setup(WOLFSSL* ssl);
  void on_handshake_done();
  Status after_want_read(std::string_view during);
  Status fail(std::string message);
  Status fail_wolf(int ret);

  const Role role_;
  State state_ = State::kHandshake;
  bool eof_ = false;
  bool close_sent_ = false;
  bool close_notify_received_ = false;
  const char* input_error_ = nullptr;  // a record-layer violation seen by feed()
  size_t certificate_index_ = 0;

  std::shared_ptr<ServerContext> server_;
  std::shared_ptr<ClientContext> client_;
  WolfSslPtr ssl_;
  OutputFn output_;

  // Input queue: [in_head_, in_scan_) are complete records not yet given to
  // wolfSSL; [in_scan_, size) is the start of the next record.
  std::vector<uint8_t> in_;
  size_t in_head_ = 0;
  size_t in_scan_ = 0;

  std::string sni_;
  std::string alpn_;  // a copy: the server frees wolfSSL's handshake state
  std::string peer_subject_;
  std::string verify_error_;  // detail from the verify callback
  std::string error_;
};

const char* to_string(Session::Status s);
const char* to_string(Session::State s);

}  // namespace egw::tls

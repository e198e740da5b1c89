#include "src/tls/session.h"

// wolfSSL: options.h must come before any other wolfSSL header.
#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
//
#include <fmt/format.h>

#include <climits>
#include <cstring>

#include "egw/assert.h"

namespace egw::tls {

void WolfSslDeleter::operator()(WOLFSSL* ssl) const {
  wolfSSL_free(ssl);
}

SavedSession::~SavedSession() {
  wolfSSL_SESSION_free(session_);
}

// wolfSSL's callbacks, with access to Session's internals. The I/O context
// of every WOLFSSL is its Session.
struct SessionCallbacks {
  static int recv(WOLFSSL*, char* buf, int size, void* ctx) {
    return static_cast<Session*>(ctx)->on_recv(buf, size);
  }
  static int send(WOLFSSL*, char* buf, int size, void* ctx) {
    return static_cast<Session*>(ctx)->on_send(buf, size);
  }
  // Keeps wolfSSL's verdict; records why a certificate was refused, for
  // error(). Runs for every certificate of the chain (ALWAYS_VERIFY_CB).
  static int verify(int preverify, WOLFSSL_X509_STORE_CTX* store) {
    if (preverify) return preverify;
    auto* ssl = static_cast<WOLFSSL*>(
        wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* self = ssl ? static_cast<Session*>(wolfSSL_GetIOReadCtx(ssl)) : nullptr;
    if (self && self->verify_error_.empty()) {
      const int err = wolfSSL_X509_STORE_CTX_get_error(store);
      const char* what = wolfSSL_X509_verify_cert_error_string(err);
      self->verify_error_ = fmt::format("{} (certificate depth {})", what ? what : "unknown",
                                        wolfSSL_X509_STORE_CTX_get_error_depth(store));
    }
    return preverify;
  }
};

namespace {

constexpr uint8_t kContentHandshake = 22;
// Input queue capacity kept between feeds: two full records and a bit.
constexpr size_t kRetainedInput = 64 * 1024;
// Drained input queues wait here for the next session of this thread that
// needs one (so an idle connection holds no input memory, and a busy one
// does not allocate per read).
constexpr size_t kMaxSpareInputs = 256;
thread_local std::vector<std::vector<uint8_t>> spare_inputs;
constexpr uint8_t kHandshakeClientHello = 1;

// A bounds-checked cursor over bytes a peer sent.
struct Reader {
  const uint8_t* p;
  size_t n;

  bool skip(size_t k) {
    if (k > n) return false;
    p += k;
    n -= k;
    return true;
  }
  bool u8(size_t* v) {
    if (n < 1) return false;
    *v = p[0];
    return skip(1);
  }
  bool u16(size_t* v) {
    if (n < 2) return false;
    *v = (size_t{p[0]} << 8) | p[1];
    return skip(2);
  }
  // A sub-reader over the next `k` bytes.
  bool sub(size_t k, Reader* out) {
    if (k > n) return false;
    *out = Reader{p, k};
    return skip(k);
  }
};

// Finds the host_name in a ClientHello body (RFC 8446 §4.1.2, RFC 6066 §3).
// False when the structure is malformed; *sni stays empty without SNI.
bool parse_client_hello_sni(const uint8_t* body, size_t len, std::string* sni) {
  Reader r{body, len};
  size_t k;
  if (!r.skip(2 + 32)) return false;                    // legacy_version, random
  if (!r.u8(&k) || k > 32 || !r.skip(k)) return false;  // legacy_session_id
  if (!r.u16(&k) || k < 2 || !r.skip(k)) return false;  // cipher_suites
  if (!r.u8(&k) || k < 1 || !r.skip(k)) return false;   // compression_methods
  if (r.n == 0) return true;                            // no extensions (TLS 1.2)
  Reader exts;
  if (!r.u16(&k) || !r.sub(k, &exts)) return false;
  while (exts.n > 0) {
    size_t type, ext_len;
    Reader ext;
    if (!exts.u16(&type) || !exts.u16(&ext_len) || !exts.sub(ext_len, &ext)) return false;
    if (type != 0) continue;  // server_name
    Reader list;
    if (!ext.u16(&k) || !ext.sub(k, &list)) return false;
    while (list.n > 0) {
      size_t name_type, name_len;
      if (!list.u8(&name_type) || !list.u16(&name_len) || name_len > list.n) return false;
      if (name_type == 0 && name_len > 0) {
        sni->assign(reinterpret_cast<const char*>(list.p), name_len);
        return true;
      }
      list.skip(name_len);
    }
    return true;
  }
  return true;
}

// wolfSSL's alert names, plus the TLS 1.3 ones it does not know.
std::string alert_name(int code) {
  if (code == 116) return "certificate_required";
  if (code == 109) return "missing_extension";
  const char* desc = wolfSSL_alert_desc_string_long(code);
  if (desc && std::strcmp(desc, "unknown") != 0) return desc;
  return fmt::format("alert {}", code);
}

}  // namespace

std::unique_ptr<Session> Session::server(ServerContext& context) {
  std::unique_ptr<Session> s(new Session(Role::kServer));
  s->server_ = context.shared_from_this();
  return s;
}

std::unique_ptr<Session> Session::client(ClientContext& context, std::string_view sni,
                                         const SavedSession* resume) {
  std::unique_ptr<Session> s(new Session(Role::kClient));
  s->client_ = context.shared_from_this();
  WOLFSSL* ssl = wolfSSL_new(context.native());
  if (!ssl) return nullptr;
  s->setup(ssl);
  s->sni_ = sni.empty() ? context.options().sni : std::string(sni);
  if (!s->sni_.empty()) {
    if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, s->sni_.data(),
                       static_cast<unsigned short>(s->sni_.size())) != WOLFSSL_SUCCESS) {
      return nullptr;
    }
    if (context.options().verify &&
        wolfSSL_check_domain_name(ssl, s->sni_.c_str()) != WOLFSSL_SUCCESS) {
      return nullptr;
    }
  }
  if (!context.alpn_list().empty()) {
    std::string list = context.alpn_list();  // wolfSSL wants a mutable buffer
    if (wolfSSL_UseALPN(ssl, list.data(), static_cast<unsigned int>(list.size()),
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
      return nullptr;
    }
  }
  if (resume && resume->native()) wolfSSL_set_session(ssl, resume->native());
  return s;
}

Session::~Session() = default;

void Session::setup(WOLFSSL* ssl) {
  ssl_.reset(ssl);
  wolfSSL_SSLSetIORecv(ssl, SessionCallbacks::recv);
  wolfSSL_SSLSetIOSend(ssl, SessionCallbacks::send);
  wolfSSL_SetIOReadCtx(ssl, this);
  wolfSSL_SetIOWriteCtx(ssl, this);
  const int mode = wolfSSL_CTX_get_verify_mode(wolfSSL_get_SSL_CTX(ssl));
  if (mode != WOLFSSL_VERIFY_NONE) wolfSSL_set_verify(ssl, mode, SessionCallbacks::verify);
}

void Session::park_input() {
  if (in_head_ != in_.size() || in_.capacity() == 0) return;
  in_.clear();
  in_head_ = in_scan_ = 0;
  if (in_.capacity() <= kRetainedInput && spare_inputs.size() < kMaxSpareInputs) {
    spare_inputs.push_back(std::move(in_));
  }
  std::vector<uint8_t>().swap(in_);
}

void Session::feed(const uint8_t* data, size_t len) {
  if (len == 0 || state_ == State::kFailed || input_error_) return;
  if (in_.capacity() == 0 && !spare_inputs.empty()) {
    in_ = std::move(spare_inputs.back());
    spare_inputs.pop_back();
  }
  if (in_head_ == in_.size()) {
    // Drained. A queue that grew past kRetainedInput (a big feed) gives its
    // memory back rather than keep it for the life of an idle connection.
    if (in_.capacity() > kRetainedInput) {
      std::vector<uint8_t>().swap(in_);
    } else {
      in_.clear();
    }
    in_head_ = in_scan_ = 0;
  } else if (in_head_ > 0) {
    // What is left is at most a partial record plus records wolfSSL has not
    // asked for yet.
    in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(in_head_));
    in_scan_ -= in_head_;
    in_head_ = 0;
  }
  in_.insert(in_.end(), data, data + len);
  scan_records();
}

void Session::feed_eof() {
  eof_ = true;
}

// Advances in_scan_ over the complete records and checks each header as soon
// as its bytes arrive, so garbage fails on its first byte.
void Session::scan_records() {
  while (in_scan_ < in_.size()) {
    const uint8_t* h = in_.data() + in_scan_;
    const size_t avail = in_.size() - in_scan_;
    if (h[0] < 20 || h[0] > 24) {
      input_error_ = "not TLS: bad record content type";
      return;
    }
    if (avail >= 2 && h[1] != 3) {
      input_error_ = "not TLS: bad record version";
      return;
    }
    if (avail < kRecordHeaderSize) return;
    const size_t body = (size_t{h[3]} << 8) | h[4];
    if (body > kMaxCiphertext) {
      input_error_ = "record length above the TLS limit";
      return;
    }
    if (avail < kRecordHeaderSize + body) return;
    in_scan_ += kRecordHeaderSize + body;
  }
}

int Session::on_recv(char* buf, int size) {
  const size_t ready = in_scan_ - in_head_;
  if (ready == 0 || size <= 0) return WOLFSSL_CBIO_ERR_WANT_READ;
  const size_t n = std::min(ready, static_cast<size_t>(size));
  std::memcpy(buf, in_.data() + in_head_, n);
  in_head_ += n;
  return static_cast<int>(n);
}

int Session::on_send(const char* buf, int size) {
  if (!output_) return WOLFSSL_CBIO_ERR_GENERAL;
  output_(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(size));
  return size;
}

Session::Status Session::fail(std::string message) {
  if (state_ != State::kFailed) {
    state_ = State::kFailed;
    error_ = std::move(message);
  }
  return Status::kError;
}

Session::Status Session::fail_wolf(int ret) {
  const int err = wolfSSL_get_error(ssl_.get(), ret);
  std::string msg;
  if (!verify_error_.empty()) {
    msg = "certificate verify failed: " + verify_error_;
  } else if (err == NO_PEER_CERT) {
    msg = "certificate verify failed: the peer sent no certificate";
  } else {
    const char* reason = wolfSSL_ERR_reason_error_string(static_cast<unsigned long>(err));
    msg = reason ? reason : "unknown error";
  }
  WOLFSSL_ALERT_HISTORY h{};
  if (wolfSSL_get_alert_history(ssl_.get(), &h) == WOLFSSL_SUCCESS && h.last_rx.level == 2) {
    msg += fmt::format("; peer sent fatal alert: {}", alert_name(h.last_rx.code));
  }
  msg += fmt::format(" (wolfSSL error {})", err);
  return fail(std::move(msg));
}

// wolfSSL wants more input: wait for it, unless the peer has gone.
Session::Status Session::after_want_read(std::string_view during) {
  if (!eof_) return Status::kWantInput;
  if (buffered_input() > 0) return fail("connection closed in the middle of a record");
  if (state_ == State::kOpen) {
    state_ = State::kClosed;  // EOF without close_notify: close_notify_received() says so
    return Status::kClosed;
  }
  return fail(fmt::format("connection closed during the {}", during));
}

// Server: waits for the whole ClientHello, reads its SNI, picks the
// certificate and makes the WOLFSSL from that certificate's context.
Session::Status Session::begin_server() {
  if (in_scan_ == in_head_) return after_want_read("handshake");
  const uint8_t* first = in_.data() + in_head_;
  if (first[0] != kContentHandshake) return fail("not TLS: the first record is not a handshake");

  // Fast path: the whole ClientHello is in the first record. Otherwise join
  // the bodies of the handshake records that carry it.
  const size_t first_body = (size_t{first[3]} << 8) | first[4];
  const uint8_t* hs = first + kRecordHeaderSize;
  size_t have = first_body;
  std::vector<uint8_t> joined;
  size_t at = in_head_ + kRecordHeaderSize + first_body;
  for (;;) {
    if (have >= 1 && hs[0] != kHandshakeClientHello) {
      return fail("not TLS: the first message is not a ClientHello");
    }
    if (have >= 4) {
      const size_t hello_len = (size_t{hs[1]} << 16) | (size_t{hs[2]} << 8) | hs[3];
      if (hello_len > kMaxClientHello) return fail("ClientHello too large");
      if (have >= 4 + hello_len) {
        if (!parse_client_hello_sni(hs + 4, hello_len, &sni_)) {
          return fail("malformed ClientHello");
        }
        break;
      }
    }
    if (at == in_scan_) return after_want_read("handshake");
    const uint8_t* rec = in_.data() + at;
    const size_t body = (size_t{rec[3]} << 8) | rec[4];
    if (rec[0] != kContentHandshake) return fail("malformed ClientHello: interleaved record");
    if (joined.empty()) joined.assign(hs, hs + have);
    joined.insert(joined.end(), rec + kRecordHeaderSize, rec + kRecordHeaderSize + body);
    at += kRecordHeaderSize + body;
    hs = joined.data();
    have = joined.size();
  }

  certificate_index_ = server_->select(sni_);
  WOLFSSL* ssl = wolfSSL_new(server_->native(certificate_index_));
  if (!ssl) return fail("wolfSSL_new failed (out of memory)");
  setup(ssl);
  return Status::kOk;
}

Session::Status Session::handshake() {
  switch (state_) {
    case State::kOpen:
      return Status::kOk;
    case State::kClosed:
      return Status::kClosed;
    case State::kFailed:
      return Status::kError;
    case State::kHandshake:
      break;
  }
  if (input_error_) return fail(input_error_);
  if (!ssl_) {
    const Status s = begin_server();
    if (s != Status::kOk) return s;
  }
  const int ret = role_ == Role::kServer ? wolfSSL_accept(ssl_.get()) : wolfSSL_connect(ssl_.get());
  if (ret == WOLFSSL_SUCCESS) {
    on_handshake_done();
    return Status::kOk;
  }
  if (wolfSSL_get_error(ssl_.get(), ret) == WOLFSSL_ERROR_WANT_READ) {
    return after_want_read("handshake");
  }
  return fail_wolf(ret);
}

void Session::on_handshake_done() {
  state_ = State::kOpen;
  char* name = nullptr;
  unsigned short size = 0;
  if (wolfSSL_ALPN_GetProtocol(ssl_.get(), &name, &size) == WOLFSSL_SUCCESS && name && size > 0) {
    alpn_ = std::string_view(name, size);
  }
  if (WOLFSSL_X509* peer = wolfSSL_get_peer_certificate(ssl_.get())) {
    char buf[512];
    if (wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(peer), buf, sizeof(buf))) {
      peer_subject_ = buf;
    }
    wolfSSL_X509_free(peer);  // a copy (KEEP_PEER_CERT + OPENSSL_EXTRA)
  }
  // The handshake's working arrays (randoms, pre-master secret, cookies:
  // ~5 KB) are not needed once it is done; an idle server connection should
  // not keep them. (Clients keep them: save() reads the session's secrets.)
  if (role_ == Role::kServer) wolfSSL_FreeArrays(ssl_.get());
}

Session::Status Session::read_some(uint8_t* buf, size_t cap, size_t* n) {
  *n = 0;
  if (state_ == State::kFailed) return Status::kError;
  if (state_ == State::kClosed) return Status::kClosed;
  if (input_error_) return fail(input_error_);
  if (state_ == State::kHandshake) {
    const Status s = handshake();
    if (s != Status::kOk) return s;
  }
  const int want = static_cast<int>(std::min(cap, size_t{INT_MAX}));
  const int ret = wolfSSL_read(ssl_.get(), buf, want);
  if (ret > 0) {
    *n = static_cast<size_t>(ret);
    return Status::kOk;
  }
  switch (wolfSSL_get_error(ssl_.get(), ret)) {
    case WOLFSSL_ERROR_WANT_READ:
      return after_want_read("connection");
    case WOLFSSL_ERROR_ZERO_RETURN:
      state_ = State::kClosed;
      close_notify_received_ = true;
      return Status::kClosed;
    default:
      return fail_wolf(ret);
  }
}

Session::Status Session::write(const uint8_t* data, size_t len) {
  if (state_ == State::kFailed) return Status::kError;
  if (EGW_BUG(!handshake_done(), "tls::Session::write before the handshake completed")) {
    return fail("write before the handshake completed");
  }
  if (close_sent_) return fail("write after close_notify");
  while (len > 0) {
    const int chunk = static_cast<int>(std::min(len, size_t{1} << 30));
    const int ret = wolfSSL_write(ssl_.get(), data, chunk);
    if (ret <= 0) return fail_wolf(ret);
    data += ret;
    len -= static_cast<size_t>(ret);
  }
  return Status::kOk;
}

void Session::close_notify() {
  if (!ssl_ || close_sent_ || !handshake_done()) return;
  close_sent_ = true;
  wolfSSL_shutdown(ssl_.get());  // sends the alert; does not wait for the peer's
}

std::shared_ptr<SavedSession> Session::save() const {
  if (role_ != Role::kClient || !ssl_ || !handshake_done()) return nullptr;
  WOLFSSL_SESSION* s = wolfSSL_get1_session(ssl_.get());
  if (!s) return nullptr;
  if (!wolfSSL_SESSION_has_ticket(s)) {
    wolfSSL_SESSION_free(s);
    return nullptr;
  }
  return std::shared_ptr<SavedSession>(new SavedSession(s));
}

std::string_view Session::version() const {
  if (!ssl_ || !handshake_done()) return {};
  const char* v = wolfSSL_get_version(ssl_.get());
  return v ? v : "";
}

std::string_view Session::cipher() const {
  if (!ssl_ || !handshake_done()) return {};
  const char* c = wolfSSL_get_cipher_name(ssl_.get());
  if (!c) return "";
  // wolfSSL's own names for TLS 1.3 ("TLS13-AES128-GCM-SHA256") are not
  // what anyone else says: OpenSSL (and so HAProxy's PROXY headers) uses the
  // RFC 8446 names there. Its TLS 1.2 names already are OpenSSL's.
  if (std::strncmp(c, "TLS13-", 6) == 0) {
    const int suite = wolfSSL_get_current_cipher_suite(ssl_.get());
    if (suite >= 0) {
      const char* iana = wolfSSL_get_cipher_name_iana_from_suite(
          static_cast<unsigned char>(suite >> 8), static_cast<unsigned char>(suite));
      if (iana && std::strncmp(iana, "TLS_", 4) == 0) return iana;
    }
  }
  return c;
}

bool Session::resumed() const {
  return ssl_ && handshake_done() && wolfSSL_session_reused(ssl_.get()) != 0;
}

const char* to_string(Session::Status s) {
  switch (s) {
    case Session::Status::kOk:
      return "ok";
    case Session::Status::kWantInput:
      return "want_input";
    case Session::Status::kClosed:
      return "closed";
    case Session::Status::kError:
      return "error";
  }
  return "?";
}

const char* to_string(Session::State s) {
  switch (s) {
    case Session::State::kHandshake:
      return "handshake";
    case Session::State::kOpen:
      return "open";
    case Session::State::kClosed:
      return "closed";
    case Session::State::kFailed:
      return "failed";
  }
  return "?";
}

}  // namespace egw::tls

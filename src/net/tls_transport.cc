#include "src/net/tls_transport.h"

#include <cstring>

namespace egw::net {

TlsTransport::TlsTransport(uring::EventLoop& loop, uring::StreamSocket& sock,
                           std::unique_ptr<tls::Session> session)
    : loop_(loop), sock_(sock), session_(std::move(session)), pending_(loop) {
  session_->set_output([this](const uint8_t* p, size_t n) { on_output(p, n); });
}

TlsTransport::~TlsTransport() {
  flush_node_unlink();
  pending_.clear();
  drop_chunks();
}

void TlsTransport::drop_chunks() {
  for (uring::Chunk** c : {&in_chunk_, &out_chunk_}) {
    if (!*c) continue;
    uring::IoBuf own;
    own.chunk = *c;
    loop_.release(own);
    *c = nullptr;
  }
}

uring::IoBuf TlsTransport::append(uring::Chunk*& c, const uint8_t* p, size_t n) {
  if (!c || c->used + n > uring::Chunk::kSize) {
    if (c) {
      uring::IoBuf own;
      own.chunk = c;
      loop_.release(own);
    }
    c = loop_.new_chunk();
    if (!c) return uring::IoBuf{};
  }
  std::memcpy(c->data + c->used, p, n);
  uring::IoBuf b = loop_.chunk_slice(c, c->used, static_cast<uint32_t>(n));
  c->used += static_cast<uint32_t>(n);
  return b;
}

uring::IoBuf TlsTransport::copy_in(const uint8_t* p, size_t n) {
  return append(in_chunk_, p, n);
}

void TlsTransport::on_output(const uint8_t* p, size_t n) {
  // Records are at most ~16.4 KiB; a chunk holds 32 KiB.
  while (n > 0) {
    const size_t take = n < uring::Chunk::kSize ? n : uring::Chunk::kSize;
    uring::IoBuf b = append(out_chunk_, p, take);
    if (!b.data) {
      failed_ = true;  // out of chunks: the connection cannot go on
      return;
    }
    if (!sock_.send(b)) loop_.release(b);
    p += take;
    n -= take;
  }
}

bool TlsTransport::send(const uring::IoBuf& b) {
  if (failed_ || session_->state() == tls::Session::State::kFailed) {
    loop_.release(b);
    return false;
  }
  if (b.len == 0) {
    loop_.release(b);
    return true;
  }
  pending_.push_back(b);
  loop_.schedule_flush(*this);
  return true;
}

void TlsTransport::flush() {
  if (pending_.empty()) return;
  // Small pieces are gathered into one record; a piece of a record's size
  // or more goes to wolfSSL as it is (it makes full records of it).
  uint8_t gather[tls::Session::kMaxPlaintext];
  size_t used = 0;
  bool ok = true;
  auto write = [&](const uint8_t* p, size_t n) {
    if (ok && session_->write(p, n) != tls::Session::Status::kOk) ok = false;
  };
  while (!pending_.empty()) {
    const uring::IoBuf b = pending_.take_front();
    if (used + b.len <= sizeof(gather)) {
      std::memcpy(gather + used, b.data, b.len);
      used += b.len;
    } else {
      if (used > 0) write(gather, used);
      used = 0;
      if (b.len < sizeof(gather)) {
        std::memcpy(gather, b.data, b.len);
        used = b.len;
      } else {
        write(b.data, b.len);
      }
    }
    loop_.release(b);
  }
  if (used > 0) write(gather, used);
  drop_chunks();
  if ((!ok || failed_) && on_failure_) {
    failed_ = true;
    on_failure_();
  }
}

}  // namespace egw::net

#include "src/tls/transport.h"

#include <cstring>

namespace egw::tls {

Transport::Transport(uring::EventLoop& loop, uring::StreamSocket& sock,
                     std::unique_ptr<Session> session)
    : loop_(loop), sock_(sock), session_(std::move(session)) {
  session_->set_output([this](const uint8_t* p, size_t n) { on_output(p, n); });
}

Transport::~Transport() {
  for (uring::Chunk* c : {in_chunk_, out_chunk_}) {
    if (!c) continue;
    uring::IoBuf own;
    own.chunk = c;
    loop_.release(own);
  }
}

uring::IoBuf Transport::append(uring::Chunk*& c, const uint8_t* p, size_t n) {
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

uring::IoBuf Transport::copy_in(const uint8_t* p, size_t n) {
  return append(in_chunk_, p, n);
}

void Transport::on_output(const uint8_t* p, size_t n) {
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

bool Transport::send(const uring::IoBuf& b) {
  const Session::Status s = session_->write(b.data, b.len);
  loop_.release(b);
  return s == Session::Status::kOk && !failed_;
}

}  // namespace egw::tls

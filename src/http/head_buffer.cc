#include "src/http/head_buffer.h"

#include <cstring>

namespace egw::http {

std::string_view HeadBuffer::gather(uring::IoQueue& in, bool* full) {
  *full = false;
  if (!chunk_) {
    if (in.empty()) return {};
    if (in.size() == 1) {
      const uring::IoBuf& f = in.front();
      return {reinterpret_cast<const char*>(f.data), f.len};
    }
    chunk_ = loop_.new_chunk();
    if (!chunk_) return {};
  }
  while (!in.empty() && chunk_->used < uring::Chunk::kSize) {
    const uring::IoBuf& f = in.front();
    const uint32_t room = uring::Chunk::kSize - chunk_->used;
    const uint32_t n = f.len < room ? f.len : room;
    std::memcpy(chunk_->data + chunk_->used, f.data, n);
    chunk_->used += n;
    in.drop(n);
  }
  *full = chunk_->used == uring::Chunk::kSize;
  return {reinterpret_cast<const char*>(chunk_->data), chunk_->used};
}

uring::IoBuf HeadBuffer::finish(uring::IoQueue& in, size_t head_size) {
  const auto n = static_cast<uint32_t>(head_size);
  if (!chunk_) {
    uring::IoBuf head = loop_.share(in.front(), 0, n);
    in.drop(n);
    return head;
  }
  uring::IoBuf head = loop_.chunk_slice(chunk_, 0, n);
  if (chunk_->used > n) in.push_front(loop_.chunk_slice(chunk_, n, chunk_->used - n));
  reset();
  return head;
}

void HeadBuffer::reset() {
  if (!chunk_) return;
  uring::IoBuf own;
  own.chunk = chunk_;
  loop_.release(own);
  chunk_ = nullptr;
}

}  // namespace egw::http

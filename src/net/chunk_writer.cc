#include "src/net/chunk_writer.h"

#include <algorithm>
#include <cstring>

namespace egw::net {

bool ChunkWriter::write(const uint8_t* data, size_t len) {
  while (len > 0) {
    if (chunk_ && used_ == uring::Chunk::kSize) release();
    if (!chunk_) {
      chunk_ = loop_.take_write_chunk(&used_);
      start_ = used_;
      if (!chunk_) return false;
    }
    const auto n = static_cast<uint32_t>(std::min<size_t>(len, uring::Chunk::kSize - used_));
    std::memcpy(chunk_->data + used_, data, n);
    used_ += n;
    data += n;
    len -= n;
  }
  return true;
}

void ChunkWriter::flush() {
  if (!chunk_ || used_ == start_) return;
  to_.send(loop_.chunk_slice(chunk_, start_, used_ - start_));
  start_ = used_;
}

void ChunkWriter::release() {
  flush();
  drop();
}

void ChunkWriter::drop() {
  if (!chunk_) return;
  loop_.give_back_write_chunk(chunk_, used_);
  chunk_ = nullptr;
}

}  // namespace egw::net

// ChunkWriter: the small bytes a codec produces (HTTP/2 frame headers, HPACK
// blocks, SETTINGS...) copied into worker chunks and handed to a ByteStream
// as slices, so that many frames of one flush leave in one send. Bulk body
// bytes never go through it: they are sent as the IoBufs they arrived in.
// A released chunk's room goes back to the loop for the next writer
// (EventLoop::take_write_chunk), so writers that each send a few bytes share
// chunks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "src/net/byte_stream.h"
#include "uring/event_loop.h"

namespace egw::net {

class ChunkWriter {
 public:
  ChunkWriter(uring::EventLoop& loop, ByteStream& to) : loop_(loop), to_(to) {}
  ~ChunkWriter() { drop(); }
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Copies `len` bytes. False when no chunk could be had (out of memory):
  // the bytes are lost and the connection cannot go on.
  bool write(const uint8_t* data, size_t len);
  // Hands what was written since the last flush to the stream.
  void flush();
  // Flushes, then lets go of the chunk (the stream's queue keeps what it
  // still has to send): an idle connection holds none.
  void release();

 private:
  void drop();

  uring::EventLoop& loop_;
  ByteStream& to_;
  uring::Chunk* chunk_ = nullptr;
  uint32_t start_ = 0, used_ = 0;
};

}  // namespace egw::net

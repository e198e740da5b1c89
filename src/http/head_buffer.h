// HeadBuffer: presents the head of an HTTP/1.1 message to a parser that
// needs it contiguous. While the head lies in the first receive buffer it is
// parsed in place (no copy); once it spans buffers, the bytes so far are
// copied into a worker chunk and parsing continues there (the parser
// tolerates the relocation).
#pragma once

#include <string_view>

#include "uring/event_loop.h"
#include "uring/io_queue.h"

namespace egw::http {

class HeadBuffer {
 public:
  explicit HeadBuffer(uring::EventLoop& loop) : loop_(loop) {}
  HeadBuffer(const HeadBuffer&) = delete;
  HeadBuffer& operator=(const HeadBuffer&) = delete;
  ~HeadBuffer() { reset(); }

  // The head bytes received so far, starting at the message's first byte.
  // Consumes from `in` what it copies. `*full` is set when the chunk holds
  // Chunk::kSize bytes (a parser limit below that must already have failed).
  // An empty view with !*full means: out of chunks (answer 503).
  std::string_view gather(uring::IoQueue& in, bool* full);

  // The parser found the head's end at `head_size`: returns an IoBuf that
  // keeps the head's memory alive (release it once the parsed views are no
  // longer used) and puts whatever followed the head back at the front of
  // `in`.
  uring::IoBuf finish(uring::IoQueue& in, size_t head_size);

  void reset();
  bool copying() const { return chunk_ != nullptr; }

 private:
  uring::EventLoop& loop_;
  uring::Chunk* chunk_ = nullptr;
};

}  // namespace egw::http

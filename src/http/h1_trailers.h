// HTTP/1.1 trailer sections between the wire and the neutral form: the
// validated trailer bytes a BodyDecoder hands out (possibly split across
// receive buffers, possibly mid-line) collected and split into fields, and
// fields written back as the end of a chunked body. Trailers are rare, so the
// collector holds nothing until the first trailer byte (then one worker
// chunk, given back once delivered).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "proto/http/message.h"
#include "uring/event_loop.h"

namespace egw::http {

// Most trailer fields one message may carry (more: the message is refused).
inline constexpr size_t kMaxTrailerFields = 64;

class TrailerCollector {
 public:
  TrailerCollector() = default;
  TrailerCollector(const TrailerCollector&) = delete;
  TrailerCollector& operator=(const TrailerCollector&) = delete;
  ~TrailerCollector() { reset(); }

  // False when out of memory or over proto::h1::kMaxTrailerBytes.
  bool append(uring::EventLoop& loop, std::string_view bytes);
  bool empty() const { return chunk_ == nullptr; }
  // Splits what was collected into fields and calls f(span<const Field>)
  // (an empty span when nothing was collected); then forgets it. False
  // (f not called) when there are more than kMaxTrailerFields.
  template <class F>
  bool deliver(F&& f) {
    proto::http::Field fields[kMaxTrailerFields];
    const size_t n = split(fields);
    if (n > kMaxTrailerFields) {
      reset();
      return false;
    }
    f(std::span<const proto::http::Field>(fields, n));
    reset();
    return true;
  }
  void reset();

 private:
  // Field count, or kMaxTrailerFields + 1 when they do not fit.
  size_t split(proto::http::Field* out) const;

  uring::EventLoop* loop_ = nullptr;  // while chunk_ is held
  uring::Chunk* chunk_ = nullptr;
};

// The end of a chunked body: the last chunk, `trailers`, the final CRLF.
// A static buffer when there are no trailers; a scratch or chunk buffer
// otherwise. data is null when memory ran out or a field is not valid
// HTTP/1.1.
uring::IoBuf encode_last_chunk(uring::EventLoop& loop,
                               std::span<const proto::http::Field> trailers);

}  // namespace egw::http

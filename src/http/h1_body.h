// One step of an HTTP/1.1 body decoder over the front of a receive queue:
// the loop both HTTP/1.1 codecs run (H1Session over request bodies,
// upstream::HttpConnection over response bodies). Body bytes come out as
// shared slices of the receive buffers (never copied), trailer bytes go to
// the collector, and what the decoder consumed leaves the queue.
#pragma once

#include "proto/h1/body.h"
#include "src/http/h1_trailers.h"
#include "uring/event_loop.h"
#include "uring/io_queue.h"

namespace egw::http {

struct BodyStep {
  enum class Kind : uint8_t {
    kData,              // `data` (owned by the caller) is the next piece of the body
    kProgress,          // framing or trailer bytes were consumed: call again
    kNeedMore,          // the queue is empty and the body is not over
    kDone,              // the body (and its trailers) ended; what follows stays queued
    kError,             // the framing is broken: the decoder's error() says how
    kTrailersTooLarge,  // the trailers went past their limit (or memory ran out)
  };
  Kind kind = Kind::kNeedMore;
  uring::IoBuf data;
};

BodyStep next_body_step(uring::EventLoop& loop, proto::h1::BodyDecoder& decoder, uring::IoQueue& in,
                        TrailerCollector& trailers);

}  // namespace egw::http

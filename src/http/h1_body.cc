#include "src/http/h1_body.h"

namespace egw::http {

namespace h1 = proto::h1;

BodyStep next_body_step(uring::EventLoop& loop, h1::BodyDecoder& decoder, uring::IoQueue& in,
                        TrailerCollector& trailers) {
  using Kind = BodyStep::Kind;
  if (in.empty()) {
    // A body that ended exactly at a buffer's end is seen as done on an
    // empty feed.
    const auto step = decoder.feed({});
    return {step.kind == h1::BodyDecoder::Step::kDone ? Kind::kDone : Kind::kNeedMore, {}};
  }
  const uring::IoBuf& f = in.front();
  const auto step = decoder.feed({reinterpret_cast<const char*>(f.data), f.len});
  switch (step.kind) {
    case h1::BodyDecoder::Step::kData: {
      const auto off =
          static_cast<uint32_t>(reinterpret_cast<const uint8_t*>(step.data.data()) - f.data);
      BodyStep out{Kind::kData, loop.share(f, off, static_cast<uint32_t>(step.data.size()))};
      in.drop(step.consumed);
      return out;
    }
    case h1::BodyDecoder::Step::kTrailer: {
      const bool kept = trailers.append(loop, step.data);
      in.drop(step.consumed);
      return {kept ? Kind::kProgress : Kind::kTrailersTooLarge, {}};
    }
    case h1::BodyDecoder::Step::kNeedMore:
      in.drop(step.consumed);
      return {Kind::kProgress, {}};
    case h1::BodyDecoder::Step::kDone:
      in.drop(step.consumed);
      return {Kind::kDone, {}};
    case h1::BodyDecoder::Step::kError:
      return {Kind::kError, {}};
  }
  return {Kind::kError, {}};
}

}  // namespace egw::http

#include "src/http/h1_trailers.h"

#include <algorithm>

#include "proto/h1/body.h"
#include "proto/h1/encoder.h"

namespace egw::http {

namespace h1 = proto::h1;

bool TrailerCollector::append(uring::EventLoop& loop, std::string_view bytes) {
  if (!chunk_) {
    chunk_ = loop.new_chunk();
    if (!chunk_) return false;
    chunk_->used = 0;
    loop_ = &loop;
  }
  if (chunk_->used + bytes.size() > h1::kMaxTrailerBytes) return false;
  std::copy(bytes.begin(), bytes.end(), chunk_->data + chunk_->used);
  chunk_->used += static_cast<uint32_t>(bytes.size());
  return true;
}

void TrailerCollector::reset() {
  if (!chunk_) return;
  uring::IoBuf own;
  own.chunk = chunk_;
  loop_->release(own);
  chunk_ = nullptr;
  loop_ = nullptr;
}

size_t TrailerCollector::split(proto::http::Field* out) const {
  if (!chunk_) return 0;
  // Validated field lines, each "name:" OWS value OWS CRLF.
  std::string_view rest(reinterpret_cast<const char*>(chunk_->data), chunk_->used);
  size_t n = 0;
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
      value.remove_suffix(1);
    if (n == kMaxTrailerFields) return kMaxTrailerFields + 1;
    out[n++] = {line.substr(0, colon), value};
  }
  return n;
}

uring::IoBuf encode_last_chunk(uring::EventLoop& loop,
                               std::span<const proto::http::Field> trailers) {
  uring::IoBuf b;
  if (trailers.empty()) {
    b.data = reinterpret_cast<const uint8_t*>(h1::kLastChunkNoTrailers.data());
    b.len = static_cast<uint32_t>(h1::kLastChunkNoTrailers.size());
    return b;
  }
  size_t need = h1::kLastChunk.size() + 2;
  for (const auto& f : trailers)
    need += f.name.size() + f.value.size() + 4;
  if (need <= 4096) {
    b = loop.scratch(static_cast<uint32_t>(need));
  } else if (need <= uring::Chunk::kSize) {
    if (uring::Chunk* c = loop.new_chunk()) {
      b = loop.chunk_slice(c, 0, static_cast<uint32_t>(need));
      uring::IoBuf own;
      own.chunk = c;
      loop.release(own);
    }
  }
  if (!b.data) return {};
  char* out = reinterpret_cast<char*>(const_cast<uint8_t*>(b.data));
  std::copy(h1::kLastChunk.begin(), h1::kLastChunk.end(), out);
  h1::HeadWriter w(out + h1::kLastChunk.size(), need - h1::kLastChunk.size());
  for (const auto& f : trailers)
    w.header(f.name, f.value);
  if (!w.end()) {
    loop.release(b);
    return {};
  }
  b.len = static_cast<uint32_t>(h1::kLastChunk.size() + w.size());
  return b;
}

}  // namespace egw::http

// Byte views: non-owning views of contiguous bytes, and conversions to and
// from std::string_view (HTTP is bytes; most of our code reads it as text).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace egw {

using Bytes = std::span<const uint8_t>;
using MutableBytes = std::span<uint8_t>;

inline std::string_view as_text(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace egw

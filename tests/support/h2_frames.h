// Raw HTTP/2 frames for the codec tests: build, parse, HPACK-encode.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace egw::proto::h2 {

inline constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

inline std::string frame(uint8_t type, uint8_t flags, uint32_t id, std::string_view payload = {}) {
  std::string f;
  const auto n = static_cast<uint32_t>(payload.size());
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  for (int s = 24; s >= 0; s -= 8)
    f += static_cast<char>((id >> s) & 0xff);
  f.append(payload);
  return f;
}

inline std::string u32(uint32_t v) {
  std::string s;
  for (int i = 24; i >= 0; i -= 8)
    s += static_cast<char>((v >> i) & 0xff);
  return s;
}

struct Frame {
  uint8_t type, flags;
  uint32_t id;
  std::string payload;
};

inline std::vector<Frame> parse(std::string_view b) {
  std::vector<Frame> out;
  while (b.size() >= 9) {
    const uint32_t n = (uint8_t(b[0]) << 16) | (uint8_t(b[1]) << 8) | uint8_t(b[2]);
    if (b.size() < 9 + n) break;
    uint32_t id = 0;
    for (int i = 5; i < 9; ++i)
      id = (id << 8) | uint8_t(b[i]);
    out.push_back({uint8_t(b[3]), uint8_t(b[4]), id & 0x7fffffff, std::string(b.substr(9, n))});
    b.remove_prefix(9 + n);
  }
  return out;
}

class Hpack {
 public:
  Hpack() { nghttp2_hd_deflate_new(&d_, 4096); }
  ~Hpack() { nghttp2_hd_deflate_del(d_); }
  std::string encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : fields) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(d_, nv.data(), nv.size()), '\0');
    const auto n = nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                         nv.data(), nv.size());
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

}  // namespace egw::proto::h2

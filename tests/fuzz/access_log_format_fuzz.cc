// libFuzzer target for access log formats: the template compiler and the
// line writer.
//
// Input: a format spec, then (after the first NUL) bytes that fill the
// record's client-controlled strings. Invariants (a failure traps):
//   - compile() decides, with a message when it refuses;
//   - a line that fits is exactly one line: it ends with '\n' and holds no
//     other newline or control byte (field values are escaped to printable
//     ASCII; only a template's own text may carry bytes above 0x7e);
//   - a JSON line has balanced quotes outside escapes;
//   - the same record written into less room than its length is refused
//     (0), and a refusal at some room means the line is longer than it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "src/accesslog/format.h"
#include "tests/fuzz/fuzz_util.h"

using namespace egw::accesslog;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view spec = in.substr(0, nul);
  const std::string_view rest =
      nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  Format f;
  std::string err;
  if (!Format::compile(spec, f, err)) {
    FUZZ_CHECK(!err.empty());
    // The fixed formats always compile; fuzz them with the bytes as well.
    FUZZ_CHECK(Format::compile(rest.size() % 2 ? "json" : "combined", f, err));
  }
  const auto client = *egw::SocketAddress::parse("[2001:db8::1]:443");
  Record r;
  r.time_ns = 1796320907123456789ull + static_cast<uint64_t>(size) * 1'000'000'007ull;
  r.client = &client;
  const size_t third = rest.size() / 3;
  r.method = rest.substr(0, third);
  r.path = rest.substr(third, third);
  r.user_agent = rest.substr(2 * third);
  r.status = static_cast<uint16_t>(size * 7 % 600);
  r.bytes_out = size * 1000003ull;
  r.phase_us[2] = static_cast<int64_t>(size) - 5;
  static char buf[1 << 17];
  const size_t n = f.append(r, buf, sizeof(buf));
  if (n == 0) return 0;  // longer than 128 KiB: nothing to check
  FUZZ_CHECK(buf[n - 1] == '\n');
  bool in_string = false, escaped = false;
  for (size_t i = 0; i + 1 < n; ++i) {
    const auto c = static_cast<unsigned char>(buf[i]);
    FUZZ_CHECK(c >= 0x20 && c != 0x7f);
    if (f.kind() == Format::Kind::kJson) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        FUZZ_CHECK(in_string);
        escaped = true;
      } else if (c == '"') {
        in_string = !in_string;
      }
    }
  }
  FUZZ_CHECK(!in_string && !escaped);
  FUZZ_CHECK(f.append(r, buf, n - 1) == 0);
  FUZZ_CHECK(f.append(r, buf, n) == n);
  return 0;
}

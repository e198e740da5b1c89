// libFuzzer target for the admin API's command parser.
//
// Input: one line as a client might send it. Invariants (a failure traps):
//   - it never crashes and always decides: a command, or a non-empty message;
//   - a parsed command's text is its words joined by single spaces, and
//     parsing that text again gives the same command;
//   - only printable ASCII, spaces and tabs (and one final CR) are taken;
//   - numbers are within their bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/server/admin_command.h"
#include "tests/fuzz/fuzz_util.h"

using namespace egw::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto c = parse_admin_command(line);
  if (!c) {
    FUZZ_CHECK(!c.error.empty());
    return 0;
  }
  FUZZ_CHECK(size <= kMaxAdminLine);
  for (size_t i = 0; i < size; ++i) {
    const unsigned char b = data[i];
    const bool last_cr = b == '\r' && i + 1 == size;
    FUZZ_CHECK((b >= 0x21 && b <= 0x7e) || b == ' ' || b == '\t' || last_cr);
  }
  FUZZ_CHECK(!c->text.empty() && c->text.front() != ' ' && c->text.back() != ' ');
  FUZZ_CHECK(c->text.find("  ") == std::string::npos);
  auto again = parse_admin_command(c->text);
  FUZZ_CHECK(again.command.has_value());
  FUZZ_CHECK(again->kind == c->kind && again->cluster == c->cluster &&
             again->address == c->address && again->state == c->state && again->value == c->value &&
             again->scope == c->scope && again->name == c->name && again->verbose == c->verbose &&
             again->limit == c->limit && again->text == c->text);
  if (c->kind == AdminCommand::Kind::kSetEndpointWeight && c->value)
    FUZZ_CHECK(*c->value <= kMaxAdminWeight);
  if (c->value) FUZZ_CHECK(*c->value <= kMaxAdminMaxconn);
  FUZZ_CHECK(c->limit >= 1 && c->limit <= kMaxVerboseSessions);
  return 0;
}

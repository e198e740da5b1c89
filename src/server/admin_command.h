// The admin API's command language: one command per line, words separated
// by spaces or tabs, printable ASCII only, at most kMaxAdminLine bytes.
// parse_admin_command() is pure (no I/O, no state): it turns a line into an
// AdminCommand or a message that says what is wrong and what was expected.
//
//   help
//   show info
//   show stats
//   show endpoints [CLUSTER]
//   show latency [listener NAME | cluster NAME]
//   show sessions [verbose [N]]
//   set endpoint CLUSTER ADDRESS state ready|drain|maint
//   set endpoint CLUSTER ADDRESS weight N|default
//   set endpoint CLUSTER ADDRESS maxconn N|default
//   set cluster CLUSTER maxconn N|default
//   reload
//   reopen logs
//   upgrade
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "src/upstream/admin_state.h"

namespace egw::server {

inline constexpr size_t kMaxAdminLine = 4096;
// `show sessions verbose` lists at most this many (and 100 unless told).
inline constexpr uint32_t kMaxVerboseSessions = 10000;
// The largest weight and maxconn the admin API takes (as the file does).
inline constexpr uint32_t kMaxAdminWeight = 256;
inline constexpr uint32_t kMaxAdminMaxconn = 10000000;

struct AdminCommand {
  enum class Kind : uint8_t {
    kHelp,
    kShowInfo,
    kShowStats,
    kShowEndpoints,
    kShowLatency,
    kShowSessions,
    kSetEndpointState,
    kSetEndpointWeight,
    kSetEndpointMaxconn,
    kSetClusterMaxconn,
    kReload,
    kReopenLogs,
    kUpgrade,
  };
  Kind kind = Kind::kHelp;
  std::string cluster;  // set endpoint, set cluster, show endpoints (filter; "" = all)
  std::string address;  // set endpoint: as written in the file ("127.0.0.1:8080")
  upstream::AdminState state = upstream::AdminState::kReady;
  std::optional<uint32_t> value;  // weight / maxconn; nullopt: back to the file's
  // show latency: "listener", "cluster" or "" (all), and the name.
  std::string scope, name;
  bool verbose = false;  // show sessions verbose
  uint32_t limit = 100;  // ... at most this many
  std::string text;      // the command as parsed, words joined by one space
};

// The command, or (no value) the reason in `error`. (No std::expected here:
// the fuzz target builds this file with clang 14, whose libstdc++ headers
// lack it.)
struct AdminParse {
  std::optional<AdminCommand> command;
  std::string error;
  explicit operator bool() const { return command.has_value(); }
  const AdminCommand& operator*() const { return *command; }
  const AdminCommand* operator->() const { return &*command; }
};
AdminParse parse_admin_command(std::string_view line);

// One line per command, for `help` and for errors.
std::string_view admin_usage();

}  // namespace egw::server

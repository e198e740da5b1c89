// expressgateway ctl: the admin API's command-line client.
//
//   expressgateway ctl [--socket PATH | -c CONFIG] [--json] [--timeout S] COMMAND...
//
// Sends COMMAND (its words joined by spaces) as one line, reads the one
// reply line and prints it: as tables and "key: value" lines for people,
// or the JSON as it came with --json (for scripts). The socket is PATH, or
// CONFIG's [admin] socket, or /run/expressgateway/admin.sock.
//
// Exit status: 0 the command succeeded, 1 the gateway answered with an
// error, 2 bad usage, 3 no answer (cannot connect, timeout, a reply that is
// not JSON).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace egw::ctl {

inline constexpr const char* kDefaultSocket = "/run/expressgateway/admin.sock";

int main(int argc, char** argv);

// The reply as people read it (pure: for the tests).
std::string render(const nlohmann::ordered_json& reply);

}  // namespace egw::ctl

#include "src/server/admin_command.h"

#include <fmt/format.h>

#include <charconv>
#include <vector>

namespace egw::server {

namespace {

constexpr std::string_view kUsage =
    "help\n"
    "show info\n"
    "show stats\n"
    "show endpoints [CLUSTER]\n"
    "show latency [listener NAME | cluster NAME]\n"
    "show sessions [verbose [N]]\n"
    "set endpoint CLUSTER ADDRESS state ready|drain|maint\n"
    "set endpoint CLUSTER ADDRESS weight N|default\n"
    "set endpoint CLUSTER ADDRESS maxconn N|default\n"
    "set cluster CLUSTER maxconn N|default\n"
    "reload\n"
    "reopen logs\n"
    "upgrade\n";

AdminParse fail(std::string msg) {
  return AdminParse{std::nullopt, std::move(msg)};
}

// A decimal number in [0, max]: digits only, no sign, no leading zeros.
std::optional<uint32_t> number(std::string_view w, uint32_t max) {
  if (w.empty() || w.size() > 10 || (w.size() > 1 && w[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
  if (ec != std::errc{} || end != w.data() + w.size() || v > max) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// "N" or "default" (`out` nullopt: back to the file's value); false with
// `error` otherwise.
bool value(std::string_view what, std::string_view w, uint32_t max, std::optional<uint32_t>& out,
           std::string& error) {
  if (w == "default") {
    out.reset();
    return true;
  }
  if (auto n = number(w, max)) {
    out = *n;
    return true;
  }
  error = fmt::format("{} '{}' is not a number from 0 to {} or 'default'", what, w, max);
  return false;
}

AdminParse done(AdminCommand& cmd) {
  return AdminParse{std::move(cmd), {}};
}

}  // namespace

std::string_view admin_usage() {
  return kUsage;
}

AdminParse parse_admin_command(std::string_view line) {
  if (line.size() > kMaxAdminLine)
    return fail(fmt::format("command longer than {} bytes", kMaxAdminLine));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> w;
  size_t i = 0;
  while (i < line.size()) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == ' ' || c == '\t') {
      ++i;
      continue;
    }
    if (c < 0x21 || c > 0x7e)
      return fail(
          fmt::format("byte 0x{:02x} at column {}: only printable ASCII is taken", c, i + 1));
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
      const unsigned char d = static_cast<unsigned char>(line[i]);
      if (d < 0x21 || d > 0x7e)
        return fail(
            fmt::format("byte 0x{:02x} at column {}: only printable ASCII is taken", d, i + 1));
      ++i;
    }
    w.push_back(line.substr(start, i - start));
  }
  if (w.empty()) return fail("empty command (try 'help')");

  AdminCommand cmd;
  for (size_t k = 0; k < w.size(); ++k) {
    if (k) cmd.text += ' ';
    cmd.text += w[k];
  }
  auto unknown = [&] {
    return fail(fmt::format("unknown command '{}'; the commands are:\n{}", cmd.text,
                            kUsage.substr(0, kUsage.size() - 1)));
  };
  auto usage_error = [&](std::string_view usage) {
    return fail(fmt::format("'{}': usage: {}", cmd.text, usage));
  };

  if (w[0] == "help") {
    if (w.size() != 1) return usage_error("help");
    cmd.kind = AdminCommand::Kind::kHelp;
    return done(cmd);
  }
  if (w[0] == "reload") {
    if (w.size() != 1) return usage_error("reload");
    cmd.kind = AdminCommand::Kind::kReload;
    return done(cmd);
  }
  if (w[0] == "upgrade") {
    if (w.size() != 1) return usage_error("upgrade");
    cmd.kind = AdminCommand::Kind::kUpgrade;
    return done(cmd);
  }
  if (w[0] == "reopen") {
    if (w.size() != 2 || w[1] != "logs") return usage_error("reopen logs");
    cmd.kind = AdminCommand::Kind::kReopenLogs;
    return done(cmd);
  }
  if (w[0] == "show") {
    if (w.size() < 2) return usage_error("show info|stats|endpoints|latency|sessions");
    if (w[1] == "info" || w[1] == "stats") {
      if (w.size() != 2) return usage_error(w[1] == "info" ? "show info" : "show stats");
      cmd.kind = w[1] == "info" ? AdminCommand::Kind::kShowInfo : AdminCommand::Kind::kShowStats;
      return done(cmd);
    }
    if (w[1] == "endpoints") {
      if (w.size() > 3) return usage_error("show endpoints [CLUSTER]");
      cmd.kind = AdminCommand::Kind::kShowEndpoints;
      if (w.size() == 3) cmd.cluster = w[2];
      return done(cmd);
    }
    if (w[1] == "latency") {
      cmd.kind = AdminCommand::Kind::kShowLatency;
      if (w.size() == 2) return done(cmd);
      if (w.size() != 4 || (w[2] != "listener" && w[2] != "cluster"))
        return usage_error("show latency [listener NAME | cluster NAME]");
      cmd.scope = w[2];
      cmd.name = w[3];
      return done(cmd);
    }
    if (w[1] == "sessions") {
      cmd.kind = AdminCommand::Kind::kShowSessions;
      if (w.size() == 2) return done(cmd);
      if (w[2] != "verbose" || w.size() > 4) return usage_error("show sessions [verbose [N]]");
      cmd.verbose = true;
      if (w.size() == 4) {
        auto n = number(w[3], kMaxVerboseSessions);
        if (!n || *n == 0)
          return fail(fmt::format("show sessions verbose: '{}' is not a number from 1 to {}", w[3],
                                  kMaxVerboseSessions));
        cmd.limit = *n;
      }
      return done(cmd);
    }
    return unknown();
  }
  if (w[0] == "set") {
    if (w.size() >= 2 && w[1] == "cluster") {
      if (w.size() != 5 || w[3] != "maxconn")
        return usage_error("set cluster CLUSTER maxconn N|default");
      std::string e;
      if (!value("maxconn", w[4], kMaxAdminMaxconn, cmd.value, e)) return fail(e);
      cmd.kind = AdminCommand::Kind::kSetClusterMaxconn;
      cmd.cluster = w[2];
      return done(cmd);
    }
    if (w.size() >= 2 && w[1] == "endpoint") {
      constexpr std::string_view kSetEndpoint =
          "set endpoint CLUSTER ADDRESS state ready|drain|maint | weight N|default | maxconn "
          "N|default";
      if (w.size() != 6) return usage_error(kSetEndpoint);
      cmd.cluster = w[2];
      cmd.address = w[3];
      if (w[4] == "state") {
        auto s = upstream::parse_admin_state(w[5]);
        if (!s) return fail(fmt::format("state '{}' is not one of ready, drain, maint", w[5]));
        cmd.kind = AdminCommand::Kind::kSetEndpointState;
        cmd.state = *s;
        return done(cmd);
      }
      if (w[4] == "weight" || w[4] == "maxconn") {
        const bool weight = w[4] == "weight";
        std::string e;
        if (!value(w[4], w[5], weight ? kMaxAdminWeight : kMaxAdminMaxconn, cmd.value, e))
          return fail(e);
        cmd.kind = weight ? AdminCommand::Kind::kSetEndpointWeight
                          : AdminCommand::Kind::kSetEndpointMaxconn;
        return done(cmd);
      }
      return usage_error(kSetEndpoint);
    }
    return usage_error("set endpoint ... | set cluster ...");
  }
  return unknown();
}

}  // namespace egw::server

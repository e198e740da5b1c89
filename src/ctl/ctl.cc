#include "src/ctl/ctl.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "egw/unique_fd.h"
#include "src/config/loader.h"

namespace egw::ctl {

namespace {

using json = nlohmann::ordered_json;

constexpr int kExitOk = 0, kExitError = 1, kExitUsage = 2, kExitNoAnswer = 3;

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_null()) return "-";
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v)
      out += (out.empty() ? "" : ", ") + cell(e);
    return out;
  }
  return v.dump();
}

bool scalar(const json& v) {
  return v.is_primitive();
}

bool flat_object(const json& v) {
  if (!v.is_object()) return false;
  for (const auto& [k, e] : v.items())
    if (!scalar(e)) return false;
  return true;
}

bool array_of_objects(const json& v) {
  return v.is_array() && !v.empty() && v.front().is_object();
}

// Rows to columns: scalars, and one level of flat objects (a column per
// member, named by the member where that is unambiguous). Deeper structure
// and arrays of objects are left to --json and to sub-tables.
void table(std::string& out, const json& rows, const std::string& indent) {
  struct Column {
    std::string header;
    std::string key, member;  // member empty: row[key] itself
  };
  std::vector<Column> cols;
  auto has = [&](const std::string& key, const std::string& member) {
    for (const auto& c : cols)
      if (c.key == key && c.member == member) return true;
    return false;
  };
  for (const auto& row : rows) {
    for (const auto& [k, v] : row.items()) {
      if (scalar(v) || (v.is_array() && !array_of_objects(v))) {
        if (!has(k, "")) cols.push_back({k, k, ""});
      } else if (flat_object(v)) {
        for (const auto& [m, e] : v.items())
          if (!has(k, m)) cols.push_back({m, k, m});
      }
    }
  }
  // A member named like another column is shown by its full name.
  for (auto& c : cols) {
    if (c.member.empty()) continue;
    int same = 0;
    for (const auto& d : cols)
      same += d.header == c.header ? 1 : 0;
    if (same > 1) c.header = c.key + "." + c.member;
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width(cols.size());
  std::vector<bool> numeric(cols.size(), true);
  for (size_t i = 0; i < cols.size(); ++i)
    width[i] = cols[i].header.size();
  for (const auto& row : rows) {
    auto& line = cells.emplace_back();
    for (size_t i = 0; i < cols.size(); ++i) {
      const json* v = nullptr;
      if (row.contains(cols[i].key)) {
        v = &row[cols[i].key];
        if (!cols[i].member.empty())
          v = v->contains(cols[i].member) ? &(*v)[cols[i].member] : nullptr;
      }
      line.push_back(v ? cell(*v) : "");
      if (v && !v->is_number()) numeric[i] = false;
      width[i] = std::max(width[i], line.back().size());
    }
  }
  auto emit = [&](const std::vector<std::string>& line) {
    std::string l = indent;
    for (size_t i = 0; i < line.size(); ++i) {
      const size_t pad = width[i] - line[i].size();
      if (i) l += "  ";
      if (numeric[i]) l.append(pad, ' ');
      l += line[i];
      if (!numeric[i] && i + 1 < line.size()) l.append(pad, ' ');
    }
    while (!l.empty() && l.back() == ' ')
      l.pop_back();
    out += l + "\n";
  };
  std::vector<std::string> headers;
  for (const auto& c : cols)
    headers.push_back(c.header);
  emit(headers);
  for (const auto& line : cells)
    emit(line);
}

void object(std::string& out, const json& obj, const std::string& indent);

void section(std::string& out, const std::string& key, const json& v, const std::string& indent) {
  // Rows that carry their own rows (show latency: a listener's phases) are
  // shown one by one, each with its sub-table.
  bool nested = false;
  for (const auto& row : v)
    for (const auto& [k, e] : row.items())
      nested = nested || array_of_objects(e);
  if (!nested) {
    out += fmt::format("{}{}:\n", indent, key);
    table(out, v, indent + "  ");
    return;
  }
  for (const auto& row : v) {
    out += fmt::format("{}{} {}:\n", indent, key, row.contains("name") ? cell(row["name"]) : "");
    for (const auto& [k, e] : row.items()) {
      if (k == "name") continue;
      if (array_of_objects(e)) {
        table(out, e, indent + "  ");
      } else if (scalar(e)) {
        out += fmt::format("{}  {}: {}\n", indent, k, cell(e));
      }
    }
  }
}

void object(std::string& out, const json& obj, const std::string& indent) {
  size_t w = 0;
  for (const auto& [k, v] : obj.items())
    if (scalar(v) || (v.is_array() && !array_of_objects(v))) w = std::max(w, k.size());
  // Scalars first (aligned), then nested objects, then tables.
  for (const auto& [k, v] : obj.items()) {
    if (k == "ok" || k == "command") continue;
    if (scalar(v) || (v.is_array() && v.empty())) {
      out += fmt::format("{}{:<{}}  {}\n", indent, k + ":", w + 1, cell(v));
    } else if (v.is_array() && !array_of_objects(v)) {
      if (v.size() > 4) {
        out += fmt::format("{}{}:\n", indent, k);
        for (const auto& e : v)
          out += fmt::format("{}  {}\n", indent, cell(e));
      } else {
        out += fmt::format("{}{:<{}}  {}\n", indent, k + ":", w + 1, cell(v));
      }
    }
  }
  for (const auto& [k, v] : obj.items()) {
    if (!v.is_object()) continue;
    out += fmt::format("{}{}:\n", indent, k);
    object(out, v, indent + "  ");
  }
  for (const auto& [k, v] : obj.items()) {
    if (!array_of_objects(v)) continue;
    section(out, k, v, indent);
  }
}

// Connects, sends `line`, reads one reply line within `timeout_ms`.
bool exchange(const std::string& path, const std::string& line, int timeout_ms, std::string& reply,
              std::string& why) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    why = fmt::format("socket path too long: {}", path);
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    why = fmt::format("cannot connect to {}: {}", path, std::strerror(errno));
    return false;
  }
  const std::string out = line + "\n";
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      why = fmt::format("send to {}: {}", path, std::strerror(errno));
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  for (;;) {
    const size_t nl = reply.find('\n');
    if (nl != std::string::npos) {
      reply.resize(nl);
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      why = fmt::format("no reply from {} within {} ms", path, timeout_ms);
      return false;
    }
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
      why = fmt::format("poll: {}", std::strerror(errno));
      return false;
    }
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      why = n == 0 ? fmt::format("{} closed the connection without a whole reply", path)
                   : fmt::format("recv from {}: {}", path, std::strerror(errno));
      return false;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

std::string render(const json& reply) {
  std::string out;
  if (!reply.value("ok", false)) {
    out += fmt::format("error: {}\n", reply.value("error", std::string("(no message)")));
    if (reply.contains("errors") && reply["errors"].is_array())
      for (const auto& e : reply["errors"])
        out += fmt::format("  {}\n", cell(e));
    return out;
  }
  object(out, reply, "");
  if (out.empty()) out = "ok\n";
  return out;
}

int main(int argc, char** argv) {
  CLI::App app{"expressgateway ctl: commands to a running gateway over its admin socket"};
  app.name("expressgateway ctl");
  std::string socket, config;
  bool as_json = false;
  double timeout_s = 70;
  std::vector<std::string> words;
  app.add_option("-s,--socket", socket,
                 "the admin socket (default: CONFIG's [admin] socket, or "
                 "/run/expressgateway/admin.sock)");
  app.add_option("-c,--config", config, "read the socket path from this configuration file");
  app.add_flag("--json", as_json, "print the reply as it came (one JSON object)");
  app.add_option("--timeout", timeout_s, "seconds to wait for the reply")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("command", words, "the command and its arguments ('help' lists them)")->required();
  app.positionals_at_end();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (socket.empty() && !config.empty()) {
    auto r = config::load_file(config);
    if (!r.errors.empty()) {
      for (const auto& e : r.errors)
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
      return kExitUsage;
    }
    socket = r.config->admin.socket;
    if (socket.empty()) {
      std::fprintf(stderr, "%s: [admin] socket is not set: the admin API is off\n", config.c_str());
      return kExitUsage;
    }
  }
  if (socket.empty()) socket = kDefaultSocket;
  std::string line;
  for (const auto& w : words)
    line += (line.empty() ? "" : " ") + w;
  std::string reply, why;
  if (!exchange(socket, line, static_cast<int>(timeout_s * 1000), reply, why)) {
    std::fprintf(stderr, "expressgateway ctl: %s\n", why.c_str());
    return kExitNoAnswer;
  }
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::fprintf(stderr, "expressgateway ctl: the reply is not a JSON object: %s\n", reply.c_str());
    return kExitNoAnswer;
  }
  const bool ok = j.value("ok", false);
  if (as_json) {
    std::printf("%s\n", reply.c_str());
  } else {
    std::fputs(render(j).c_str(), ok ? stdout : stderr);
  }
  return ok ? kExitOk : kExitError;
}

}  // namespace egw::ctl

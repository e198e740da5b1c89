#include "src/server/upgrade.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace egw::server {

bool send_link(int link, std::string_view text, std::span<const int> fds, std::string& why) {
  if (fds.size() > kMaxFdsPerMessage || text.size() > kMaxUpgradeMessage) {
    why = "message too large for the upgrade link";
    return false;
  }
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    const ssize_t n = ::sendmsg(link, &msg, MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    why = fmt::format("upgrade link: {}", std::strerror(errno));
    return false;
  }
}

LinkRead recv_link(int link, int timeout_ms, LinkMessage& out, std::string& why) {
  out.text.clear();
  out.fds.clear();
  pollfd p{link, POLLIN, 0};
  for (;;) {
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      why = fmt::format("upgrade link: {}", std::strerror(errno));
      return LinkRead::kError;
    }
    if (r == 0) return LinkRead::kTimeout;
    break;
  }
  out.text.resize(kMaxUpgradeMessage);
  iovec iov{out.text.data(), out.text.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(link, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return LinkRead::kTimeout;
  // The peer exited with messages of ours unread: gone, as at the end.
  if (n < 0 && errno == ECONNRESET) return LinkRead::kEof;
  if (n < 0) {
    why = fmt::format("upgrade link: {}", std::strerror(errno));
    return LinkRead::kError;
  }
  // Every descriptor that came is owned from here on, whatever else is wrong.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.fds.emplace_back(fd);
    }
  }
  if (n == 0 && out.fds.empty()) return LinkRead::kEof;
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    why = "upgrade link: a message was cut short";
    return LinkRead::kError;
  }
  out.text.resize(static_cast<size_t>(n));
  return LinkRead::kMessage;
}

namespace {

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    out.push_back(kHex[(static_cast<uint8_t>(c) >> 4) & 0xf]);
    out.push_back(kHex[static_cast<uint8_t>(c) & 0xf]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

}  // namespace

std::optional<Inheritance> Inheritance::receive(int link, std::string& why) {
  Inheritance in;
  bool hello = false;
  // Bounded: the old process sends everything at once, before it waits.
  for (int messages = 0; messages < 100000; ++messages) {
    LinkMessage m;
    switch (recv_link(link, 10'000, m, why)) {
      case LinkRead::kMessage:
        break;
      case LinkRead::kEof:
        why = "the old process closed the upgrade link before it handed everything over";
        return std::nullopt;
      case LinkRead::kTimeout:
        why = "the old process sent nothing for 10 s";
        return std::nullopt;
      case LinkRead::kError:
        return std::nullopt;
    }
    const auto j = nlohmann::json::parse(m.text, nullptr, false);
    if (!j.is_object() || !j.contains("k") || !j["k"].is_string()) {
      why = "upgrade link: a message that is not what the old process should send";
      return std::nullopt;
    }
    const std::string k = j["k"];
    try {
      if (k == "hello") {
        in.generation_ = j.at("generation").get<uint64_t>();
        in.predecessor_ = j.at("pid").get<pid_t>();
        auto keys = from_hex(j.value("tickets", std::string()));
        if (!keys) {
          why = "upgrade link: the ticket keys are not hex";
          return std::nullopt;
        }
        in.tickets_ = std::move(*keys);
        hello = true;
      } else if (k == "listener") {
        auto& v =
            in.listeners_[{j.at("listener").get<std::string>(), j.at("bind").get<std::string>()}];
        for (auto& fd : m.fds)
          v.push_back(std::move(fd));
      } else if (k == "admin" && m.fds.size() == 1) {
        in.admin_[j.at("path").get<std::string>()] = std::move(m.fds[0]);
      } else if (k == "metrics" && m.fds.size() == 1) {
        in.metrics_[j.at("bind").get<std::string>()] = std::move(m.fds[0]);
      } else if (k == "end") {
        if (!hello) {
          why = "upgrade link: no hello from the old process";
          return std::nullopt;
        }
        return in;
      } else {
        why = fmt::format("upgrade link: unexpected message '{}'", k);
        return std::nullopt;
      }
    } catch (const nlohmann::json::exception& e) {
      why = fmt::format("upgrade link: message '{}': {}", k, e.what());
      return std::nullopt;
    }
  }
  why = "upgrade link: too many messages";
  return std::nullopt;
}

std::vector<UniqueFd> Inheritance::take_listener(const std::string& listener,
                                                 const std::string& bind) {
  auto it = listeners_.find({listener, bind});
  if (it == listeners_.end()) return {};
  std::vector<UniqueFd> out = std::move(it->second);
  listeners_.erase(it);
  return out;
}

namespace {
UniqueFd take(std::map<std::string, UniqueFd>& from, const std::string& key) {
  auto it = from.find(key);
  if (it == from.end()) return {};
  UniqueFd fd = std::move(it->second);
  from.erase(it);
  return fd;
}
}  // namespace

UniqueFd Inheritance::take_admin(const std::string& path) {
  return take(admin_, path);
}

UniqueFd Inheritance::take_metrics(const std::string& bind) {
  return take(metrics_, bind);
}

size_t Inheritance::left() const {
  size_t n = admin_.size() + metrics_.size();
  for (const auto& [key, fds] : listeners_)
    n += fds.size();
  return n;
}

bool send_handover(int link, const Handover& h, std::string& why) {
  nlohmann::json hello{{"k", "hello"},
                       {"generation", h.generation},
                       {"pid", ::getpid()},
                       {"tickets", to_hex(h.tickets)}};
  if (!send_link(link, hello.dump(), {}, why)) return false;
  for (const auto& l : h.listeners) {
    const std::string text =
        nlohmann::json{{"k", "listener"}, {"listener", l.listener}, {"bind", l.bind}}.dump();
    std::span<const int> all(l.fds);
    do {
      const size_t n = std::min(all.size(), kMaxFdsPerMessage);
      if (!send_link(link, text, all.first(n), why)) return false;
      all = all.subspan(n);
    } while (!all.empty());
  }
  if (h.admin_fd >= 0) {
    const int fd[1] = {h.admin_fd};
    if (!send_link(link, nlohmann::json{{"k", "admin"}, {"path", h.admin_path}}.dump(), fd, why))
      return false;
  }
  if (h.metrics_fd >= 0) {
    const int fd[1] = {h.metrics_fd};
    if (!send_link(link, nlohmann::json{{"k", "metrics"}, {"bind", h.metrics_bind}}.dump(), fd,
                   why))
      return false;
  }
  return send_link(link, R"({"k":"end"})", {}, why);
}

std::optional<Spawned> spawn_upgrade(const std::string& exe, const std::vector<std::string>& argv,
                                     std::string& why) {
  if (::access(exe.c_str(), X_OK) != 0) {
    why = fmt::format("cannot run {}: {}", exe, std::strerror(errno));
    return std::nullopt;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    why = fmt::format("socketpair: {}", std::strerror(errno));
    return std::nullopt;
  }
  UniqueFd mine(sv[0]), theirs(sv[1]);
  // Only the child's end crosses the exec. (Nothing else in this process
  // starts programs, so no other child can pick it up meanwhile.)
  ::fcntl(theirs.get(), F_SETFD, 0);

  std::vector<std::string> env;
  const std::string key = std::string(kUpgradeFdEnv) + "=";
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, key.c_str(), key.size()) != 0) env.emplace_back(*e);
  }
  env.push_back(key + std::to_string(theirs.get()));
  std::vector<char*> envp, args;
  for (auto& s : env)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy)
    args.push_back(s.data());
  args.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe.c_str(), nullptr, &attr, args.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    why = fmt::format("cannot start {}: {}", exe, std::strerror(rc));
    return std::nullopt;
  }
  return Spawned{pid, std::move(mine)};
}

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace egw::server

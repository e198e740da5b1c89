#include "src/server/admin.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "egw/log.h"
#include "src/server/admin_command.h"

namespace egw::server {

namespace {

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string error_line(std::string_view message) {
  nlohmann::json j;
  j["ok"] = false;
  j["error"] = message;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

}  // namespace

struct AdminServer::Client {
  UniqueFd fd;
  std::string in;
  std::string out;
  uint64_t last_ms = 0;
  bool closing = false;  // close once `out` is sent
};

std::unique_ptr<AdminServer> AdminServer::bind(const config::AdminConfig& cfg, std::string& error) {
  std::unique_ptr<AdminServer> a(new AdminServer());
  a->path_ = cfg.socket;
  const sockaddr_un addr = unix_address(cfg.socket);
  struct stat st {};
  if (::lstat(cfg.socket.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = fmt::format("{} exists and is not a socket", cfg.socket);
      return nullptr;
    }
    // A live process answering there keeps it; a stale file is replaced.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe &&
        ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      error = fmt::format("{}: another process answers on this admin socket", cfg.socket);
      return nullptr;
    }
    if (::unlink(cfg.socket.c_str()) != 0) {
      error =
          fmt::format("cannot remove the stale socket {}: {}", cfg.socket, std::strerror(errno));
      return nullptr;
    }
  }
  a->listen_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  a->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!a->listen_ || !a->stop_) {
    error = fmt::format("socket: {}", std::strerror(errno));
    return nullptr;
  }
  // The file is created with the mode asked for: no moment when it is open
  // to more than that. (Only the control thread runs at start-up.)
  const mode_t old = ::umask(static_cast<mode_t>(0777 & ~cfg.socket_mode));
  const int rc = ::bind(a->listen_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old);
  if (rc != 0) {
    error =
        fmt::format("cannot create the admin socket {}: {}", cfg.socket, std::strerror(bind_errno));
    return nullptr;
  }
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!cfg.socket_user.empty()) {
    if (const passwd* pw = ::getpwnam(cfg.socket_user.c_str())) uid = pw->pw_uid;
  }
  if (!cfg.socket_group.empty()) {
    if (const group* gr = ::getgrnam(cfg.socket_group.c_str())) gid = gr->gr_gid;
  }
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
      ::chown(cfg.socket.c_str(), uid, gid) != 0) {
    error = fmt::format("cannot give the admin socket {} to {}:{}: {}", cfg.socket, cfg.socket_user,
                        cfg.socket_group, std::strerror(errno));
    ::unlink(cfg.socket.c_str());
    return nullptr;
  }
  if (::chmod(cfg.socket.c_str(), static_cast<mode_t>(cfg.socket_mode)) != 0 ||
      ::listen(a->listen_.get(), 16) != 0 || ::stat(cfg.socket.c_str(), &st) != 0) {
    error = fmt::format("admin socket {}: {}", cfg.socket, std::strerror(errno));
    ::unlink(cfg.socket.c_str());
    return nullptr;
  }
  a->dev_ = st.st_dev;
  a->ino_ = st.st_ino;
  return a;
}

std::unique_ptr<AdminServer> AdminServer::adopt(const config::AdminConfig& cfg, UniqueFd fd,
                                                std::string& error) {
  std::unique_ptr<AdminServer> a(new AdminServer());
  a->path_ = cfg.socket;
  struct stat st {};
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    error = "the handed-over admin descriptor is not a stream socket";
    return nullptr;
  }
  if (::stat(cfg.socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    error = fmt::format("{}: the admin socket file is gone", cfg.socket);
    return nullptr;
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  a->listen_ = std::move(fd);
  a->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!a->stop_) {
    error = fmt::format("eventfd: {}", std::strerror(errno));
    return nullptr;
  }
  a->dev_ = st.st_dev;
  a->ino_ = st.st_ino;
  return a;
}

void AdminServer::hand_over() {
  handed_over_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(stop_.get(), &one, sizeof(one));
}

AdminServer::~AdminServer() {
  if (thread_.joinable()) {
    stop_flag_ = true;
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_.get(), &one, sizeof(one));
    thread_.join();
  }
  listen_.reset();
  // Remove the file only if it is still the one we made (and was not
  // handed to a new process).
  struct stat st {};
  if (!handed_over_ && !path_.empty() && ::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ &&
      st.st_ino == ino_ && ::unlink(path_.c_str()) != 0) {
    EGW_LOG(debug, "admin socket {} left in place: {}", path_, std::strerror(errno));
  }
}

void AdminServer::start(Handler handler) {
  handler_ = std::move(handler);
  thread_ = std::thread([this] { run(); });
}

void AdminServer::run() {
  log::set_thread_tag("admin");
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<pollfd> fds;
  char buf[8192];
  for (;;) {
    fds.clear();
    // After a hand-over the new process accepts: -1 is left out by poll.
    fds.push_back({listen_ ? listen_.get() : -1, POLLIN, 0});
    fds.push_back({stop_.get(), POLLIN, 0});
    const uint64_t now = now_ms();
    uint64_t wait = kIdleMs;
    for (const auto& c : clients) {
      short ev = c->closing ? 0 : POLLIN;
      if (!c->out.empty()) ev |= POLLOUT;
      fds.push_back({c->fd.get(), ev, 0});
      const uint64_t idle = now - c->last_ms;
      wait = std::min(wait, idle >= kIdleMs ? 0 : kIdleMs - idle);
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0) {
      if (errno == EINTR) continue;
      EGW_LOG(error, "admin: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) {
      uint64_t v;
      [[maybe_unused]] const ssize_t r = ::read(stop_.get(), &v, sizeof(v));
      if (stop_flag_) return;
      if (handed_over_ && listen_) {
        listen_.reset();
        fds[0].revents = 0;
      }
    }
    const uint64_t t = now_ms();
    for (size_t i = 0; i < clients.size(); ++i) {
      Client& c = *clients[i];
      const short rev = fds[i + 2].revents;
      if (rev & POLLIN) {
        const ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
        if (n > 0) {
          c.last_ms = t;
          c.in.append(buf, static_cast<size_t>(n));
          size_t nl;
          while (!c.closing && (nl = c.in.find('\n')) != std::string::npos) {
            std::string line = c.in.substr(0, nl);
            c.in.erase(0, nl + 1);
            c.out += handler_(line);
            c.out += '\n';
          }
          if (!c.closing && c.in.size() > kMaxAdminLine) {
            c.out += error_line(fmt::format("command longer than {} bytes", kMaxAdminLine));
            c.closing = true;
          }
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          // The client is done sending: a last line without its newline
          // still counts; then close once the replies are out.
          if (n == 0 && !c.closing && !c.in.empty() && c.in.size() <= kMaxAdminLine) {
            c.out += handler_(c.in);
            c.out += '\n';
          }
          c.in.clear();
          c.closing = true;
          if (n < 0) c.out.clear();
        }
      } else if (rev & (POLLHUP | POLLERR)) {
        c.closing = true;
        if (rev & POLLERR) c.out.clear();
      }
      if (!c.out.empty() && (rev & POLLOUT || rev & POLLIN)) {
        const ssize_t n =
            ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          c.out.erase(0, static_cast<size_t>(n));
          c.last_ms = t;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          c.out.clear();
          c.closing = true;
        }
      }
      if (c.out.size() > kMaxPendingReply) {
        EGW_LOG(warn, "admin: a client that reads no replies ({} bytes waiting): closed",
                c.out.size());
        c.out.clear();
        c.closing = true;
      }
      if (t - c.last_ms >= kIdleMs) {
        c.closing = true;
        c.out.clear();
      }
    }
    std::erase_if(clients, [](const auto& c) { return c->closing && c->out.empty(); });
    if (listen_ && (fds[0].revents & POLLIN)) {
      for (;;) {
        UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!fd) break;
        if (clients.size() >= kMaxClients) {
          const std::string e =
              error_line(fmt::format("too many admin connections (at most {})", kMaxClients));
          [[maybe_unused]] const ssize_t n =
              ::send(fd.get(), e.data(), e.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          continue;
        }
        auto c = std::make_unique<Client>();
        c->fd = std::move(fd);
        c->last_ms = t;
        clients.push_back(std::move(c));
      }
    }
  }
}

}  // namespace egw::server

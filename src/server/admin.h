// AdminServer: the admin API on a Unix socket ([admin] socket), on a thread
// of its own. One command per line, one JSON object per reply line; the
// replies come from the server's handler (Server::admin_reply), which reads
// shared state, asks workers through their mailboxes with a bounded wait,
// and hands what only the control thread may do (reload) to it.
//
// The socket is created at start-up, before privileges are dropped, with
// the configured mode, owner and group; a stale socket file left by a
// process that is gone is replaced, one that a live process answers on is
// an error. It is removed at exit if it is still ours.
//
// Bounded: at most kMaxClients connections (one more is told so and
// closed), a line of at most kMaxAdminLine bytes (a longer one is answered
// with an error and the connection closed), kIdleMs without a command
// closes, and replies wait in a per-connection buffer (non-blocking sends),
// so a client that does not read holds up nobody but itself.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "egw/unique_fd.h"
#include "src/config/config.h"

namespace egw::server {

class AdminServer {
 public:
  // Takes one command line (without its newline); returns the reply, one
  // line of JSON without its newline.
  using Handler = std::function<std::string(std::string_view line)>;

  static constexpr size_t kMaxClients = 16;
  static constexpr uint64_t kIdleMs = 300'000;
  static constexpr size_t kMaxPendingReply = 64u << 20;  // a client this far behind is closed

  // Creates, binds and listens; null with `error` on failure.
  static std::unique_ptr<AdminServer> bind(const config::AdminConfig& cfg, std::string& error);
  // Takes over the listening socket a binary upgrade handed over (the file
  // at cfg.socket stays as it is); null with `error` when it is not one.
  static std::unique_ptr<AdminServer> adopt(const config::AdminConfig& cfg, UniqueFd fd,
                                            std::string& error);
  ~AdminServer();

  void start(Handler handler);
  const std::string& path() const { return path_; }
  // The listening socket, for a binary upgrade to hand over.
  int listen_fd() const { return listen_.get(); }
  // After a binary upgrade: accepts no more connections (the new process
  // does), serves the ones it has, and leaves the socket file to the new
  // process. Any thread.
  void hand_over();

 private:
  struct Client;

  AdminServer() = default;
  void run();

  UniqueFd listen_;
  UniqueFd stop_;  // eventfd: wakes the thread for stop_flag_ or handed_over_
  std::atomic<bool> stop_flag_{false};
  std::atomic<bool> handed_over_{false};
  std::string path_;
  dev_t dev_ = 0;  // the socket file's identity, to remove only our own
  ino_t ino_ = 0;
  Handler handler_;
  std::thread thread_;
};

}  // namespace egw::server

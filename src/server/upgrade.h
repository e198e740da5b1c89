// Hot binary upgrade: the running process starts the binary it was started
// from (the file at that path now, e.g. the one a package upgrade put
// there) with a SOCK_SEQPACKET link, and hands it every listening socket
// with SCM_RIGHTS. The sockets are the same kernel objects in both
// processes, so their accept queues are shared: nothing queued is lost
// while one process stops accepting and the other starts.
//
// The link, one JSON object per message (at most kMaxFdsPerMessage
// descriptors each):
//   old -> new  {"k":"hello","generation":G,"pid":P,"tickets":"hex"}
//               {"k":"listener","listener":NAME,"bind":TEXT}  + its fds
//               {"k":"admin","path":PATH}                     + 1 fd
//               {"k":"metrics","bind":TEXT}                   + 1 fd
//               {"k":"end"}
//   new -> old  {"k":"ready","pid":P} once it serves, or
//               {"k":"failed","error":TEXT} when it cannot start.
// The old process then drains and keeps its end open until it exits: the
// new one sees the end of the link and knows its predecessor is gone (until
// then it refuses to upgrade again).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "egw/unique_fd.h"

namespace egw::server {

// The environment variable that carries the link's descriptor number.
inline constexpr const char* kUpgradeFdEnv = "EXPRESSGATEWAY_UPGRADE_FD";
inline constexpr size_t kMaxFdsPerMessage = 200;  // SCM_MAX_FD is 253
inline constexpr size_t kMaxUpgradeMessage = 65536;
// How long the old process waits for the new one to say it is ready.
inline constexpr uint64_t kUpgradeReadyTimeoutMs = 60'000;

// One message: its text and the descriptors that came with it.
struct LinkMessage {
  std::string text;
  std::vector<UniqueFd> fds;
};

enum class LinkRead : uint8_t { kMessage, kEof, kTimeout, kError };

// Sends one message with `fds` (at most kMaxFdsPerMessage). Blocking.
bool send_link(int link, std::string_view text, std::span<const int> fds, std::string& why);
// Receives one message; waits at most `timeout_ms` (-1: no limit).
LinkRead recv_link(int link, int timeout_ms, LinkMessage& out, std::string& why);

// What the new process was handed (its side of the link, read at start).
class Inheritance {
 public:
  // Reads the old process's messages up to "end". Null with `why` when the
  // link breaks or says something that does not parse.
  static std::optional<Inheritance> receive(int link, std::string& why);

  uint64_t generation() const { return generation_; }
  pid_t predecessor() const { return predecessor_; }
  // The old process's session-ticket keys (TicketKeys::export_keys()).
  const std::string& tickets() const { return tickets_; }
  // The sockets of a listener's bind (by listener name and the bind as
  // written), taken: empty when none were handed over.
  std::vector<UniqueFd> take_listener(const std::string& listener, const std::string& bind);
  UniqueFd take_admin(const std::string& path);
  UniqueFd take_metrics(const std::string& bind);
  // Descriptors not taken (closed when this goes): the listeners the new
  // configuration dropped.
  size_t left() const;

 private:
  uint64_t generation_ = 0;
  pid_t predecessor_ = 0;
  std::string tickets_;
  std::map<std::pair<std::string, std::string>, std::vector<UniqueFd>> listeners_;
  std::map<std::string, UniqueFd> admin_, metrics_;
};

// The old process's side: what to hand over.
struct Handover {
  uint64_t generation = 0;
  std::string tickets;  // TicketKeys::export_keys() (hex on the link)
  struct Listener {
    std::string listener, bind;
    std::vector<int> fds;
  };
  std::vector<Listener> listeners;
  std::string admin_path;
  int admin_fd = -1;
  std::string metrics_bind;
  int metrics_fd = -1;
};
bool send_handover(int link, const Handover& h, std::string& why);

// Starts `exe` with `argv` (argv[0] included) and the child's end of a new
// link as kUpgradeFdEnv; the child's signal mask and dispositions are reset.
// Returns the child's pid and the parent's end of the link, or nothing with
// `why`.
struct Spawned {
  pid_t pid = 0;
  UniqueFd link;
};
std::optional<Spawned> spawn_upgrade(const std::string& exe, const std::vector<std::string>& argv,
                                     std::string& why);

// The path of the running binary as it was at start-up (/proc/self/exe).
std::string self_executable();

}  // namespace egw::server

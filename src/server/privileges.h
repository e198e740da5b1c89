// Dropping root: a gateway started as root ([global] user) binds its
// listeners first, then becomes `user` (and `group`, or the user's primary
// group; supplementary groups are cleared) before any worker starts, keeping
// one capability, CAP_NET_BIND_SERVICE, in the control thread and the
// threads it starts. A reload can then still bind ports below 1024; every
// other privilege is gone for good, and files a reload reads (certificates,
// keys) must be readable by `user`.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace egw::server {

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user, group;  // names, for the log
};

// Looks up `user` and `group` (names; an empty group is the user's primary
// group); nullopt with `error` naming what is missing.
std::optional<Identity> resolve_identity(const std::string& user, const std::string& group,
                                         std::string& error);

// Becomes `id`: setgroups, setgid, setuid, then CAP_NET_BIND_SERVICE alone
// (permitted and effective). A process that already runs as `id` only
// checks. False, with `error` saying why, when not root (and not `id`) or a
// step fails.
bool drop_privileges(const Identity& id, std::string& error);

}  // namespace egw::server

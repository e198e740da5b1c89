#include "src/server/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace egw::server {

std::optional<Identity> resolve_identity(const std::string& user, const std::string& group,
                                         std::string& error) {
  Identity id;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* pres = nullptr;
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &pres) != 0 || !pres) {
    error = fmt::format("no user '{}' on this system", user);
    return std::nullopt;
  }
  id.uid = pw.pw_uid;
  id.gid = pw.pw_gid;
  id.user = user;
  ::group gr{};
  ::group* gres = nullptr;
  if (!group.empty()) {
    if (::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &gres) != 0 || !gres) {
      error = fmt::format("no group '{}' on this system", group);
      return std::nullopt;
    }
    id.gid = gr.gr_gid;
    id.group = group;
  } else if (::getgrgid_r(id.gid, &gr, buf.data(), buf.size(), &gres) == 0 && gres) {
    id.group = gr.gr_name;
  } else {
    id.group = std::to_string(id.gid);
  }
  return id;
}

bool drop_privileges(const Identity& id, std::string& error) {
  auto failed = [&](std::string what) {
    error = what + (errno ? fmt::format(": {}", std::strerror(errno)) : std::string());
    return false;
  };
  if (::geteuid() == id.uid && ::getegid() == id.gid) return true;  // already
  if (::geteuid() != 0) {
    errno = 0;
    return failed(fmt::format("cannot become user '{}': not running as root", id.user));
  }
  // Keep the permitted set across setuid, to take CAP_NET_BIND_SERVICE back.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return failed("prctl(PR_SET_KEEPCAPS)");
  if (::setgroups(1, &id.gid) != 0) return failed("setgroups");
  if (::setgid(id.gid) != 0) return failed(fmt::format("setgid({})", id.gid));
  if (::setuid(id.uid) != 0) return failed(fmt::format("setuid({})", id.uid));
  if (::setuid(0) == 0) {
    errno = 0;
    return failed("root could be regained after setuid");
  }
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  const unsigned bit = CAP_NET_BIND_SERVICE;
  data[bit / 32].permitted = data[bit / 32].effective = data[bit / 32].inheritable = 1u
                                                                                     << (bit % 32);
  if (::syscall(SYS_capset, &hdr, data) != 0) return failed("capset");
  // Ambient too: the binary a hot upgrade starts (as this user) keeps it.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) != 0)
    return failed("prctl(PR_CAP_AMBIENT_RAISE)");
  ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  // No way back up through exec either.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return failed("PR_SET_NO_NEW_PRIVS");
  return true;
}

}  // namespace egw::server

// Service manager notifications (systemd's sd_notify protocol, through
// libsystemd): READY once serving, RELOADING while a SIGHUP is applied, then
// READY again, STOPPING when draining, MAINPID when a binary upgrade hands
// over to a new process, STATUS lines saying what is going on, and the
// watchdog kept alive only while every worker answers. Without
// $NOTIFY_SOCKET (not started by systemd as Type=notify) every call does
// nothing.
#pragma once

#include <cstdint>
#include <string_view>

namespace egw::server {

class Notifier {
 public:
  Notifier();

  void ready(std::string_view status);
  void reloading();
  void stopping(std::string_view status);
  void status(std::string_view status);
  // After a binary upgrade (the old process): the new process is the main
  // one now, and ready.
  void main_pid(int pid, std::string_view status);
  // The new process of a binary upgrade: the watchdog systemd set for the
  // old process `old_pid` is this one's to feed once it is the main one.
  void take_over_from(int old_pid);

  // The watchdog interval systemd asked for (WatchdogSec=), in µs; 0: none.
  uint64_t watchdog_usec() const { return watchdog_usec_; }
  void watchdog();

 private:
  void send(std::string_view text);

  bool enabled_ = false;
  uint64_t watchdog_usec_ = 0;
};

}  // namespace egw::server

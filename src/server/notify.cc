#include "src/server/notify.h"

#include <systemd/sd-daemon.h>

#include <unistd.h>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <fmt/format.h>

#include "egw/log.h"

namespace egw::server {

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  // 0: the watchdog is not asked for (or is meant for another process).
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
}

void Notifier::send(std::string_view text) {
  if (!enabled_) return;
  const std::string msg(text);
  if (const int r = sd_notify(0, msg.c_str()); r < 0) {
    EGW_LOG_RATELIMITED(warn, 10000, "sd_notify: {}", std::strerror(-r));
  }
}

void Notifier::ready(std::string_view status) {
  send(fmt::format("READY=1\nSTATUS={}", status));
}

void Notifier::reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading", usec));
}

void Notifier::stopping(std::string_view status) {
  send(fmt::format("STOPPING=1\nSTATUS={}", status));
}

void Notifier::status(std::string_view status) {
  send(fmt::format("STATUS={}", status));
}

void Notifier::main_pid(int pid, std::string_view status) {
  send(fmt::format("MAINPID={}\nREADY=1\nSTATUS={}", pid, status));
}

void Notifier::take_over_from(int old_pid) {
  const char* wpid = std::getenv("WATCHDOG_PID");
  if (!enabled_ || !wpid || std::strtol(wpid, nullptr, 10) != old_pid) return;
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
}

void Notifier::watchdog() {
  send("WATCHDOG=1");
}

}  // namespace egw::server

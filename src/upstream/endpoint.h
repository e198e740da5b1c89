// EndpointState: what every worker knows about one upstream endpoint, shared
// across workers (atomics, relaxed: these are hints and counters, never locks).
// It outlives config reloads that keep the endpoint (same cluster name and
// address), so health state and connection counts carry over; a session keeps
// the state it charged alive until it releases its slot.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "egw/address.h"
#include "src/config/config.h"
#include "src/upstream/admin_state.h"

namespace egw::upstream {

// Bumped by every admin change of a weight: balancers whose tables depend on
// weights (source_hash) rebuild them at their next pick.
uint64_t admin_epoch();

class EndpointState {
 public:
  EndpointState(std::string cluster, const config::EndpointConfig& cfg);

  const std::string& label() const { return label_; }  // "cluster/address"
  const SocketAddress& address() const { return address_; }

  // -- health ---------------------------------------------------------------
  // Up as far as active checks (or the initial state) know.
  bool up() const { return up_.load(std::memory_order_relaxed); }
  // Usable for a new session at loop time `now_ms`: up, and not inside a
  // passive back-off after consecutive connect failures.
  bool usable(uint64_t now_ms) const {
    return up() && retry_after_ms_.load(std::memory_order_relaxed) <= now_ms;
  }
  // Active check result; returns true when the state changed.
  bool set_up(bool up) { return up_.exchange(up, std::memory_order_relaxed) != up; }
  // Passive observation of a session's connect. After `fall` consecutive
  // failures the endpoint is avoided for `backoff_ms` (and, with active
  // checks, marked down until they see it rise). Returns true when this
  // failure crossed the threshold.
  bool connect_failed(uint32_t fall, uint64_t now_ms, uint64_t backoff_ms);
  void connect_succeeded();

  // Why the endpoint is up or down: the last health check's verdict, or the
  // passive back-off (for `show endpoints`). Set rarely, read by the admin API.
  std::string health_reason() const;
  void set_health_reason(std::string why);

  // -- admin overrides (the admin API; atomics, read at every pick) ---------------
  AdminState admin_state() const {
    return static_cast<AdminState>(admin_state_.load(std::memory_order_relaxed));
  }
  void set_admin_state(AdminState s) {
    admin_state_.store(static_cast<uint8_t>(s), std::memory_order_relaxed);
  }
  // The weight and maxconn in force: the admin's where set, else the file's.
  uint32_t weight(const config::EndpointConfig& cfg) const {
    const int64_t w = admin_weight_.load(std::memory_order_relaxed);
    return w >= 0 ? static_cast<uint32_t>(w) : cfg.weight;
  }
  uint32_t maxconn(const config::EndpointConfig& cfg) const {
    const int64_t m = admin_maxconn_.load(std::memory_order_relaxed);
    return m >= 0 ? static_cast<uint32_t>(m) : cfg.maxconn;
  }
  std::optional<uint32_t> admin_weight() const;
  std::optional<uint32_t> admin_maxconn() const;
  void set_admin_weight(std::optional<uint32_t> w);
  void set_admin_maxconn(std::optional<uint32_t> m);
  // A reload kept this endpoint with `cfg`: an admin weight or maxconn gives
  // way to the file's where the file changed that value. Returns what was
  // dropped ("weight", "maxconn", "weight and maxconn") or "" (for the log).
  std::string reconfigured(const config::EndpointConfig& cfg);

  // -- load ---------------------------------------------------------------------
  uint32_t active() const { return active_.load(std::memory_order_relaxed); }
  // Takes a connection slot if below `maxconn` (0 = unlimited).
  bool try_acquire(uint32_t maxconn);
  void release() { active_.fetch_sub(1, std::memory_order_relaxed); }

  // -- counters -------------------------------------------------------------------
  std::atomic<uint64_t> sessions{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> bytes_to{0};    // client -> endpoint
  std::atomic<uint64_t> bytes_from{0};  // endpoint -> client

 private:
  const std::string label_;
  const SocketAddress address_;
  std::atomic<bool> up_{true};
  std::atomic<uint32_t> active_{0};
  std::atomic<uint32_t> consecutive_failures_{0};
  std::atomic<uint64_t> retry_after_ms_{0};
  std::atomic<uint8_t> admin_state_{0};
  std::atomic<int64_t> admin_weight_{-1};   // -1: the file's
  std::atomic<int64_t> admin_maxconn_{-1};  // -1: the file's
  uint32_t file_weight_, file_maxconn_;     // the file's, as of the last (re)load
  mutable std::mutex reason_mu_;
  std::string health_reason_;
};

}  // namespace egw::upstream

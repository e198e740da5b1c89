// EndpointState: what every worker knows about one upstream endpoint, shared
// across workers (atomics, relaxed: these are hints and counters, never locks).
// It outlives config reloads that keep the endpoint (same cluster name and
// address), so health state and connection counts carry over; a session keeps
// the state it charged alive until it releases its slot.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "egw/address.h"
#include "src/config/config.h"

namespace egw::upstream {

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
};

}  // namespace egw::upstream

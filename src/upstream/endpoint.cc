#include "src/upstream/endpoint.h"

#include <fmt/format.h>

namespace egw::upstream {

namespace {
std::atomic<uint64_t> g_admin_epoch{0};
}

uint64_t admin_epoch() {
  return g_admin_epoch.load(std::memory_order_relaxed);
}

EndpointState::EndpointState(std::string cluster, const config::EndpointConfig& cfg)
    : label_(fmt::format("{}/{}", cluster, cfg.address.to_string())),
      address_(cfg.address),
      file_weight_(cfg.weight),
      file_maxconn_(cfg.maxconn),
      health_reason_("not checked yet") {}

std::string EndpointState::health_reason() const {
  std::lock_guard<std::mutex> lock(reason_mu_);
  return health_reason_;
}

void EndpointState::set_health_reason(std::string why) {
  std::lock_guard<std::mutex> lock(reason_mu_);
  health_reason_ = std::move(why);
}

std::optional<uint32_t> EndpointState::admin_weight() const {
  const int64_t w = admin_weight_.load(std::memory_order_relaxed);
  if (w < 0) return std::nullopt;
  return static_cast<uint32_t>(w);
}

std::optional<uint32_t> EndpointState::admin_maxconn() const {
  const int64_t m = admin_maxconn_.load(std::memory_order_relaxed);
  if (m < 0) return std::nullopt;
  return static_cast<uint32_t>(m);
}

void EndpointState::set_admin_weight(std::optional<uint32_t> w) {
  admin_weight_.store(w ? int64_t{*w} : -1, std::memory_order_relaxed);
  g_admin_epoch.fetch_add(1, std::memory_order_relaxed);
}

void EndpointState::set_admin_maxconn(std::optional<uint32_t> m) {
  admin_maxconn_.store(m ? int64_t{*m} : -1, std::memory_order_relaxed);
}

std::string EndpointState::reconfigured(const config::EndpointConfig& cfg) {
  std::string dropped;
  if (cfg.weight != file_weight_ && admin_weight()) {
    set_admin_weight(std::nullopt);
    dropped = "weight";
  }
  if (cfg.maxconn != file_maxconn_ && admin_maxconn()) {
    set_admin_maxconn(std::nullopt);
    dropped += dropped.empty() ? "maxconn" : " and maxconn";
  }
  file_weight_ = cfg.weight;
  file_maxconn_ = cfg.maxconn;
  return dropped;
}

bool EndpointState::try_acquire(uint32_t maxconn) {
  uint32_t cur = active_.load(std::memory_order_relaxed);
  for (;;) {
    if (maxconn != 0 && cur >= maxconn) return false;
    if (active_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
  }
}

bool EndpointState::connect_failed(uint32_t fall, uint64_t now_ms, uint64_t backoff_ms) {
  connect_failures.fetch_add(1, std::memory_order_relaxed);
  const uint32_t n = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < fall) return false;
  retry_after_ms_.store(now_ms + backoff_ms, std::memory_order_relaxed);
  if (n == fall) {
    set_health_reason(
        fmt::format("{} consecutive connect failures: avoided for {} ms", n, backoff_ms));
  }
  return n == fall;
}

void EndpointState::connect_succeeded() {
  if (consecutive_failures_.load(std::memory_order_relaxed) != 0) {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    retry_after_ms_.store(0, std::memory_order_relaxed);
  }
}

}  // namespace egw::upstream

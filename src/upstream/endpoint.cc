#include "src/upstream/endpoint.h"

#include <fmt/format.h>

namespace egw::upstream {

EndpointState::EndpointState(std::string cluster, const config::EndpointConfig& cfg)
    : label_(fmt::format("{}/{}", cluster, cfg.address.to_string())), address_(cfg.address) {}

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
  return n == fall;
}

void EndpointState::connect_succeeded() {
  if (consecutive_failures_.load(std::memory_order_relaxed) != 0) {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    retry_after_ms_.store(0, std::memory_order_relaxed);
  }
}

}  // namespace egw::upstream

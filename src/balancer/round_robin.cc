#include "src/balancer/round_robin.h"

#include <algorithm>

namespace egw::balancer {

int RoundRobin::pick(std::span<const Candidate> candidates, uint64_t /*hash*/) {
  const size_t n = std::min(candidates.size(), kMaxEndpoints);
  if (n == 0) return -1;
  size_t i = next_ < n ? next_ : 0;
  for (size_t tried = 0; tried < n; ++tried) {
    if (is_selectable(candidates[i])) {
      next_ = i + 1;
      return static_cast<int>(i);
    }
    if (++i == n) i = 0;
  }
  return -1;
}

void RoundRobin::reset(std::span<const uint32_t> weights) {
  const size_t n = std::min(weights.size(), kMaxEndpoints);
  next_ = n == 0 ? 0 : static_cast<size_t>(seed_ % n);
}

}  // namespace egw::balancer

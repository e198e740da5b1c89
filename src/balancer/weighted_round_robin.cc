#include "src/balancer/weighted_round_robin.h"

#include <algorithm>

namespace egw::balancer {

int WeightedRoundRobin::pick(std::span<const Candidate> candidates, uint64_t /*hash*/) {
  const size_t n = std::min(candidates.size(), current_.size());
  int64_t total = 0;
  int best = -1;
  int64_t best_current = 0;
  for (size_t i = 0; i < n; ++i) {
    const Candidate& c = candidates[i];
    if (!is_selectable(c)) continue;
    const int64_t now = current_[i] += c.weight;
    total += c.weight;
    if (best < 0 || now > best_current) {
      best = static_cast<int>(i);
      best_current = now;
    }
  }
  if (best >= 0) current_[static_cast<size_t>(best)] -= total;
  return best;
}

void WeightedRoundRobin::reset(std::span<const uint32_t> weights) {
  current_.assign(std::min(weights.size(), kMaxEndpoints), 0);
}

}  // namespace egw::balancer

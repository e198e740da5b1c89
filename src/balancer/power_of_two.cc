#include "src/balancer/power_of_two.h"

#include <algorithm>

#include "src/balancer/least_connections.h"

namespace egw::balancer {

void PowerOfTwo::reset(std::span<const uint32_t> weights) {
  const auto w = weights.first(std::min(weights.size(), kMaxEndpoints));
  max_weight_ = std::max<uint32_t>(1, w.empty() ? 1 : *std::max_element(w.begin(), w.end()));
}

size_t PowerOfTwo::draw_fast(std::span<const Candidate> candidates, size_t skip) {
  for (int attempt = 0; attempt < kDrawAttempts; ++attempt) {
    // One number per try: the index from the high bits (reduce() is
    // dominated by them), the acceptance from the independent low 32 bits,
    // which accept with probability weight / max_weight_ (to within 2^-32).
    const uint64_t r = rng_.next();
    const auto i = static_cast<size_t>(reduce(r, candidates.size()));
    const Candidate& c = candidates[i];
    if (i == skip || !is_selectable(c)) continue;
    if (c.weight >= max_weight_) {
      max_weight_ = c.weight;
      return i;
    }
    if (((r & 0xffffffffu) * max_weight_) >> 32 < c.weight) return i;
  }
  return kNone;
}

size_t PowerOfTwo::draw_exact(std::span<const Candidate> candidates, size_t skip) {
  uint64_t total = 0;
  for (size_t i = 0; i < candidates.size(); ++i)
    if (i != skip && is_selectable(candidates[i])) total += candidates[i].weight;
  if (total == 0) return kNone;
  uint64_t point = rng_.below(total);
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (i == skip || !is_selectable(c)) continue;
    if (point < c.weight) return i;
    point -= c.weight;
  }
  return kNone;  // unreachable: point < total
}

int PowerOfTwo::pick(std::span<const Candidate> all, uint64_t /*hash*/) {
  const auto candidates = all.first(std::min(all.size(), kMaxEndpoints));
  if (candidates.empty()) return -1;
  // Each draw falls back to the exact scan on its own, so that the fallback
  // does not bias which first draws survive.
  const bool scan = candidates.size() <= kScanUpTo;
  size_t a = scan ? kNone : draw_fast(candidates, kNone);
  if (a == kNone) a = draw_exact(candidates, kNone);
  if (a == kNone) return -1;
  size_t b = scan ? kNone : draw_fast(candidates, a);
  if (b == kNone) b = draw_exact(candidates, a);
  if (b == kNone) return static_cast<int>(a);
  return static_cast<int>(less_loaded(candidates[b], candidates[a]) ? b : a);
}

}  // namespace egw::balancer

// source_hash: Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016).
//
// Table: M slots (M prime; 65537 by default, 128 KiB), each holding an
// endpoint index. Each endpoint has its own permutation of the slots,
// offset + j * skip (mod M), with offset and skip derived from its identity
// (set_identities()), so an endpoint prefers the same slots whatever else is
// in the cluster. Endpoints take turns claiming their next preferred free slot
// until the table is full. A client goes to the endpoint in slot
// mix64(hash) mod M.
//
// Weights: turns come in rounds. Each round an endpoint earns credit equal to
// its weight and claims one slot whenever its credit reaches the largest
// weight (which it then pays back), so the heaviest endpoints claim a slot
// every round and an endpoint of weight w claims w / w_max as often. Slot
// counts are proportional to the weights to within a slot. An endpoint whose
// share is below one slot gets none.
//
// Turn order within a round follows the identities (then the index), so the
// table depends on the set of (identity, weight) pairs, not on the order of
// the endpoints in the configuration.
//
// Down endpoints: reset() builds the table over every endpoint with a
// configured weight above 0, whether up or not. When a pick lands on a slot
// whose endpoint is not selectable now (down, full, drained), it walks forward
// to the next slot whose endpoint is. So an endpoint going down moves only its
// own clients, spread over the others as the table interleaves them, and gets
// exactly the same clients back when it comes up again; the table is not
// rebuilt for health flaps. A reset() without an endpoint (removed, or weight
// 0) rebuilds the table, which moves that endpoint's clients and, as the paper
// notes, a small number of others: use it for configuration changes.
#pragma once

#include <cstdint>
#include <vector>

#include "src/balancer/balancer.h"

namespace egw::balancer {

class Maglev final : public Balancer {
 public:
  static constexpr uint32_t kDefaultTableSize = 65537;
  // Keeps slot arithmetic in 32 bits (slot + skip < 2^32).
  static constexpr uint32_t kMaxTableSize = 1u << 24;

  // `table_size` is clamped to [2, kMaxTableSize] and rounded up to the next
  // prime. It should be well above the endpoint count (the paper suggests
  // 100x) for even shares; small tables are for tests.
  explicit Maglev(uint32_t table_size = kDefaultTableSize);

  // The endpoint of the client's slot, or of the first slot after it whose
  // endpoint is selectable. When no endpoint that owns slots is selectable
  // but some candidate is (for instance one whose weight an admin raised from
  // 0 since the last reset(), or one past the reset() count), picks among the
  // selectable candidates by hash so that the cluster keeps serving. Usually
  // one or two table reads; at worst O(n + M) when nearly every owner is down.
  int pick(std::span<const Candidate> candidates, uint64_t hash) override;
  // Rebuilds the table: O(M log M) for equal weights, more when the weights
  // are very uneven (the lightest endpoints sit out most rounds).
  void reset(std::span<const uint32_t> weights) override;
  void set_identities(std::span<const uint64_t> ids) override;

  uint32_t table_size() const { return table_size_; }
  // Slots owned by endpoint i in the current table (0 for unknown endpoints).
  uint32_t slots_of(size_t i) const { return i < slots_.size() ? slots_[i] : 0; }

 private:
  static constexpr uint16_t kEmpty = UINT16_MAX;  // above any endpoint index
  static_assert(kMaxEndpoints < kEmpty);

  bool owner_selectable(std::span<const Candidate> candidates) const;

  uint32_t table_size_;
  std::vector<uint16_t> table_;  // empty when no endpoint has weight > 0
  std::vector<uint32_t> slots_;  // slots owned, by endpoint index
  std::vector<uint64_t> ids_;
};

}  // namespace egw::balancer

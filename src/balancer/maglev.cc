#include "src/balancer/maglev.h"

#include <algorithm>

namespace egw::balancer {
namespace {

// Slots probed from the client's slot before checking that some owner is
// selectable at all (which bounds the walk when every owner is down).
constexpr size_t kProbesBeforeCheck = 16;

// Salts that make offset and skip two independent hashes of one identity.
constexpr uint64_t kOffsetSalt = 0x6d61676c65762d6full;
constexpr uint64_t kSkipSalt = 0x736b69702d736b69ull;

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t d = 3; d * d <= n; d += 2)
    if (n % d == 0) return false;
  return true;
}

uint32_t next_prime(uint32_t n) {
  while (!is_prime(n))
    ++n;
  return n;
}

bool selectable_at(std::span<const Candidate> candidates, uint16_t endpoint) {
  return endpoint < candidates.size() && is_selectable(candidates[endpoint]);
}

}  // namespace

Maglev::Maglev(uint32_t table_size)
    : table_size_(next_prime(std::clamp(table_size, 2u, kMaxTableSize))) {}

void Maglev::set_identities(std::span<const uint64_t> ids) {
  ids_.assign(ids.begin(), ids.end());
}

void Maglev::reset(std::span<const uint32_t> weights) {
  const size_t n = std::min(weights.size(), kMaxEndpoints);
  slots_.assign(n, 0);

  struct Turn {
    uint64_t id;
    uint32_t index;
    uint32_t weight;
    uint64_t credit;
    uint32_t skip;
    uint32_t next;  // next slot of this endpoint's permutation to try
  };
  std::vector<Turn> turns;
  turns.reserve(n);
  uint32_t max_weight = 0;
  for (size_t i = 0; i < n; ++i) {
    if (weights[i] == 0) continue;
    const uint64_t id = i < ids_.size() ? ids_[i] : i;
    const auto offset = static_cast<uint32_t>(mix64(id ^ kOffsetSalt) % table_size_);
    const auto skip = static_cast<uint32_t>(mix64(id ^ kSkipSalt) % (table_size_ - 1) + 1);
    turns.push_back({id, static_cast<uint32_t>(i), weights[i], 0, skip, offset});
    max_weight = std::max(max_weight, weights[i]);
  }
  if (turns.empty()) {
    table_.clear();
    return;
  }
  std::sort(turns.begin(), turns.end(), [](const Turn& a, const Turn& b) {
    return a.id != b.id ? a.id < b.id : a.index < b.index;
  });

  table_.assign(table_size_, kEmpty);
  uint32_t filled = 0;
  // Terminates: the heaviest endpoint claims a slot every round, and with M
  // prime every skip visits all M slots, so a free slot is always found.
  for (;;) {
    for (Turn& t : turns) {
      t.credit += t.weight;
      if (t.credit < max_weight) continue;
      t.credit -= max_weight;
      while (table_[t.next] != kEmpty) {
        t.next += t.skip;
        if (t.next >= table_size_) t.next -= table_size_;
      }
      table_[t.next] = static_cast<uint16_t>(t.index);
      ++slots_[t.index];
      if (++filled == table_size_) return;
    }
  }
}

bool Maglev::owner_selectable(std::span<const Candidate> candidates) const {
  const size_t n = std::min(candidates.size(), slots_.size());
  for (size_t i = 0; i < n; ++i)
    if (slots_[i] > 0 && is_selectable(candidates[i])) return true;
  return false;
}

int Maglev::pick(std::span<const Candidate> candidates, uint64_t hash) {
  const uint64_t key = mix64(hash);
  if (!table_.empty()) {
    size_t slot = reduce(key, table_size_);
    for (size_t probes = 0; probes < kProbesBeforeCheck; ++probes) {
      if (selectable_at(candidates, table_[slot])) return table_[slot];
      if (++slot == table_size_) slot = 0;
    }
    // Some owner is selectable, so some slot holds it and this ends.
    if (owner_selectable(candidates)) {
      while (!selectable_at(candidates, table_[slot]))
        if (++slot == table_size_) slot = 0;
      return table_[slot];
    }
  }

  const size_t n = std::min(candidates.size(), kMaxEndpoints);
  size_t count = 0;
  for (size_t i = 0; i < n; ++i)
    count += is_selectable(candidates[i]) ? 1 : 0;
  if (count == 0) return -1;
  size_t k = reduce(key, count);
  for (size_t i = 0; i < n; ++i) {
    if (!is_selectable(candidates[i])) continue;
    if (k-- == 0) return static_cast<int>(i);
  }
  return -1;  // unreachable: k < count
}

}  // namespace egw::balancer

// Load-balancing algorithms: choose one upstream endpoint of a cluster for a
// new connection or stream.
//
// A balancer is plain logic: no sockets, no clocks, no globals, no locks. Each
// worker owns one instance per cluster. Shared endpoint state (health, active
// connections, maxconn) stays with the caller, who passes a snapshot of it to
// every pick() as a span of Candidates indexed like the cluster's endpoints.
//
// Selectable: a candidate is chosen only when it is `eligible` and its
// `weight` is non-zero. Weight 0 means "drain: no new traffic" for every
// algorithm (round_robin included, although it otherwise ignores weights), so
// an admin weight change takes effect at the next pick without a reset().
//
// Life cycle: make_balancer(), then set_identities() (only source_hash uses
// it) and reset() with the cluster's configured weights; reset() again
// whenever the endpoint set or its configured weights change. pick() is the
// hot path: it never allocates and never throws. Passing more candidates than
// the last reset() knew about is tolerated (see each algorithm for what
// happens to the extra ones), never undefined.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace egw::balancer {

// The largest cluster a balancer handles; endpoints past it are never chosen.
inline constexpr size_t kMaxEndpoints = 1024;

// One endpoint as seen by one pick. The index in the span is the endpoint's
// index in the cluster, stable for a config snapshot.
struct Candidate {
  uint32_t weight;  // effective weight now (configured, or as set by admin)
  uint32_t active;  // connections (or streams) in flight to this endpoint
  bool eligible;    // up, not excluded as a backup, below maxconn
};

inline bool is_selectable(const Candidate& c) {
  return c.eligible && c.weight > 0;
}

enum class Algorithm : uint8_t {
  kRoundRobin,
  kWeightedRoundRobin,
  kLeastConnections,
  kRandom,
  kSourceHash,
};

// Config names: "round_robin", "weighted_round_robin", "least_connections",
// "random", "source_hash". nullopt for anything else (exact, case-sensitive).
std::optional<Algorithm> parse_algorithm(std::string_view name);
// The config name of `a` ("unknown" for a value outside the enum).
const char* to_string(Algorithm a);

class Balancer {
 public:
  virtual ~Balancer() = default;

  // Index of the chosen selectable candidate, or -1 when none is selectable.
  // `hash` is a 64-bit hash of the client address; only source_hash reads it
  // (it is mixed again inside, so a weak hash such as a raw IPv4 address is
  // acceptable). Never allocates.
  virtual int pick(std::span<const Candidate> candidates, uint64_t hash) = 0;

  // The endpoint set changed (size or configured weights): rebuild internal
  // tables for weights.size() endpoints. May allocate; not for the hot path.
  virtual void reset(std::span<const uint32_t> weights) = 0;

  // Stable identities of the endpoints for algorithms that map keys to
  // endpoints (source_hash): ids[i] identifies endpoint i (a hash of its name
  // or address) so that an endpoint keeps its keys when others are added,
  // removed or reordered. Takes effect at the next reset(). Endpoints without
  // an id (i >= ids.size()) are identified by their index. Other algorithms
  // ignore it. May allocate.
  virtual void set_identities(std::span<const uint64_t> /*ids*/) {}
};

// A balancer for `a`. `seed` varies the starting point of round_robin and
// least_connections and seeds random's generator, so that workers given
// different seeds do not all start on the same endpoint. source_hash ignores
// it: every worker must map a client to the same endpoint. Call reset() before
// the first pick (until then weighted_round_robin chooses nothing and
// source_hash hashes over the selectable candidates without consistency).
// nullptr only for a value outside the enum.
std::unique_ptr<Balancer> make_balancer(Algorithm a, uint64_t seed);

// The splitmix64 output function (Steele, Lea, Flood 2014): a bijective mix
// of 64 bits, used to spread identities, keys and generator state.
inline uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Maps a uniformly distributed 64-bit value onto [0, n) with a multiply
// instead of a division (Lemire's fast range reduction).
inline uint64_t reduce(uint64_t x, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

}  // namespace egw::balancer

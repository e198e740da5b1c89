#include "src/balancer/balancer.h"

#include "src/balancer/least_connections.h"
#include "src/balancer/maglev.h"
#include "src/balancer/power_of_two.h"
#include "src/balancer/round_robin.h"
#include "src/balancer/weighted_round_robin.h"

namespace egw::balancer {
namespace {

struct Name {
  Algorithm algorithm;
  std::string_view name;
};
constexpr Name kNames[] = {
    {Algorithm::kRoundRobin, "round_robin"},
    {Algorithm::kWeightedRoundRobin, "weighted_round_robin"},
    {Algorithm::kLeastConnections, "least_connections"},
    {Algorithm::kRandom, "random"},
    {Algorithm::kSourceHash, "source_hash"},
};

}  // namespace

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  for (const Name& n : kNames)
    if (n.name == name) return n.algorithm;
  return std::nullopt;
}

const char* to_string(Algorithm a) {
  for (const Name& n : kNames)
    if (n.algorithm == a) return n.name.data();  // literals: NUL-terminated
  return "unknown";
}

std::unique_ptr<Balancer> make_balancer(Algorithm a, uint64_t seed) {
  switch (a) {
    case Algorithm::kRoundRobin:
      return std::make_unique<RoundRobin>(seed);
    case Algorithm::kWeightedRoundRobin:
      return std::make_unique<WeightedRoundRobin>();
    case Algorithm::kLeastConnections:
      return std::make_unique<LeastConnections>(seed);
    case Algorithm::kRandom:
      return std::make_unique<PowerOfTwo>(seed);
    case Algorithm::kSourceHash:
      return std::make_unique<Maglev>();
  }
  return nullptr;
}

}  // namespace egw::balancer

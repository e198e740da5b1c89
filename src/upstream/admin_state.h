// AdminState: what an operator set on an endpoint (the admin API's `set
// endpoint ... state`): ready takes traffic; drain and maint take no new
// sessions or requests (what is in flight finishes, kept-alive connections
// to it are not reused); maint also pauses its health checks, so it is
// neither marked up nor down while it is worked on. Kept in the endpoint's
// shared state, so it survives reloads that keep the endpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace egw::upstream {

enum class AdminState : uint8_t { kReady, kDrain, kMaint };

inline const char* to_string(AdminState s) {
  switch (s) {
    case AdminState::kReady:
      return "ready";
    case AdminState::kDrain:
      return "drain";
    case AdminState::kMaint:
      return "maint";
  }
  return "unknown";
}

inline std::optional<AdminState> parse_admin_state(std::string_view s) {
  if (s == "ready") return AdminState::kReady;
  if (s == "drain") return AdminState::kDrain;
  if (s == "maint") return AdminState::kMaint;
  return std::nullopt;
}

}  // namespace egw::upstream

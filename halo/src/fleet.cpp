#include "halo/fleet.hpp"

namespace halo {

std::string_view to_string(FleetRefusal r) noexcept {
  switch (r) {
    case FleetRefusal::kNone:
      return "granted";
    case FleetRefusal::kHeldElsewhere:
      return "repairing-elsewhere";
    case FleetRefusal::kBudget:
      return "fleet-budget";
    case FleetRefusal::kRateLimited:
      return "fleet-rate-limited";
    case FleetRefusal::kBreakerOpen:
      return "fleet-breaker-open";
    case FleetRefusal::kStaleEvidence:
      return "repaired-elsewhere";
  }
  return "unknown";
}

}  // namespace halo

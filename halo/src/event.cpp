#include "halo/event.hpp"

namespace halo {

std::string_view to_string(EventKind k) noexcept {
  switch (k) {
    case EventKind::kEscalated:
      return "escalated";
    case EventKind::kHealed:
      return "healed";
    case EventKind::kBreakerOpened:
      return "breaker-opened";
    case EventKind::kBreakerClosed:
      return "breaker-closed";
    case EventKind::kCycleCompleted:
      return "cycle-completed";
    case EventKind::kWeakPointOpened:
      return "weak-point-opened";
    case EventKind::kWeakPointCritical:
      return "weak-point-critical";
    case EventKind::kRepairDispatched:
      return "repair-dispatched";
    case EventKind::kRepairFinished:
      return "repair-finished";
    case EventKind::kFleetUnavailable:
      return "fleet-unavailable";
    case EventKind::kFleetRejoined:
      return "fleet-rejoined";
  }
  return "?";
}

}  // namespace halo

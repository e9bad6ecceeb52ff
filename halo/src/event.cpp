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
  }
  return "?";
}

}  // namespace halo

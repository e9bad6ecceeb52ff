#include "halo/lifecycle.hpp"

namespace halo {

std::string_view to_string(WeakPointState s) noexcept {
  switch (s) {
    case WeakPointState::kOpen:
      return "open";
    case WeakPointState::kRepairing:
      return "repairing";
    case WeakPointState::kVerifying:
      return "verifying";
    case WeakPointState::kHealed:
      return "healed";
    case WeakPointState::kEscalated:
      return "escalated";
  }
  return "?";
}

std::string_view to_string(WeakPointFlag f) noexcept {
  switch (f) {
    case kFlapping:
      return "flapping";
    case kSilenced:
      return "silenced";
    case kInhibited:
      return "inhibited";
  }
  return "?";
}

std::string flags_text(std::uint8_t flags) {
  std::string out;
  for (const WeakPointFlag f : kWeakPointFlags) {
    if ((flags & f) == 0) continue;
    if (!out.empty()) out += ',';
    out += to_string(f);
  }
  return out;
}

}  // namespace halo

#include "octo/arm.hpp"

#include <algorithm>
#include <cmath>

namespace octo {

std::vector<ArmConfig> default_arms() {
  struct Default {
    const char* name;
    std::uint32_t parallel;
    bool blocking;
  };
  const Default kArms[] = {{"deploy", 2, true},  {"batch", 4, false},    {"streams", 2, true},
                           {"secrets", 1, true}, {"builds", 2, true},    {"watchers", 2, true},
                           {"cleanup", 2, true}, {"analytics", 2, false}};
  std::vector<ArmConfig> arms;
  for (const Default& d : kArms) {
    ArmConfig c;
    c.name = d.name;
    c.max_parallel = d.parallel;
    c.blocking = d.blocking;
    arms.push_back(std::move(c));
  }
  return arms;
}

std::chrono::nanoseconds backoff_delay(std::uint32_t attempt, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, double unit_random) noexcept {
  using std::chrono::nanoseconds;
  const auto cap = nanoseconds(max).count();
  const unsigned shift = std::min<std::uint32_t>(attempt == 0 ? 0 : attempt - 1, 40);
  // Saturate instead of overflowing: base * 2^shift compared against the cap in floating point.
  const double full = std::min<double>(
      static_cast<double>(nanoseconds(base).count()) * std::ldexp(1.0, static_cast<int>(shift)),
      static_cast<double>(cap));
  const double r = std::clamp(unit_random, 0.0, 1.0);
  return nanoseconds(static_cast<std::int64_t>(full / 2 + r * full / 2));
}

}  // namespace octo

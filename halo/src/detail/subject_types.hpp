// The subject types the built-in analyzers report, by index: the blast-radius cap and the
// systemic breaker count subjects per type. Other (user) types share the last index.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include "halo/engine.hpp"
#include "halo/state.hpp"

namespace halo::detail {

inline constexpr std::array<std::string_view, 8> kSubjectTypes = {
    "agent", "endpoint", "squad", "env", "artifact", "check", "graft", "patrol"};
inline constexpr std::size_t kOtherType = kSubjectTypes.size();
static_assert(std::tuple_size_v<TypeCounts> == kSubjectTypes.size() + 1,
              "TypeCounts (halo/engine.hpp) holds one count per type and one for the others");

// A few length-and-bytes compares: cheap enough for every weak point of a cycle.
inline std::size_t subject_type_index(std::string_view type) noexcept {
  for (std::size_t i = 0; i < kSubjectTypes.size(); ++i)
    if (type == kSubjectTypes[i]) return i;
  return kOtherType;
}

// Subjects of each built-in type the snapshot holds (kOtherType: 0, unknown).
inline TypeCounts subject_counts(const Snapshot& s) {
  TypeCounts c{};
  c[0] = s.agent_count;
  c[1] = s.endpoints.size();
  c[2] = s.squads.size();
  c[3] = s.env ? s.env->snapshots.size() : 0;
  c[4] = s.artifacts.size();
  c[5] = s.integrity_checks ? s.integrity_checks->size() : 0;
  c[6] = s.grafts.size();
  c[7] = s.patrol_checks ? s.patrol_checks->size() : 0;
  return c;
}

}  // namespace halo::detail

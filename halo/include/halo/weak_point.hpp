// halo/weak_point.hpp — issues grouped by subject: what the strategies repair.
//
// Every issue of kMedium or worse about one subject (an agent, an endpoint, ...) joins that
// subject's weak point. The fingerprint hashes the subject only, so the same weak point keeps its
// id across cycles and processes; the engine counts how many cycles in a row it has been seen and
// escalates its severity one level once that reaches EngineConfig::escalate_after.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "halo/issue.hpp"
#include "halo/lifecycle.hpp"

namespace halo {

// Grouping writes weak points over the recycled ones of an old cycle, every field;
// weak_point.cpp checks the field count at compile time.
struct WeakPoint {
  std::string id{};  // "wp-" + 16 hex digits of the fingerprint
  std::uint64_t fingerprint = 0;
  std::string subject_type{};
  std::string subject_id{};
  Level severity = Level::kMedium;       // after escalation
  Level base_severity = Level::kMedium;  // worst issue of the group
  std::string summary{};
  std::vector<Issue> issues{};
  std::uint32_t cycles_seen = 1;  // consecutive cycles, this one included
  std::uint32_t escalation = 0;   // levels added (persistence, failed repairs)
  // Where its repair stands (see lifecycle.hpp), set by the engine's cycle.
  WeakPointState state = WeakPointState::kOpen;
  std::uint8_t flags = 0;  // WeakPointFlag bits
  // The escalation ladder's step a strategy should plan: how many repairs of this subject
  // failed (or failed their verification) since it last was healthy.
  std::uint32_t step = 0;

  // True when some issue of the group has this rule.
  bool has_rule(std::string_view rule) const noexcept;
};

// XXH3-64 of the subject: stable across cycles, runs and machines.
std::uint64_t fingerprint(std::string_view subject_type, std::string_view subject_id) noexcept;
// WeakPoint::id for a fingerprint: "wp-" and 16 lower-case hex digits.
std::string weak_point_id(std::uint64_t fingerprint);

// Groups the issues of kMedium or worse by subject, ordered by severity (worst first), then
// fingerprint. Runs in parallel where the input is large (call inside a TBB arena to bound it).
std::vector<WeakPoint> group_weak_points(const std::vector<AnalyzerResult>& results);

}  // namespace halo

// halo/issue.hpp — what an analyzer reports: issues about subjects, with a severity.
//
// An Issue names its subject (`subject_type` "agent", "endpoint", ...; `subject_id` "a-17") so
// that issues about the same thing group into one weak point, and a `rule` ("offline", "down",
// ...) that strategies match on. Severities below kMedium never form weak points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace halo {

// Issue severity, ordered: kInfo (healthy notes) < kLow < kMedium < kHigh < kCritical.
enum class Level : std::uint8_t { kInfo, kLow, kMedium, kHigh, kCritical };
std::string_view to_string(Level l) noexcept;
// Accepts exactly the names to_string() gives; throws std::invalid_argument naming the text.
Level parse_level(std::string_view text);

struct Issue {
  std::string id{};        // "agent-offline-a-17": unique within one analysis
  std::string analyzer{};  // the analyzer that reported it
  Level severity = Level::kInfo;
  std::string subject_type{};  // "agent", "squad", "endpoint", "env", "artifact", "check", ...
  std::string subject_id{};
  std::string rule{};  // "offline", "failure-rate", "down", "slow", "errors", "missing-keys", ...
  std::string description{};
  std::vector<std::pair<std::string, std::string>> data{};

  // The value of `key` in data, or empty.
  std::string_view get(std::string_view key) const noexcept;
};

struct AnalyzerResult {
  std::string name{};
  std::vector<Issue> issues{};
  std::vector<std::string> recommendations{};
  // Figures the analyzer computed, e.g. "health_score" for swarm patrol.
  std::map<std::string, double> metrics{};
  // Set when the analyzer threw: the cycle goes on and this result carries one kHigh issue.
  std::string error{};
  // Issues the engine refused (removed from `issues`): an empty id, a severity outside Level,
  // an empty subject above kInfo, an id used twice in one analysis, or (from a service's own
  // analyzer) a built-in subject the snapshot does not hold. `rejections` keeps the first five
  // reasons.
  std::size_t rejected = 0;
  std::vector<std::string> rejections{};
  double duration_ms = 0.0;
};

}  // namespace halo

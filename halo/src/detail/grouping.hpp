// detail/grouping.hpp (private to octohalo::halo) — group_weak_points without its final sort, for
// the engine, which sorts once after escalation has changed severities.
#pragma once

#include <vector>

#include "halo/weak_point.hpp"

namespace halo::detail {

// The order of a cycle's weak points: worst severity first, then fingerprint.
inline bool worse_first(const WeakPoint& a, const WeakPoint& b) noexcept {
  if (a.severity != b.severity) return a.severity > b.severity;
  return a.fingerprint < b.fingerprint;
}

// Unsorted (`sorted` false), the weak points come in fingerprint order: the engine's tracking
// relies on it (its shards' weak points are then contiguous). `storage` lends its elements to
// the result: they are assigned over (see weak_point.cpp), so their strings and vectors keep
// their buffers.
std::vector<WeakPoint> group_weak_points(const std::vector<AnalyzerResult>& results, bool sorted,
                                         std::vector<WeakPoint> storage = {});

}  // namespace halo::detail

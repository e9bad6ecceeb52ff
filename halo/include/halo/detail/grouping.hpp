// halo/detail/grouping.hpp — group_weak_points without its final sort, for the engine, which
// sorts once after escalation has changed severities.
#pragma once

#include <vector>

#include "halo/weak_point.hpp"

namespace halo::detail {

std::vector<WeakPoint> group_weak_points(const std::vector<AnalyzerResult>& results, bool sorted);

}  // namespace halo::detail

// Analyzer results are checked before they count: what a service's own analyzer reports reaches
// the repair strategies only if it is well formed and, about a built-in subject, true of the
// snapshot. A rejected issue is removed from its result and counted on it (AnalyzerResult::
// rejected, rejections); the engine audits each analyzer's rejections once per cycle.
//
// Checked for every analyzer: an empty id; a severity outside Level; above kInfo, an empty
// subject type or subject id (info notes such as "all agents healthy" name no subject); an id
// already used in this analysis. For analyzers the engine did not build itself:
// a subject of a table type (agent, endpoint, squad, artifact, graft) that the snapshot does not
// hold. Cost: nothing beyond a compare per issue for the built-in analyzers when no other
// analyzer reported; one hash lookup per issue otherwise.
#pragma once

#include <cstddef>
#include <vector>

#include "halo/issue.hpp"
#include "halo/state.hpp"

namespace halo::detail {

// `trusted[i]`: results[i] came from a built-in analyzer (its subjects come from the snapshot).
void validate_results(std::vector<AnalyzerResult>& results, const std::vector<bool>& trusted,
                      const Snapshot& snapshot, const SystemState& state);

// The most rejection reasons a result keeps (its `rejected` count has them all).
inline constexpr std::size_t kRejectionsKept = 5;

}  // namespace halo::detail

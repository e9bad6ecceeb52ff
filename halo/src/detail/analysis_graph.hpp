// detail/analysis_graph.hpp (private to octohalo::halo) — a cycle's analysis step: every
// selected analyzer on one snapshot, at the same time.
#pragma once

#include <tbb/task_arena.h>

#include <memory>
#include <vector>

#include "halo/analyzer.hpp"

namespace halo::detail {

// Runs each analyzer as one node of a tbb::flow::graph inside `arena` (they do not depend on
// each other) and returns their results in the order given. An analyzer that throws yields a
// result with `error` set and one high issue naming it; the others are unaffected. Under TSan
// the analyzers run one after another on the calling thread (detail/parallel.hpp).
std::vector<AnalyzerResult> run_analyzers(tbb::task_arena& arena,
                                          const std::vector<std::shared_ptr<Analyzer>>& selected,
                                          const Snapshot& snapshot);

}  // namespace halo::detail

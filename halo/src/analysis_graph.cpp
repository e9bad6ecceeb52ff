// The analysis step on a tbb::flow::graph. Its own unit so that the UBSan vptr opt-out the flow
// graph needs (halo/CMakeLists.txt) covers this file only.
#include "detail/analysis_graph.hpp"

#include <tbb/flow_graph.h>

#include <chrono>
#include <exception>
#include <string>

#include "detail/parallel.hpp"

namespace halo::detail {

namespace {

AnalyzerResult run_analyzer(Analyzer& a, const Snapshot& s) {
  const auto t0 = std::chrono::steady_clock::now();
  AnalyzerResult r;
  bool threw = true;
  std::string error = "unknown exception";
  try {
    r = a.analyze(s);
    threw = false;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
  }
  if (threw) {
    r = AnalyzerResult{};
    r.error = error;
    Issue i;
    i.id = "analyzer-error-" + std::string(a.name());
    i.analyzer = std::string(a.name());
    i.severity = Level::kHigh;
    i.subject_type = "analyzer";
    i.subject_id = std::string(a.name());
    i.rule = "error";
    i.description = "analyzer " + std::string(a.name()) + " threw: " + error;
    r.issues.push_back(std::move(i));
  }
  r.name = std::string(a.name());
  r.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

std::vector<AnalyzerResult> run_analyzers(tbb::task_arena& arena,
                                          const std::vector<std::shared_ptr<Analyzer>>& selected,
                                          const Snapshot& snapshot) {
  std::vector<AnalyzerResult> results(selected.size());
  if constexpr (kSerialForTsan) {
    // No TBB tasks at all under TSan: TBB recycles task memory across threads through libtbb,
    // where TSan cannot see it (detail/parallel.hpp).
    for (std::size_t i = 0; i < selected.size(); ++i)
      results[i] = run_analyzer(*selected[i], snapshot);
    return results;
  }
  arena.execute([&] {
    // The analyzers do not depend on each other: one broadcast feeding one node each.
    tbb::flow::graph g;
    tbb::flow::broadcast_node<tbb::flow::continue_msg> start(g);
    std::vector<std::unique_ptr<tbb::flow::continue_node<tbb::flow::continue_msg>>> nodes;
    nodes.reserve(selected.size());
    for (std::size_t i = 0; i < selected.size(); ++i) {
      nodes.push_back(std::make_unique<tbb::flow::continue_node<tbb::flow::continue_msg>>(
          g, [&, i](const tbb::flow::continue_msg&) {
            results[i] = run_analyzer(*selected[i], snapshot);
            return tbb::flow::continue_msg();
          }));
      tbb::flow::make_edge(start, *nodes.back());
    }
    start.try_put(tbb::flow::continue_msg());
    g.wait_for_all();
  });
  return results;
}

}  // namespace halo::detail

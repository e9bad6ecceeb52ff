// HALO cycle cost over large states: snapshot, analyzers on the flow graph, grouping, escalation
// bookkeeping, strategies and (dry-run) dispatch with its audit entries.
//
// Args: subjects (agents + endpoints + grafts in equal thirds, 1% unhealthy), arena concurrency.
// BM_HaloCycle_Live*: the same, with live traffic counters on every endpoint.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>

#include "halo/engine.hpp"

namespace {

struct World {
  std::shared_ptr<octo::ManualClock> clock = std::make_shared<octo::ManualClock>();
  octo::Ticker ticker{
      {.resolution = std::chrono::milliseconds(10), .clock = clock, .own_thread = false}};
  halo::SystemState state{clock, &ticker};

  explicit World(std::int64_t subjects) {
    const std::int64_t third = subjects / 3;
    // Names built with append: GCC 12 at -O3 warns falsely (-Wrestrict) on "literal" + string.
    auto name = [](const char* prefix, std::int64_t i) {
      std::string s(prefix);
      s.append(std::to_string(i));
      return s;
    };
    for (std::int64_t i = 0; i < third; ++i) {
      state.upsert_agent(
          {.id = name("agent-", i), .squad = name("s", i % 10), .online = i % 100 != 0});
      state.report_probe(name("/api/", i), i % 100 == 0 ? 503 : 200, 12.0);
    }
    for (std::int64_t i = 0; i < subjects - 2 * third; ++i)
      state.upsert_graft(
          {.id = name("graft-", i),
           .status = i % 100 == 0 ? halo::GraftStatus::kFailed : halo::GraftStatus::kInstalled});
  }
};

// The same world with live traffic counters on every endpoint (what a service records through
// its handles): 40 requests each, 1% failing half of them; 1% with a tail (3 in 40 at 2 s) that
// the p99 rule must read the histogram for and finds under its 2.5 s threshold.
struct LiveWorld : World {
  explicit LiveWorld(std::int64_t subjects) : World(subjects) {
    const std::int64_t third = subjects / 3;
    for (std::int64_t i = 0; i < third; ++i) {
      std::string path("/api/");
      path.append(std::to_string(i));
      halo::EndpointCounters& ep = state.endpoint(path);
      for (int r = 0; r < 40; ++r) {
        const bool tail = i % 100 == 50 && r < 3;
        ep.record(tail ? 2'000.0 : 4.0 + r % 5, i % 100 == 0 && r % 2 == 0);
      }
    }
  }
};

// Worlds are costly to build (a million subjects); both concurrencies share one per size.
World& world(std::int64_t subjects) {
  static std::map<std::int64_t, std::unique_ptr<World>> worlds;
  auto& w = worlds[subjects];
  if (!w) w = std::make_unique<World>(subjects);
  return *w;
}

LiveWorld& live_world(std::int64_t subjects) {
  static std::map<std::int64_t, std::unique_ptr<LiveWorld>> worlds;
  auto& w = worlds[subjects];
  if (!w) w = std::make_unique<LiveWorld>(subjects);
  return *w;
}

void run(benchmark::State& st, halo::Mode mode, World* live = nullptr, double quantile = 0.99) {
  World& w = live != nullptr ? *live : world(st.range(0));
  halo::EngineConfig cfg;
  cfg.thresholds.endpoint_slow_quantile = quantile;
  cfg.dry_run = true;
  cfg.concurrency = static_cast<int>(st.range(1));
  halo::Engine engine(w.state, cfg);
  // Steady state of a long-running engine: history full (older cycles are freed as new ones
  // arrive), weak points tracked, audit log at capacity.
  for (std::size_t i = 0; i <= cfg.history_limit; ++i) engine.run_cycle("warm-up", {}, mode);
  std::size_t weak_points = 0;
  halo::CycleTimings sum;
  for (auto _ : st) {
    auto c = engine.run_cycle("bench", {}, mode);
    weak_points = c->weak_points.size();
    const auto& t = c->timings;
    sum.analyze += t.analyze;
    sum.group += t.group;
    sum.track += t.track;
    sum.plan += t.plan;
    sum.dispatch += t.dispatch;
    sum.snapshot += t.snapshot;
    sum.record += t.record;
    benchmark::DoNotOptimize(c);
  }
  st.counters["weak_points"] = static_cast<double>(weak_points);
  const double n = static_cast<double>(st.iterations());
  st.counters["analyze_ms"] = sum.analyze / n;
  st.counters["group_ms"] = sum.group / n;
  st.counters["track_ms"] = sum.track / n;
  st.counters["plan_ms"] = sum.plan / n;
  st.counters["dispatch_ms"] = sum.dispatch / n;
  st.counters["snapshot_ms"] = sum.snapshot / n;
  st.counters["record_ms"] = sum.record / n;
  st.SetItemsProcessed(st.iterations() * st.range(0));
}

void BM_HaloCycle_Full(benchmark::State& st) { run(st, halo::Mode::kFull); }
void BM_HaloCycle_Light(benchmark::State& st) { run(st, halo::Mode::kLight); }

void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {1'000, 100'000, 1'000'000})
    for (std::int64_t c : {1, 2}) b->Args({n, c});
  b->ArgNames({"subjects", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_HaloCycle_Full)->Apply(sizes);
BENCHMARK(BM_HaloCycle_Light)->Apply(sizes);

// Live endpoint counters, judged on the window's p99 (the default) or on its mean (quantile 0,
// the original's rule): the p99's added cost is the ratio of the two.
void BM_HaloCycle_LiveP99(benchmark::State& st) {
  run(st, halo::Mode::kFull, &live_world(st.range(0)), 0.99);
}
void BM_HaloCycle_LiveMean(benchmark::State& st) {
  run(st, halo::Mode::kFull, &live_world(st.range(0)), 0.0);
}
void live_sizes(benchmark::internal::Benchmark* b) {
  b->Args({1'000'000, 2})
      ->ArgNames({"subjects", "threads"})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}
BENCHMARK(BM_HaloCycle_LiveP99)->Apply(live_sizes);
BENCHMARK(BM_HaloCycle_LiveMean)->Apply(live_sizes);

}  // namespace

BENCHMARK_MAIN();

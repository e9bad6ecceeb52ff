// halo/analyzer.hpp — analyzers: read a snapshot, report issues.
//
// An analyzer is light (runs in light and full cycles) or full-only. The engine runs the
// selected analyzers as a tbb::flow::graph over one snapshot; built-ins split big collections
// with tbb::parallel_for. An analyzer that throws does not stop the cycle: its result carries
// the error and one kHigh issue saying so.
//
//   class DiskSpace : public halo::Analyzer {
//     std::string_view name() const noexcept override { return "disk-space"; }
//     halo::AnalyzerResult analyze(const halo::Snapshot& s) override { ... }
//   };
//   engine.add_analyzer(std::make_unique<DiskSpace>());
#pragma once

#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include "halo/issue.hpp"
#include "halo/state.hpp"

namespace halo {

class Analyzer {
 public:
  virtual ~Analyzer() = default;
  virtual std::string_view name() const noexcept = 0;
  // True when the analyzer also runs in light cycles.
  virtual bool light() const noexcept { return false; }
  // Called from a TBB worker; may run concurrently with other analyzers on the same snapshot.
  virtual AnalyzerResult analyze(const Snapshot& snapshot) = 0;
};

// The original's rules, as defaults.
struct Thresholds {
  // agent-health: offline, or no heartbeat for longer than this: critical.
  std::chrono::nanoseconds agent_unseen_after = std::chrono::minutes(5);
  // squad-efficiency: failed / (completed + failed) above this: critical; needs min tasks.
  double squad_failure_rate = 0.30;
  std::uint64_t squad_min_tasks = 1;
  // endpoint-health: probe status 0 or >= 500: critical; a probe slower than endpoint_slow_ms:
  // high; window error rate at or above `endpoint_error_rate` with at least
  // `endpoint_min_requests` requests: critical.
  double endpoint_slow_ms = 2500.0;
  double endpoint_error_rate = 0.25;
  std::uint64_t endpoint_min_requests = 20;
  // endpoint-health's latency rule over the window's requests: their `endpoint_slow_quantile`
  // (default p99) slower than endpoint_slow_ms: high, given endpoint_min_requests requests.
  // Judged on the latency histogram without false alarms: slow only when that quantile's bucket
  // lies wholly above endpoint_slow_ms, so one within the threshold's bucket (at most 1/8 above
  // it) passes. 0 judges the window's mean instead, with no minimum (the original's rule).
  // make_endpoint_health() throws std::invalid_argument outside [0, 1].
  double endpoint_slow_quantile = 0.99;
  // swarm-patrol and repository-integrity checks: time allowed for all of them together.
  std::chrono::nanoseconds check_timeout = std::chrono::seconds(5);
};

// The seven built-ins: agent-health, squad-efficiency, endpoint-health,
// environment-consistency, repository-integrity, graft, swarm-patrol.
std::vector<std::unique_ptr<Analyzer>> builtin_analyzers(const Thresholds& thresholds = {});

std::unique_ptr<Analyzer> make_agent_health(const Thresholds& t = {});
std::unique_ptr<Analyzer> make_squad_efficiency(const Thresholds& t = {});
std::unique_ptr<Analyzer> make_endpoint_health(const Thresholds& t = {});
std::unique_ptr<Analyzer> make_environment_consistency();
std::unique_ptr<Analyzer> make_repository_integrity(const Thresholds& t = {});
std::unique_ptr<Analyzer> make_graft();
std::unique_ptr<Analyzer> make_swarm_patrol(const Thresholds& t = {});

}  // namespace halo

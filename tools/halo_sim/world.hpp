// The simulated service: agents, squads, endpoints, environment, files, grafts and patrol checks
// that faults break and the Octopus handlers repair, reporting into a halo::SystemState.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "halo/state.hpp"
#include "octo/task.hpp"

namespace halo_sim {

class World {
 public:
  static constexpr int kAgents = 200, kSquads = 10, kEndpoints = 20, kFiles = 8, kGrafts = 10;
  static inline const char* const kPatrol[] = {"dns",   "health", "env-drift",
                                               "quota", "build",  "dependency"};

  explicit World(std::shared_ptr<const octo::Clock> clock);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  halo::SystemState& state() noexcept { return state_; }

  // Periodic service chores: heartbeats of live agents, endpoint probes, squad task results.
  void heartbeat_round(std::uint64_t round);

  // One simulated request on endpoint `i`; true when it failed. Called from request threads.
  bool request(std::uint32_t i, std::uint64_t random) noexcept {
    const int p = error_permille_[i].load(std::memory_order_relaxed);
    const bool failed = p > 0 && static_cast<int>(random % 1000) < p;
    counters_[i]->record(failed ? 40.0 : 4.0, failed);
    return failed;
  }

  // Faults; each returns the subjects it broke ("type:id").
  std::vector<std::string> crash_agents(int count);
  std::vector<std::string> break_endpoints(int count, double error_rate);
  std::vector<std::string> drift_env();
  std::vector<std::string> corrupt_file();
  std::vector<std::string> break_graft();
  std::vector<std::string> fail_patrol_dependency();
  // Safety faults (see scenario.hpp).
  // An agent whose repairs report success and fix nothing.
  std::vector<std::string> lying_agent();
  // An endpoint that breaks again `flaps` times, 1.5 s after each repair.
  std::vector<std::string> flapping_endpoint(int flaps);
  // kParent goes down and takes the endpoints it serves (kChildren) with it; reviving it brings
  // them back. The parent comes first in the result.
  std::vector<std::string> parent_down();
  // A graft broken during a maintenance window.
  std::vector<std::string> break_maintained_graft();
  // The first `share` of the agents stop reaching the service (no heartbeats, repairs fail)
  // until end_partition().
  std::vector<std::string> partition(double share);
  void end_partition();
  // Re-breaks flapping endpoints whose time came. Called by the sim's loop.
  void tick();

  static constexpr int kParent = kAgents - 1, kLiar = kAgents - 2, kFlapper = 10,
                       kMaintainedGraft = 7;
  static constexpr int kChildren[] = {15, 16, 17, 18, 19};
  // "type:id" of each dependency the parent-down fault relies on: {child, parent}.
  std::vector<std::pair<std::string, std::string>> dependencies() const;

  // Repairs the handler ran for `subject`, at these world-clock seconds.
  std::vector<double> repairs_of(const std::string& subject) const;
  // Repairs of a subject that was healthy when the repair ran (a storm's signature).
  std::uint64_t re_repairs() const noexcept { return re_repairs_.load(); }

  // The Octopus handler for every repair type HALO dispatches.
  octo::Outcome repair(const octo::Task& task);

  // Seconds on the world clock when `subject` was last repaired, or -1.
  double repaired_at(const std::string& subject) const;
  double now_s() const noexcept;

 private:
  void repaired(const std::string& subject);
  // Counts a repair of `subject`; `healthy` says whether it needed none.
  void count_repair(const std::string& subject, bool healthy);
  octo::Outcome revive(int i, const std::string& id);

  std::shared_ptr<const octo::Clock> clock_;
  halo::SystemState state_;
  std::vector<std::string> agents_;
  std::unique_ptr<std::atomic<bool>[]> alive_;
  std::vector<std::string> endpoints_;
  std::vector<halo::EndpointCounters*> counters_;
  std::unique_ptr<std::atomic<int>[]> error_permille_;
  std::map<std::string, std::string> baseline_;
  std::filesystem::path dir_;
  std::vector<std::string> files_;
  std::vector<std::string> grafts_;
  std::unique_ptr<std::atomic<int>[]> patrol_;  // CheckStatus per kPatrol entry
  std::atomic<int> next_victim_{0};
  mutable std::mutex mu_;  // repaired_
  std::map<std::string, double> repaired_;
  std::map<std::string, std::vector<double>> repairs_;  // under mu_
  std::atomic<std::uint64_t> re_repairs_{0};
  std::unique_ptr<std::atomic<bool>[]> unreachable_;
  std::atomic<bool> liar_{false};
  std::atomic<int> flaps_left_{0};
  std::atomic<double> rebreak_at_{-1};
};

}  // namespace halo_sim

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

  // The Octopus handler for every repair type HALO dispatches.
  octo::Outcome repair(const octo::Task& task);

  // Seconds on the world clock when `subject` was last repaired, or -1.
  double repaired_at(const std::string& subject) const;
  double now_s() const noexcept;

 private:
  void repaired(const std::string& subject);

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
};

}  // namespace halo_sim

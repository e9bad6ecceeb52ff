// halo/strategy.hpp — repair strategies: turn a weak point into an Octopus task.
//
// For each weak point the engine asks its strategies in order; the first that returns a task
// wins (one task per weak point). A strategy with an escalation ladder plans by
// WeakPoint::step: step 0 is the first repair, each next step comes only after the previous
// one failed (or failed its verification); the last step repeats until the repair budget
// escalates the weak point. The task's payload is the subject's id (agent id, endpoint
// path, environment name, artifact path, check name, graft id); its type routes it to an arm
// through the executor's routing table (agent.* and repair.api.* -> deploy, env.* -> secrets,
// squad.* -> batch, build.* -> builds, graft.* -> streams, patrol.* -> watchers by default).
//
//   class Reboot : public halo::Strategy {
//     std::string_view name() const noexcept override { return "reboot"; }
//     std::optional<octo::Task> plan(const halo::WeakPoint& wp) const override { ... }
//   };
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "halo/weak_point.hpp"
#include "octo/task.hpp"

namespace halo {

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string_view name() const noexcept = 0;
  // A task for this weak point, or nullopt when the strategy does not apply. May be called from
  // several threads at once (for different weak points). May throw: the engine records the error
  // in the cycle and goes on.
  virtual std::optional<octo::Task> plan(const WeakPoint& weak_point) const = 0;
};

// revive-agent (agent.revive, then agent.redeploy; critical/high, dreamops), repair-endpoint
// (repair.api.endpoint, then repair.api.redeploy; high/normal, deploykeeper), environment-sync
// (env.sync, high/normal, envkeeper), optimize-squad (squad.rebalance, high, squadkeeper),
// code-quality (build.fix-imports for typecheck, build.relint for lint, build.restore-artifact for
// artifacts; normal, buildkeeper), repair-graft (graft.repair for failed, graft.install for
// pending; high/normal, graftkeeper), patrol-followup (patrol.followup, high/normal, watchkeeper).
std::vector<std::unique_ptr<Strategy>> builtin_strategies();

}  // namespace halo

#include "halo/strategy.hpp"

#include <string>

namespace halo {

namespace {

octo::Task task(std::string type, const WeakPoint& wp, octo::Priority p, std::string target) {
  octo::Task t;
  t.type = std::move(type);
  t.payload = wp.subject_id;
  t.priority = p;
  t.target_agents = {std::move(target)};
  return t;
}

// "high if critical else normal", the original's rule for most strategies.
octo::Priority high_if_critical(const WeakPoint& wp) {
  return wp.severity == Level::kCritical ? octo::Priority::kHigh : octo::Priority::kNormal;
}

class ReviveAgent final : public Strategy {
 public:
  std::string_view name() const noexcept override { return "revive-agent"; }
  std::optional<octo::Task> plan(const WeakPoint& wp) const override {
    if (wp.subject_type != "agent" || !wp.has_rule("offline")) return std::nullopt;
    // The ladder: a revive that did not bring the agent back is followed by a redeploy.
    return task(wp.step == 0 ? "agent.revive" : "agent.redeploy", wp,
                wp.severity == Level::kCritical ? octo::Priority::kCritical : octo::Priority::kHigh,
                "dreamops");
  }
};

class RepairEndpoint final : public Strategy {
 public:
  std::string_view name() const noexcept override { return "repair-endpoint"; }
  std::optional<octo::Task> plan(const WeakPoint& wp) const override {
    if (wp.subject_type != "endpoint") return std::nullopt;
    // The ladder: an endpoint the repair did not heal is redeployed.
    return task(wp.step == 0 ? "repair.api.endpoint" : "repair.api.redeploy", wp,
                high_if_critical(wp), "deploykeeper");
  }
};

class EnvironmentSync final : public Strategy {
 public:
  std::string_view name() const noexcept override { return "environment-sync"; }
  std::optional<octo::Task> plan(const WeakPoint& wp) const override {
    if (wp.subject_type != "env") return std::nullopt;
    return task("env.sync", wp, high_if_critical(wp), "envkeeper");
  }
};

class OptimizeSquad final : public Strategy {
 public:
  std::string_view name() const noexcept override { return "optimize-squad"; }
  std::optional<octo::Task> plan(const WeakPoint& wp) const override {
    if (wp.subject_type != "squad") return std::nullopt;
    if (wp.has_rule("failure-rate"))
      return task("squad.rebalance", wp, octo::Priority::kHigh, "squadkeeper");
    return task("squad.optimize", wp, octo::Priority::kNormal, "squadkeeper");
  }
};

class CodeQuality final : public Strategy {
 public:
  std::string_view name() const noexcept override { return "code-quality"; }
  std::optional<octo::Task> plan(const WeakPoint& wp) const override {
    if (wp.subject_type == "artifact")
      return task("build.restore-artifact", wp, octo::Priority::kNormal, "buildkeeper");
    if (wp.subject_type != "check") return std::nullopt;
    if (wp.has_rule("typecheck"))
      return task("build.fix-imports", wp, octo::Priority::kNormal, "buildkeeper");
    if (wp.has_rule("lint"))
      return task("build.relint", wp, octo::Priority::kNormal, "buildkeeper");
    return task("build.check", wp, octo::Priority::kNormal, "buildkeeper");
  }
};

class RepairGraft final : public Strategy {
 public:
  std::string_view name() const noexcept override { return "repair-graft"; }
  std::optional<octo::Task> plan(const WeakPoint& wp) const override {
    if (wp.subject_type != "graft") return std::nullopt;
    const auto p = wp.severity >= Level::kHigh ? octo::Priority::kHigh : octo::Priority::kNormal;
    if (wp.has_rule("failed")) return task("graft.repair", wp, p, "graftkeeper");
    return task("graft.install", wp, p, "graftkeeper");
  }
};

class PatrolFollowup final : public Strategy {
 public:
  std::string_view name() const noexcept override { return "patrol-followup"; }
  std::optional<octo::Task> plan(const WeakPoint& wp) const override {
    if (wp.subject_type != "patrol") return std::nullopt;
    return task("patrol.followup", wp, high_if_critical(wp), "watchkeeper");
  }
};

}  // namespace

std::vector<std::unique_ptr<Strategy>> builtin_strategies() {
  std::vector<std::unique_ptr<Strategy>> v;
  v.push_back(std::make_unique<ReviveAgent>());
  v.push_back(std::make_unique<RepairEndpoint>());
  v.push_back(std::make_unique<EnvironmentSync>());
  v.push_back(std::make_unique<OptimizeSquad>());
  v.push_back(std::make_unique<CodeQuality>());
  v.push_back(std::make_unique<RepairGraft>());
  v.push_back(std::make_unique<PatrolFollowup>());
  return v;
}

}  // namespace halo

// Every built-in strategy: the task type, priority and target it plans for each severity, and
// the ladder's next steps.
#include "halo/strategy.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace {

using halo::Level;
using octo::Priority;

std::optional<octo::Task> plan(const std::string& subject_type, const std::string& rule,
                               Level severity, std::uint32_t step = 0) {
  halo::WeakPoint wp;
  wp.subject_type = subject_type;
  wp.subject_id = "s-1";
  wp.severity = severity;
  wp.step = step;
  wp.issues.push_back({.severity = severity, .subject_type = subject_type, .rule = rule});
  for (const auto& s : halo::builtin_strategies())
    if (auto t = s->plan(wp)) return t;
  return std::nullopt;
}

struct Expect {
  const char* subject_type;
  const char* rule;
  Level severity;
  std::uint32_t step;
  const char* type;
  Priority priority;
  const char* target;
};

TEST(BuiltinStrategies, TaskTypePriorityAndTargetAtEachSeverity) {
  const Expect cases[] = {
      {"agent", "offline", Level::kCritical, 0, "agent.revive", Priority::kCritical, "dreamops"},
      {"agent", "offline", Level::kHigh, 0, "agent.revive", Priority::kHigh, "dreamops"},
      {"agent", "offline", Level::kCritical, 1, "agent.redeploy", Priority::kCritical, "dreamops"},
      {"agent", "offline", Level::kHigh, 2, "agent.redeploy", Priority::kHigh, "dreamops"},
      {"endpoint", "down", Level::kCritical, 0, "repair.api.endpoint", Priority::kHigh,
       "deploykeeper"},
      {"endpoint", "slow", Level::kHigh, 0, "repair.api.endpoint", Priority::kNormal,
       "deploykeeper"},
      {"endpoint", "errors", Level::kCritical, 1, "repair.api.redeploy", Priority::kHigh,
       "deploykeeper"},
      {"endpoint", "slow", Level::kMedium, 1, "repair.api.redeploy", Priority::kNormal,
       "deploykeeper"},
      {"env", "missing-keys", Level::kCritical, 0, "env.sync", Priority::kHigh, "envkeeper"},
      {"env", "mismatch", Level::kMedium, 0, "env.sync", Priority::kNormal, "envkeeper"},
      {"squad", "failure-rate", Level::kCritical, 0, "squad.rebalance", Priority::kHigh,
       "squadkeeper"},
      {"squad", "idle", Level::kMedium, 0, "squad.optimize", Priority::kNormal, "squadkeeper"},
      {"artifact", "checksum", Level::kHigh, 0, "build.restore-artifact", Priority::kNormal,
       "buildkeeper"},
      {"check", "typecheck", Level::kHigh, 0, "build.fix-imports", Priority::kNormal,
       "buildkeeper"},
      {"check", "lint", Level::kMedium, 0, "build.relint", Priority::kNormal, "buildkeeper"},
      {"check", "other", Level::kCritical, 0, "build.check", Priority::kNormal, "buildkeeper"},
      {"graft", "failed", Level::kHigh, 0, "graft.repair", Priority::kHigh, "graftkeeper"},
      {"graft", "failed", Level::kCritical, 0, "graft.repair", Priority::kHigh, "graftkeeper"},
      {"graft", "pending", Level::kMedium, 0, "graft.install", Priority::kNormal, "graftkeeper"},
      {"patrol", "red", Level::kCritical, 0, "patrol.followup", Priority::kHigh, "watchkeeper"},
      {"patrol", "amber", Level::kMedium, 0, "patrol.followup", Priority::kNormal, "watchkeeper"},
  };
  for (const Expect& e : cases) {
    SCOPED_TRACE(std::string(e.subject_type) + "/" + e.rule + " step " + std::to_string(e.step));
    const auto t = plan(e.subject_type, e.rule, e.severity, e.step);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->type, e.type);
    EXPECT_EQ(t->priority, e.priority);
    EXPECT_EQ(t->target_agents, std::vector<std::string>{e.target});
    EXPECT_EQ(t->payload, "s-1");
  }
}

TEST(BuiltinStrategies, AnAgentThatIsNotOfflineAndAnUnknownTypeGetNothing) {
  EXPECT_FALSE(plan("agent", "slow", Level::kCritical).has_value());
  EXPECT_FALSE(plan("widget", "broken", Level::kCritical).has_value());
}

}  // namespace

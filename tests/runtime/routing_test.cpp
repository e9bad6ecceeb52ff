#include "octo/routing.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "octo/executor.hpp"
#include "test_arms.hpp"  // tests/support

namespace {

using octo::ArmConfig;
using octo::Executor;
using octo_test::arm;
using octo_test::config_with;

TEST(Routing, ExactBeatsPrefixAndLongestPrefixWins) {
  auto cfg = config_with({arm("a"), arm("b"), arm("c")});
  cfg.routes.add_prefix("agent.", "a").add_prefix("agent.revive.", "b").add_exact("agent.x", "c");
  Executor ex(std::move(cfg));
  EXPECT_EQ(ex.resolve("agent.ping"), 0u);
  EXPECT_EQ(ex.resolve("agent.revive.now"), 1u);
  EXPECT_EQ(ex.resolve("agent.x"), 2u);
  EXPECT_EQ(ex.resolve("agentx"), std::nullopt);

  ex.set_routes(octo::RoutingTable().add_exact("run-batch-job", "b"));
  EXPECT_EQ(ex.resolve("run-batch-job"), 1u);
  EXPECT_EQ(ex.resolve("agent.ping"), std::nullopt);
  EXPECT_THROW(ex.set_routes(octo::RoutingTable().add_exact("t", "zzz")), std::invalid_argument);
  EXPECT_THROW(octo::RoutingTable().add_prefix("", "a"), std::invalid_argument);
}

// Prefixes are compared a word at a time: check every length around the 8-byte word against
// string_view::starts_with (longest match wins) on types built from a small alphabet, so most of
// them share long runs with some prefix, embedded NUL bytes included.
TEST(Routing, PrefixMatchAgreesWithStartsWithAtEveryLength) {
  std::mt19937 rng(7);
  const std::string alphabet("ab.\0", 4);
  auto random_string = [&](std::size_t len) {
    std::string out;
    for (std::size_t i = 0; i < len; ++i) out.push_back(alphabet[rng() % alphabet.size()]);
    return out;
  };
  std::vector<std::string> prefixes;
  std::set<std::string> seen;
  for (std::size_t len = 1; len <= 12; ++len) {
    for (int k = 0; k < 2; ++k) {
      std::string p = random_string(len);
      if (seen.insert(p).second) prefixes.push_back(p);
    }
  }
  std::vector<ArmConfig> arms;
  for (std::size_t i = 0; i < prefixes.size(); ++i) arms.push_back(arm("arm" + std::to_string(i)));
  auto cfg = config_with(arms);
  cfg.routes = {};
  for (std::size_t i = 0; i < prefixes.size(); ++i)
    cfg.routes.add_prefix(prefixes[i], "arm" + std::to_string(i));
  Executor ex(std::move(cfg));
  int matched = 0;
  for (int n = 0; n < 20000; ++n) {
    // Half the types extend a prefix, so matches and near misses at each length are common.
    std::string type = n % 2 == 0 ? prefixes[rng() % prefixes.size()] : std::string();
    if (n % 4 == 0 && !type.empty()) type.pop_back();
    type += random_string(rng() % 10);
    std::optional<octo::ArmId> expected;
    std::size_t best = 0;
    for (std::size_t i = 0; i < prefixes.size(); ++i) {
      if (std::string_view(type).starts_with(prefixes[i]) && prefixes[i].size() > best) {
        best = prefixes[i].size();
        expected = *ex.arm_id("arm" + std::to_string(i));
      }
    }
    ASSERT_EQ(ex.resolve(type), expected) << "type of " << type.size() << " bytes";
    matched += expected.has_value();
  }
  EXPECT_GT(matched, 5000);
  EXPECT_LT(matched, 19000);
}

TEST(Routing, DefaultRoutesCoverTheOriginalTypes) {
  Executor ex;
  EXPECT_EQ(ex.resolve("run-batch-job"), ex.arm_id("batch"));
  EXPECT_EQ(ex.resolve("repair.api.endpoint"), ex.arm_id("deploy"));
  EXPECT_EQ(ex.resolve("env.sync"), ex.arm_id("secrets"));
  EXPECT_EQ(ex.resolve("squad.rebalance"), ex.arm_id("batch"));
  EXPECT_EQ(ex.resolve("build.fix-imports"), ex.arm_id("builds"));
  EXPECT_EQ(ex.resolve("graft.repair"), ex.arm_id("streams"));
  EXPECT_EQ(ex.resolve("patrol.dns"), ex.arm_id("watchers"));
  EXPECT_EQ(ex.resolve("cleanup"), ex.arm_id("cleanup"));
}

}  // namespace

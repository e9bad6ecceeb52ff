#include "halo/analyzer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>

#include "manual_state.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;

struct Rig : octo_test::ManualState {
  halo::AnalyzerResult run(halo::Analyzer& a) { return a.analyze(*state.snapshot()); }
};

std::vector<halo::Issue> real(const halo::AnalyzerResult& r) {
  std::vector<halo::Issue> v;
  for (const auto& i : r.issues)
    if (i.severity != halo::Level::kInfo) v.push_back(i);
  return v;
}

TEST(AgentHealth, UnseenAtAndJustOverFiveMinutes) {
  Rig rig;
  auto a = halo::make_agent_health();
  EXPECT_TRUE(a->light());
  rig.state.upsert_agent({.id = "a1"});
  rig.clock->advance(5min);
  auto r = rig.run(*a);
  EXPECT_TRUE(real(r).empty());
  ASSERT_EQ(r.issues.size(), 1u);  // the healthy note, as the original
  EXPECT_EQ(r.issues[0].severity, halo::Level::kInfo);
  rig.clock->advance(1ns);
  auto issues = real(rig.run(*a));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].id, "agent-offline-a1");
  EXPECT_EQ(issues[0].severity, halo::Level::kCritical);
  EXPECT_EQ(issues[0].get("reason"), "unseen");
}

TEST(AgentHealth, OfflineIsCriticalAndConfigurable) {
  Rig rig;
  auto a = halo::make_agent_health({.agent_unseen_after = 1s});
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.state.upsert_agent({.id = "a2"});
  rig.clock->advance(1s);
  auto issues = real(rig.run(*a));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].subject_id, "a1");
  EXPECT_EQ(issues[0].get("reason"), "offline");
  rig.clock->advance(1ns);
  EXPECT_EQ(real(rig.run(*a)).size(), 2u);
}

TEST(AgentHealth, ScansLargePopulationsInOrder) {
  Rig rig;
  for (int i = 0; i < 5000; ++i)
    rig.state.upsert_agent({.id = std::to_string(i), .online = i % 100 != 7});
  auto issues = real(rig.run(*halo::make_agent_health()));
  ASSERT_EQ(issues.size(), 50u);
  for (std::size_t k = 0; k < issues.size(); ++k)
    EXPECT_EQ(issues[k].subject_id, std::to_string(k * 100 + 7));
}

// After a repair the squad is judged on the tasks since it (its counts then are the
// baseline), so the failures that caused the repair do not keep it failing.
TEST(SquadEfficiency, AfterARepairOnlyTheTasksSinceCount) {
  Rig rig;
  auto a = halo::make_squad_efficiency();
  rig.state.upsert_squad({.id = "q", .completed = 5, .failed = 5});
  EXPECT_EQ(rig.run(*a).issues.at(0).id, "squad-failure-q");
  rig.state.mark_repaired("squad", "q");
  EXPECT_EQ(rig.run(*a).issues.at(0).rule, "healthy") << "no task since: nothing to judge";
  rig.state.record_squad_task("q", true, 1.0);
  rig.state.record_squad_task("q", true, 1.0);
  EXPECT_EQ(rig.run(*a).issues.at(0).rule, "healthy");
  rig.state.record_squad_task("q", false, 1.0);
  rig.state.record_squad_task("q", false, 1.0);
  EXPECT_EQ(rig.run(*a).issues.at(0).id, "squad-failure-q") << "half of the new tasks failed";
}

TEST(SquadEfficiency, FailureRateThresholdAndIdleSquads) {
  Rig rig;
  auto a = halo::make_squad_efficiency();
  EXPECT_FALSE(a->light());
  rig.state.upsert_squad({.id = "at", .completed = 7, .failed = 3});      // 30%: not above
  rig.state.upsert_squad({.id = "over", .completed = 69, .failed = 31});  // 31%
  rig.state.upsert_squad({.id = "idle"});
  auto r = rig.run(*a);
  std::vector<std::string> ids;
  for (const auto& i : r.issues)
    ids.push_back(i.id + ":" + std::string(halo::to_string(i.severity)));
  EXPECT_EQ(ids, (std::vector<std::string>{"squad-failure-over:critical", "squad-idle-idle:low"}));
  ASSERT_EQ(r.recommendations.size(), 1u);
}

TEST(EndpointHealth, ProbeStatusAndLatencyThresholds) {
  Rig rig;
  auto a = halo::make_endpoint_health();
  rig.state.report_probe("/ok", 499, 2500.0);
  rig.state.report_probe("/down", 500, 1.0);
  rig.state.report_probe("/unreachable", 0, 1.0);
  rig.state.report_probe("/slow", 200, 2500.5);
  std::vector<std::string> got;
  for (const auto& i : real(rig.run(*a)))
    got.push_back(i.id + ":" + std::string(halo::to_string(i.severity)));
  EXPECT_EQ(got, (std::vector<std::string>{"endpoint-down-/down:critical",
                                           "endpoint-down-/unreachable:critical",
                                           "endpoint-slow-/slow:high"}));
}

TEST(EndpointHealth, WindowErrorRateNeedsMinimumVolume) {
  Rig rig;
  auto a = halo::make_endpoint_health();
  auto& ep = rig.state.endpoint("/api");
  for (int i = 0; i < 19; ++i) ep.record(5.0, true);  // 100% errors but 19 requests
  EXPECT_TRUE(real(rig.run(*a)).empty());
  ep.record(5.0, false);  // 20 requests, 95%
  auto issues = real(rig.run(*a));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].rule, "errors");
  EXPECT_EQ(issues[0].severity, halo::Level::kCritical);

  auto& ep2 = rig.state.endpoint("/edge");
  for (int i = 0; i < 100; ++i) ep2.record(5.0, i < 24);  // 24%: below 25%
  issues = real(rig.run(*a));
  EXPECT_EQ(issues.size(), 1u);
  ep2.record(5.0, true);
  ep2.record(5.0, true);  // 26/102 = 25.5%
  EXPECT_EQ(real(rig.run(*a)).size(), 2u);
}

// 98 requests at 10 ms and 2 at `tail_ms`: the 99th percentile (rank 99) is the tail.
void record_tail(halo::EndpointCounters& ep, double tail_ms) {
  for (int i = 0; i < 98; ++i) ep.record(10.0, false);
  ep.record(tail_ms, false);
  ep.record(tail_ms, false);
}

std::vector<std::string> slow_ids(Rig& rig, halo::Analyzer& a) {
  std::vector<std::string> ids;
  for (const auto& i : real(rig.run(a)))
    if (i.rule == "slow") ids.push_back(i.id);
  return ids;
}

TEST(EndpointHealth, TheWindowsP99AtAndBesideTheThreshold) {
  Rig rig;
  auto a = halo::make_endpoint_health();  // p99 over 2,500 ms
  record_tail(rig.state.endpoint("/at"), 2'500.0);
  record_tail(rig.state.endpoint("/below"), 2'400.0);
  // One bucket past the threshold's (buckets are 1/8 of a power of two wide).
  record_tail(rig.state.endpoint("/over"), 2'500.0 * 1.125);
  const auto ids = slow_ids(rig, *a);
  EXPECT_EQ(ids, std::vector<std::string>{"endpoint-slow-/over"});
  auto issues = real(rig.run(*a));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].severity, halo::Level::kHigh);
  EXPECT_EQ(issues[0].get("requests"), "100");
  const double p99 = std::stod(std::string(issues[0].get("p99_ms")));
  EXPECT_NEAR(p99, 2'812.5, 2'812.5 * halo::LatencyWindow::Buckets::kRelativeError);
  // The mean of /over is 66 ms: the mean rule would not see its tail.
  EXPECT_LT(rig.state.endpoint("/over").mean_latency_ms(), 100.0);
}

// No false alarm from a bucket's midpoint: a p99 of 2,400 ms lies in the bucket 2,359-2,621 ms,
// whose midpoint (2,490 ms) is past a 2,450 ms threshold; the p99 itself is not.
TEST(EndpointHealth, AP99UnderTheThresholdInItsBucketIsNotSlowWhateverTheMidpoint) {
  Rig rig;
  record_tail(rig.state.endpoint("/near"), 2'400.0);
  ASSERT_GT(rig.state.endpoint("/near").latency().quantile_ms(0.99), 2'450.0);
  auto a = halo::make_endpoint_health({.endpoint_slow_ms = 2'450.0});
  EXPECT_TRUE(slow_ids(rig, *a).empty());
}

TEST(EndpointHealth, OneSlowRequestInAHundredIsNotTheP99ButMovesTheMean) {
  Rig rig;
  auto& ep = rig.state.endpoint("/api");
  for (int i = 0; i < 99; ++i) ep.record(10.0, false);
  ep.record(400'000.0, false);  // the mean is 4,010 ms
  auto p99 = halo::make_endpoint_health();
  EXPECT_TRUE(slow_ids(rig, *p99).empty());
  auto mean = halo::make_endpoint_health({.endpoint_slow_quantile = 0.0});
  EXPECT_EQ(slow_ids(rig, *mean), std::vector<std::string>{"endpoint-slow-/api"});
  // p100, the max, does see it.
  auto max = halo::make_endpoint_health({.endpoint_slow_quantile = 1.0});
  EXPECT_EQ(slow_ids(rig, *max), std::vector<std::string>{"endpoint-slow-/api"});
  EXPECT_EQ(real(rig.run(*max))[0].get("p100_ms").empty(), false);
}

TEST(EndpointHealth, TheQuantileRuleIsConfigurableAndNeedsTheMinimumVolume) {
  Rig rig;
  auto& ep = rig.state.endpoint("/api");
  for (int i = 0; i < 19; ++i) ep.record(60.0, false);
  auto median = halo::make_endpoint_health(
      {.endpoint_slow_ms = 50.0, .endpoint_min_requests = 20, .endpoint_slow_quantile = 0.5});
  EXPECT_TRUE(slow_ids(rig, *median).empty()) << "19 requests: below the minimum";
  ep.record(60.0, false);
  EXPECT_EQ(slow_ids(rig, *median), std::vector<std::string>{"endpoint-slow-/api"});
  const auto issues = real(rig.run(*median));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].description.find("p50 latency"), std::string::npos) << issues[0].description;
  // After a mark (a repair finished), only what came since counts.
  ep.mark();
  rig.advance(ep.bucket_width());  // the counts' mark is bucket-exact
  for (int i = 0; i < 20; ++i) ep.record(5.0, false);
  ASSERT_EQ(ep.requests(), 20u);
  EXPECT_TRUE(slow_ids(rig, *median).empty());
  for (int i = 0; i < 21; ++i) ep.record(60.0, false);
  EXPECT_EQ(slow_ids(rig, *median), std::vector<std::string>{"endpoint-slow-/api"});
}

TEST(EndpointHealth, AQuantileOutsideZeroToOneIsRefused) {
  for (const double q : {-0.1, 1.5, std::nan("")}) {
    EXPECT_THROW(halo::make_endpoint_health({.endpoint_slow_quantile = q}), std::invalid_argument)
        << q;
  }
}

TEST(EnvironmentConsistency, MissingIsHighMismatchIsMedium) {
  Rig rig;
  auto a = halo::make_environment_consistency();
  rig.state.set_env_baseline({{"DB", "db1"}, {"MODE", "prod"}, {"TZ", "UTC"}});
  rig.state.set_env_snapshot("same", {{"DB", "db1"}, {"MODE", "prod"}, {"TZ", "UTC"}, {"X", "1"}});
  rig.state.set_env_snapshot("drift", {{"DB", "db2"}, {"MODE", "prod"}, {"TZ", "UTC"}});
  rig.state.set_env_snapshot("broken", {{"DB", "db2"}});
  auto issues = real(rig.run(*a));
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].id, "env-mismatch-broken");
  EXPECT_EQ(issues[0].severity, halo::Level::kHigh);
  EXPECT_EQ(issues[0].get("missing"), "MODE,TZ");
  EXPECT_EQ(issues[0].get("mismatched"), "DB");
  EXPECT_EQ(issues[1].id, "env-mismatch-drift");
  EXPECT_EQ(issues[1].severity, halo::Level::kMedium);
  EXPECT_EQ(issues[1].rule, "mismatch");
}

TEST(RepositoryIntegrity, ChecksumsAndChecks) {
  Rig rig;
  const auto dir =
      std::filesystem::temp_directory_path() / ("halo-integrity-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto good = (dir / "good").string(), bad = (dir / "bad").string(),
             gone = (dir / "gone").string();
  for (const auto& f : {good, bad, gone}) std::ofstream(f) << "v1 " << f;
  for (const auto& f : {good, bad, gone}) rig.state.add_artifact(f, *halo::checksum_file(f));
  std::ofstream(bad) << "tampered";
  std::filesystem::remove(gone);
  rig.state.add_integrity_check(
      {.name = "typecheck",
       .run =
           [] {
             return halo::CheckResult{halo::CheckStatus::kRed, "2 errors"};
           },
       .on_failure = halo::Level::kHigh});
  rig.state.add_integrity_check({.name = "lint",
                                 .run =
                                     [] {
                                       return halo::CheckResult{halo::CheckStatus::kRed, "style"};
                                     },
                                 .on_failure = halo::Level::kMedium});
  auto issues = real(rig.run(*halo::make_repository_integrity()));
  std::vector<std::string> got;
  for (const auto& i : issues)
    got.push_back(i.rule + ":" + std::string(halo::to_string(i.severity)));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"checksum:high", "lint:medium", "missing:high",
                                           "typecheck:high"}));
  std::filesystem::remove_all(dir);
}

TEST(Graft, FailedHighPendingMedium) {
  Rig rig;
  rig.state.upsert_graft({.id = "g1", .status = halo::GraftStatus::kFailed, .error = "x"});
  rig.state.upsert_graft({.id = "g2", .status = halo::GraftStatus::kPending});
  rig.state.upsert_graft({.id = "g3"});
  auto issues = real(rig.run(*halo::make_graft()));
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].id, "graft-failed-g1");
  EXPECT_EQ(issues[0].severity, halo::Level::kHigh);
  EXPECT_EQ(issues[1].id, "graft-pending-g2");
  EXPECT_EQ(issues[1].severity, halo::Level::kMedium);
}

TEST(SwarmPatrol, ColoursScoreThrowsAndTimeouts) {
  Rig rig;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  rig.state.add_patrol_check({.name = "dns", .run = [] { return halo::CheckResult{}; }});
  rig.state.add_patrol_check({.name = "quota", .run = [] {
                                return halo::CheckResult{halo::CheckStatus::kAmber, "80%"};
                              }});
  rig.state.add_patrol_check({.name = "build", .run = [] {
                                return halo::CheckResult{halo::CheckStatus::kRed, "broken"};
                              }});
  rig.state.add_patrol_check(
      {.name = "deps", .run = []() -> halo::CheckResult { throw std::runtime_error("no net"); }});
  rig.state.add_patrol_check({.name = "hang", .run = [gate] {
                                gate.wait();
                                return halo::CheckResult{};
                              }});
  auto a = halo::make_swarm_patrol({.check_timeout = 100ms});
  auto r = rig.run(*a);
  release.set_value();  // lets the abandoned check finish
  std::map<std::string, std::string> got;
  for (const auto& i : real(r))
    got[i.subject_id] =
        std::string(halo::to_string(i.severity)) + " " + std::string(i.get("message"));
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"build", "critical broken"},
                                                     {"deps", "critical threw: no net"},
                                                     {"hang", "critical timed out"},
                                                     {"quota", "medium 80%"}}));
  EXPECT_DOUBLE_EQ(r.metrics.at("health_score"), 1.0 / 5.0);
}

TEST(Builtins, SevenWithThreeLight) {
  auto all = halo::builtin_analyzers();
  ASSERT_EQ(all.size(), 7u);
  std::vector<std::string> light;
  for (const auto& a : all)
    if (a->light()) light.emplace_back(a->name());
  EXPECT_EQ(light, (std::vector<std::string>{"agent-health", "endpoint-health",
                                             "environment-consistency"}));
}

}  // namespace

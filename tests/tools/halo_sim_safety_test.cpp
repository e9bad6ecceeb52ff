// End to end: halo-sim's safety scenario, each fault checked against the outcome its kind
// expects (see tools/halo_sim/scenario.hpp). About a minute; runs in the debug preset only (its
// deadlines assume an unsanitized build).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace {

namespace fs = std::filesystem;

TEST(HaloSimSafety, EveryFaultEndsAsExpectedAndNothingIsRepairedTwiceNeedlessly) {
  const auto dir = fs::temp_directory_path() / ("halo-sim-safety-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto report = dir / "safety.json";
  const std::string cmd =
      std::string(HALO_SIM_PATH) + " --scenario safety --quiet --json " + report.string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int st = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << out;

  std::ifstream in(report);
  ASSERT_TRUE(in) << out;
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["re_repairs"], 0);
  std::map<std::string, nlohmann::json> by_kind;
  for (const auto& f : j["faults"]) by_kind[f["kind"]] = f;
  ASSERT_EQ(by_kind.size(), 5u) << out;
  for (const auto& [kind, f] : by_kind) EXPECT_TRUE(f["healed"].get<bool>()) << f.dump();
  EXPECT_EQ(by_kind["lying-repair"]["outcome"], "escalated");
  EXPECT_LE(by_kind["lying-repair"]["repairs"].get<int>(), 3);
  EXPECT_EQ(by_kind["lying-repair"]["repairs"].get<int>(), 3) << "revive, then redeploy twice";
  EXPECT_EQ(by_kind["flapping-endpoint"]["outcome"], "flapping, escalated");
  EXPECT_LE(by_kind["flapping-endpoint"]["repairs"].get<int>(), 3);
  EXPECT_EQ(by_kind["parent-down"]["repairs"], 1) << "the agent only";
  EXPECT_EQ(by_kind["maintenance"]["outcome"], "silenced, healed after");
  EXPECT_EQ(by_kind["maintenance"]["repairs"], 1);
  EXPECT_NE(by_kind["systemic-outage"]["outcome"].get<std::string>().find("breaker opened"),
            std::string::npos);
  EXPECT_LE(by_kind["systemic-outage"]["repairs"].get<int>(), 20) << "the blast radius";
  // The life cycle as the engine reports it.
  const auto& engine = j["engine"];
  EXPECT_GE(engine["escalations"].get<int>(), 2);
  // The report's audit excerpt (the last 200 entries) holds the outage's breaker and, unless
  // it was pushed out, the ladder's redeploy; the counters hold the rest.
  bool breaker = false;
  for (const auto& e : j["audit"]) breaker |= e["kind"] == "breaker";
  EXPECT_TRUE(breaker);
  EXPECT_GT(engine["suppressed_by_reason"].value("inhibited", 0), 0);
  EXPECT_GT(engine["suppressed_by_reason"].value("silenced", 0), 0);
  EXPECT_GT(engine["suppressed_by_reason"].value("breaker-open", 0), 0);
  fs::remove_all(dir);
}

}  // namespace

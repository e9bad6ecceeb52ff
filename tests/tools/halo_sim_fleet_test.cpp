// End to end: halo-sim's fleet scenario (tools/halo_sim/fleet_sim.hpp), three instances in one
// process sharing a redis-server the sim starts; each shared fault must end with its repairs
// (one, or none for a fault one instance alone sees). About 25 s, timing-bound: the debug
// preset only (label sim-fleet). And the flags the fleet mode refuses.
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

// Runs halo-sim with `args`; its exit status, and what it printed in `out`.
int run(const std::string& args, std::string& out) {
  FILE* p = ::popen((std::string(HALO_SIM_PATH) + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(HaloSimFleet, EverySharedFaultIsRepairedOnceFleetWide) {
  const auto dir = fs::temp_directory_path() / ("halo-sim-fleet-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto report = dir / "fleet.json";
  std::string out;
  EXPECT_EQ(run("--scenario fleet --fleet 3 --quiet --json " + report.string(), out), 0) << out;
  std::ifstream in(report);
  ASSERT_TRUE(in) << out;
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["re_repairs"], 0);
  EXPECT_EQ(j["instances"], 3);
  std::map<std::string, nlohmann::json> by_kind;
  for (const auto& f : j["faults"]) by_kind[f["kind"]] = f;
  ASSERT_EQ(by_kind.size(), 4u) << out;
  for (const auto& [kind, f] : by_kind) EXPECT_TRUE(f["ok"].get<bool>()) << f.dump();
  EXPECT_EQ(by_kind["shared-outage"]["repairs"], 1);
  EXPECT_EQ(by_kind["one-path"]["repairs"], 0);
  EXPECT_EQ(by_kind["holder-crash"]["repairs"], 1);
  EXPECT_EQ(by_kind["redis-outage"]["repairs"], 1);
  int froze = 0, elsewhere = 0, unavailable = 0;
  for (const auto& i : j["fleet"]) {
    froze += i["froze"].get<bool>();
    elsewhere += i["repairing_elsewhere"].get<int>();
    unavailable += i["unavailable_cycles"].get<int>() > 0;
  }
  EXPECT_EQ(froze, 1);
  EXPECT_GT(elsewhere, 0);
  EXPECT_GE(unavailable, 2) << "the instances still running saw Redis go";
  fs::remove_all(dir);
}

TEST(HaloSimFleet, FlagsTheFleetModeCannotHonourAreRefused) {
  for (const char* args : {"--fleet 1", "--fleet 17", "--fleet 3 --scenario default",
                           "--fleet 3 --http 127.0.0.1:0", "--scenario fleet --plot x.png"}) {
    std::string out;
    EXPECT_EQ(run(args, out), 2) << args << ": " << out;
    EXPECT_FALSE(out.empty()) << args;
  }
}

}  // namespace

// End to end: the real halo-sim binary, its HTTP endpoints scraped while it runs, its report.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "busy_port.hpp"  // tests/support

namespace {

namespace fs = std::filesystem;

struct Run {
  int exit_code = -1;
  std::string output;
};

fs::path scratch(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("halo-sim-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

// Runs halo-sim with `args` (stderr folded into stdout) to completion.
Run run_sim(const std::string& args) {
  Run r;
  FILE* p = ::popen((std::string(HALO_SIM_PATH) + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) r.output += buf;
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(HaloSim, QuickScenarioHealsEveryFaultAndServesMetricsWhileRunning) {
  const auto report = scratch("quick.json");
  const auto plot = scratch("quick.png");
  FILE* p = ::popen((std::string(HALO_SIM_PATH) + " --scenario quick --quiet --http 127.0.0.1:0 " +
                     "--json " + report.string() + " --plot " + plot.string() + " 2>&1")
                        .c_str(),
                    "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  ASSERT_NE(std::fgets(buf, sizeof buf, p), nullptr);
  std::string first(buf);
  const std::string prefix = "http: listening on http://127.0.0.1:";
  ASSERT_EQ(first.rfind(prefix, 0), 0u) << first;
  const int port = std::stoi(first.substr(prefix.size()));

  // Scrape while the scenario runs: wait (bounded) for the first cycles, then check both routes.
  httplib::Client cli("127.0.0.1", port);
  nlohmann::json status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = cli.Get("/status");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    status = nlohmann::json::parse(r->body);
    if (status["engine"]["cycles"].get<int>() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling a live process
  }
  EXPECT_GE(status["engine"]["cycles"].get<int>(), 2);
  EXPECT_EQ(status["executor"]["arms"].size(), 8u);
  auto m = cli.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("# TYPE octohalo_cycles_total counter"), std::string::npos);
  EXPECT_NE(m->body.find("octohalo_cycle_duration_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  EXPECT_NE(m->body.find("octohalo_trigger_fired_total{trigger=\"time\"}"), std::string::npos);

  std::string rest;
  while (std::fgets(buf, sizeof buf, p) != nullptr) rest += buf;
  const int st = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << rest;

  std::ifstream in(report);
  ASSERT_TRUE(in) << report;
  const auto j = nlohmann::json::parse(in);
  EXPECT_TRUE(j["all_healed"].get<bool>());
  ASSERT_EQ(j["faults"].size(), 8u);
  for (const auto& f : j["faults"]) {
    EXPECT_TRUE(f["injected"].get<bool>()) << f.dump();
    EXPECT_TRUE(f["detected"].get<bool>()) << f.dump();
    EXPECT_TRUE(f["healed"].get<bool>()) << f.dump();
    EXPECT_LE(f["time_to_repair_s"].get<double>(), f["deadline_s"].get<double>()) << f.dump();
  }
  const auto& by_trigger = j["engine"]["served_by_trigger"];
  for (const char* t : {"time", "error-rate", "request-volume", "deploy", "event"})
    EXPECT_GT(by_trigger.value(t, 0), 0) << t << " " << by_trigger.dump();
  EXPECT_GT(j["requests_recorded"].get<double>(), 0);
  bool approved = false;
  for (const auto& e : j["audit"]) approved = approved || e["kind"] == "approved";
  EXPECT_TRUE(approved) << "the env.sync repair should go through approval";
  EXPECT_EQ(j["re_repairs"], 0) << "a healed subject was repaired again";
  EXPECT_GT(fs::file_size(plot), 1000u);
  fs::remove_all(report.parent_path());
}

TEST(HaloSim, ScenarioFromAFile) {
  const auto file = scratch("one.json");
  std::ofstream(file) << R"({"name": "one crash", "duration_s": 4, "cycle_interval_s": 0.5,
    "faults": [{"kind": "agent-crash", "at_s": 0.5, "count": 3, "deadline_s": 3}]})";
  const auto r = run_sim("--scenario " + file.string() + " --fast-threads 0 --quiet");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("agent-crash"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("every fault ended as expected within its deadline"), std::string::npos);
  fs::remove_all(file.parent_path());
}

// Manual approval: the sim approves nothing, so the env-drift repair waits for a person (here
// nobody: the fault is not healed); --approve auto on the same file lets the sim approve it.
TEST(HaloSim, ManualApprovalLeavesTheApprovalToAPerson) {
  const auto file = scratch("manual.json");
  std::ofstream(file) << R"({"duration_s": 4, "cycle_interval_s": 0.5, "approve": "manual",
    "approve_after_s": 0.2, "faults": [{"kind": "env-drift", "at_s": 0.5, "deadline_s": 3}]})";
  const auto manual = run_sim("--scenario " + file.string() + " --fast-threads 0 --quiet");
  EXPECT_EQ(manual.exit_code, 1) << manual.output;
  EXPECT_NE(manual.output.find("0 approved by the sim"), std::string::npos) << manual.output;
  const auto overridden =
      run_sim("--scenario " + file.string() + " --fast-threads 0 --quiet --approve auto");
  EXPECT_EQ(overridden.exit_code, 0) << overridden.output;
  EXPECT_NE(overridden.output.find("1 approved by the sim"), std::string::npos)
      << overridden.output;
  fs::remove_all(file.parent_path());
}

TEST(HaloSim, BadInputExitsTwoNamingTheProblem) {
  const auto file = scratch("bad.json");
  std::ofstream(file) << R"({"faults": [{"kind": "meteor", "at_s": 1}]})";
  const auto huge = scratch("huge.json");
  std::ofstream(huge) << R"({"duration_s": 1e400, "faults": [{"kind": "deploy"}]})";
  const auto named = scratch("named.json");
  std::ofstream(named) << R"({"name": 42, "faults": [{"kind": "deploy"}]})";
  const auto approve = scratch("approve.json");
  std::ofstream(approve) << R"({"approve": "sometimes", "faults": [{"kind": "deploy"}]})";
  // A port some other socket holds: binding it fails (it once aborted, exit 134).
  const octo_test::BusyPort busy;
  const std::string busy_port = std::to_string(busy.port());
  const std::pair<std::string, std::string> cases[] = {
      {"--rate -5", "--rate"},
      {"--rate nan --duration 1", "--rate"},  // once a run that never ended
      {"--duration inf", "--duration"},
      {"--scenario quick --quiet --duration 1 --http 127.0.0.1:" + busy_port, "cannot bind"},
      {"--scenario " + huge.string(), "huge.json': invalid JSON: "},
      {"--scenario " + named.string(), "named.json': \"name\" must be a string"},
      {"--scenario " + approve.string(), "\"approve\" must be \"manual\" or \"auto\""},
      {"--approve sometimes", "--approve"},
      {"--scenario " + file.parent_path().string(), "not a regular file"},
      {"--scenario /proc/self/mem", "/proc/self/mem"},
      {"--http nonsense", "HOST:PORT"},
      {"--http 127.0.0.1:99999", "port"},
      {"--no-such-flag", "no-such-flag"},
      {"--scenario /nonexistent/x.json", "/nonexistent/x.json"},
      {"--scenario " + file.string(), "unknown kind 'meteor'"},
  };
  for (const auto& [args, needle] : cases) {
    const auto r = run_sim(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  }
  std::ofstream(file) << "{ not json";
  const auto r = run_sim("--scenario " + file.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("invalid JSON"), std::string::npos) << r.output;
  fs::remove_all(file.parent_path());
}

}  // namespace

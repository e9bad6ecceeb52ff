// Three instance processes (fleet_instance.cpp) of one service and a private redis-server: the
// fleet as a deployment has it. Faults are files every instance (or one) reads; repairs are
// lines in a file; what each instance knows comes from its own /status, /audit and /silences.
// Label fleet-process: run in the debug preset only (see .ci/run).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eventually.hpp"  // tests/support
#include "redis_server.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using octo_test::eventually;
using octo_test::RedisServer;

constexpr auto kLeaseTtl = 1000ms;
const std::vector<std::string> kNames = {"a", "b", "c"};

class Fleet {
 public:
  Fleet() {
    dir_ = fs::temp_directory_path() /
           ("octo-fleet-" + std::to_string(::getpid()) + "-" + std::to_string(server.port()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const auto& n : kNames)
      pids_[n] = octo_test::spawn_process({OCTO_FLEET_INSTANCE, std::to_string(server.port()),
                                           dir_.string(), n, std::to_string(kLeaseTtl.count())});
    for (const auto& n : kNames) {
      EXPECT_TRUE(eventually([&] { return fs::exists(dir_ / ("http-" + n)); })) << n;
      std::ifstream(dir_ / ("http-" + n)) >> ports_[n];
    }
  }
  ~Fleet() {
    for (auto& [n, pid] : pids_) {
      if (pid <= 0) continue;
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGTERM);
      int status = 0;
      ::waitpid(pid, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << n << " did not stop cleanly";
    }
    fs::remove_all(dir_);
  }

  RedisServer server;

  void touch(const std::string& file) const { std::ofstream(dir_ / file) << "1"; }
  void remove(const std::string& file) const { fs::remove(dir_ / file); }
  bool exists(const std::string& file) const { return fs::exists(dir_ / file); }
  std::vector<std::string> repairs() const {
    std::vector<std::string> out;
    std::ifstream in(dir_ / "repairs");
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  std::string get(const std::string& n, const std::string& target) const {
    httplib::Client c("127.0.0.1", ports_.at(n));
    c.set_bearer_token_auth("t");
    auto r = c.Get(target);
    return r && r->status == 200 ? r->body : std::string();
  }
  int send(const std::string& n, const std::string& method, const std::string& target,
           const std::string& body = {}) const {
    httplib::Client c("127.0.0.1", ports_.at(n));
    c.set_bearer_token_auth("t");
    auto r = method == "POST" ? c.Post(target, body, "application/json") : c.Delete(target);
    last_body_ = r ? r->body : std::string();
    return r ? r->status : -1;
  }
  // The engine's part of /status ({} when the instance does not answer).
  nlohmann::json engine(const std::string& n) const {
    const std::string body = get(n, "/status");
    if (body.empty()) return nlohmann::json::object();
    return nlohmann::json::parse(body).at("engine");
  }
  std::uint64_t cycles(const std::string& n) const {
    return engine(n).value("cycles", std::uint64_t{0});
  }
  // Waits until each named instance has run `more` cycles from now: what they will do, they
  // have had the chance to.
  bool cycles_pass(const std::vector<std::string>& names, std::uint64_t more = 4) const {
    std::map<std::string, std::uint64_t> from;
    for (const auto& n : names) from[n] = cycles(n);
    return eventually([&] {
      for (const auto& n : names)
        if (cycles(n) < from[n] + more) return false;
      return true;
    });
  }
  // Every instance sees all three peers (their verdicts on the dependency are published).
  bool joined() const {
    return eventually([&] {
      for (const auto& n : kNames)
        if (engine(n)["fleet"].value("peers", nlohmann::json::array()).size() != 3) return false;
      return true;
    });
  }
  // "<token> <instance>" of the dependency's repair lease, or "".
  std::string lease() const {
    return server.command({"GET", "halo:fleet:shop:lease:dependency:db"});
  }
  std::string holder() const {
    const std::string l = lease();
    const auto sp = l.find(' ');
    return sp == std::string::npos ? std::string() : l.substr(sp + 1);
  }
  void signal(const std::string& n, int sig) const { ::kill(pids_.at(n), sig); }
  void reap(const std::string& n) {
    ::waitpid(pids_.at(n), nullptr, 0);
    pids_[n] = -1;
  }
  const std::string& last_body() const { return last_body_; }

 private:
  fs::path dir_;
  std::map<std::string, pid_t> pids_;
  std::map<std::string, int> ports_;
  mutable std::string last_body_;
};

std::vector<std::string> others(const std::string& n) {
  std::vector<std::string> out;
  for (const auto& m : kNames)
    if (m != n) out.push_back(m);
  return out;
}

std::uint64_t fleet_count(const nlohmann::json& engine, const char* field) {
  return engine.contains("fleet") ? engine["fleet"].value(field, std::uint64_t{0}) : 0;
}

TEST(FleetProcesses, AFaultEverySeesIsRepairedOnceVerifiedAndAuditedElsewhere) {
  Fleet fleet;
  ASSERT_TRUE(fleet.joined());
  fleet.touch("hold");  // the repair takes until the others have looked
  fleet.touch("down");
  ASSERT_TRUE(eventually([&] { return !fleet.holder().empty(); }));
  const std::string holder = fleet.holder();
  ASSERT_TRUE(eventually([&] {
    for (const auto& n : others(holder))
      if (fleet_count(fleet.engine(n), "repairing_elsewhere") == 0) return false;
    return true;
  }));
  for (const auto& n : others(holder))
    EXPECT_NE(fleet.get(n, "/audit").find("repairing elsewhere (" + holder + ")"),
              std::string::npos)
        << n;
  fleet.remove("hold");
  ASSERT_TRUE(eventually(
      [&] { return fleet_count(fleet.engine(holder), "outcomes_written") == 1; }));  // verified
  ASSERT_TRUE(fleet.cycles_pass(kNames));
  EXPECT_EQ(fleet.repairs(), std::vector<std::string>{holder});
  EXPECT_EQ(fleet.engine(holder).value("heals", 0), 1);
}

TEST(FleetProcesses, AFaultOnlyOneSeesRepairsNothingAndIsThatInstancesOwnWeakPoint) {
  Fleet fleet;
  ASSERT_TRUE(fleet.joined());
  fleet.touch("path-a");
  ASSERT_TRUE(eventually([&] { return fleet_count(fleet.engine("a"), "path_weak_points") >= 3; }));
  ASSERT_TRUE(fleet.cycles_pass(kNames));
  EXPECT_TRUE(fleet.repairs().empty());
  const auto last = nlohmann::json::parse(fleet.get("a", "/cycles?limit=1")).at(0);
  ASSERT_EQ(last.at("weak_points").size(), 1u) << last;
  const auto& wp = last.at("weak_points")[0];
  EXPECT_EQ(wp.at("subject_type"), "path");
  EXPECT_EQ(wp.at("subject_id"), "dependency:db");
  EXPECT_NE(wp.at("summary").get<std::string>().find("unreachable from this instance"),
            std::string::npos);
  EXPECT_TRUE(last.at("tasks").empty());
  EXPECT_EQ(fleet_count(fleet.engine("b"), "path_weak_points"), 0u);
}

TEST(FleetProcesses, AHolderKilledMidRepairIsTakenOverAfterItsLeaseOnce) {
  Fleet fleet;
  ASSERT_TRUE(fleet.joined());
  fleet.touch("hold");
  fleet.touch("down");
  ASSERT_TRUE(eventually([&] { return !fleet.holder().empty(); }));
  const std::string dead = fleet.holder();
  fleet.signal(dead, SIGKILL);
  fleet.reap(dead);
  fleet.remove("hold");
  ASSERT_TRUE(eventually([&] { return fleet.repairs().size() == 1; }));
  const std::string heir = fleet.repairs()[0];
  EXPECT_NE(heir, dead);
  ASSERT_TRUE(eventually([&] { return fleet_count(fleet.engine(heir), "outcomes_written") == 1; }));
  EXPECT_EQ(fleet.server.command({"GET", "halo:fleet:shop:outcome:dependency:db"}),
            "2 1 " + heir);  // the second token
  ASSERT_TRUE(fleet.cycles_pass(others(dead)));
  EXPECT_EQ(fleet.repairs().size(), 1u);
}

TEST(FleetProcesses, AHolderStoppedPastItsLeaseHasItsLateOutcomeRejected) {
  Fleet fleet;
  ASSERT_TRUE(fleet.joined());
  fleet.touch("hold");
  fleet.touch("down");
  ASSERT_TRUE(eventually([&] { return !fleet.holder().empty(); }));
  const std::string stale = fleet.holder();
  fleet.signal(stale, SIGSTOP);  // mid-repair, as a long GC pause or a frozen VM would
  fleet.remove("hold");
  ASSERT_TRUE(eventually([&] { return fleet.repairs().size() == 1; }));
  const std::string heir = fleet.repairs()[0];
  ASSERT_TRUE(eventually([&] { return fleet_count(fleet.engine(heir), "outcomes_written") == 1; }));
  fleet.signal(stale, SIGCONT);  // it finishes its repair and reports with token 1
  ASSERT_TRUE(
      eventually([&] { return fleet_count(fleet.engine(stale), "outcomes_rejected") == 1; }));
  const auto s = fleet.engine(stale);
  EXPECT_EQ(fleet_count(s, "leases_lost"), 1u);
  EXPECT_EQ(fleet_count(s, "outcomes_written"), 0u);
  EXPECT_EQ(fleet.repairs(), (std::vector<std::string>{heir, stale}));
  EXPECT_NE(fleet.get(stale, "/audit").find("rejected as stale"), std::string::npos);
}

TEST(FleetProcesses, ASilenceCreatedOnOneInstanceStopsTheRepairOnAll) {
  Fleet fleet;
  ASSERT_TRUE(fleet.joined());
  ASSERT_EQ(fleet.send("a", "POST", "/silences",
                       R"({"subject_type": "dependency", "duration_s": 3600,
                           "reason": "db failover", "fleet": true})"),
            201)
      << fleet.last_body();
  const auto id = nlohmann::json::parse(fleet.last_body()).at("id").get<std::uint64_t>();
  ASSERT_TRUE(fleet.cycles_pass(kNames, 2));  // each has mirrored it
  fleet.touch("down");
  ASSERT_TRUE(eventually([&] {
    for (const auto& n : kNames)
      if (fleet.engine(n)["suppressed_by_reason"].value("silenced", 0) == 0) return false;
    return true;
  }));
  for (const auto& n : kNames) {
    const auto listed = nlohmann::json::parse(fleet.get(n, "/silences"));
    ASSERT_EQ(listed.size(), 1u) << n;
    EXPECT_EQ(listed[0].at("fleet"), true) << n;
  }
  EXPECT_TRUE(fleet.repairs().empty());
  ASSERT_EQ(fleet.send("a", "DELETE", "/silences/" + std::to_string(id)), 200) << fleet.last_body();
  ASSERT_TRUE(eventually([&] { return fleet.repairs().size() == 1; }));
  ASSERT_TRUE(fleet.cycles_pass(kNames));
  EXPECT_EQ(fleet.repairs().size(), 1u);
}

TEST(FleetProcesses, WithRedisStoppedNothingSharedIsRepairedAndTheyRejoinWhenItIsBack) {
  Fleet fleet;
  ASSERT_TRUE(fleet.joined());
  fleet.server.kill();
  fleet.touch("down");
  const std::string where = "127.0.0.1:" + std::to_string(fleet.server.port());
  ASSERT_TRUE(eventually([&] {
    for (const auto& n : kNames) {
      const auto e = fleet.engine(n);
      if (e["fleet"].value("available", true) ||
          e["fleet"].value("reason", "").find(where) == std::string::npos)
        return false;
    }
    return true;
  }));
  ASSERT_TRUE(fleet.cycles_pass(kNames));
  EXPECT_TRUE(fleet.repairs().empty());
  EXPECT_GE(fleet.engine("b")["open_weak_points"].get<int>(), 1);  // detected, reported
  EXPECT_NE(fleet.get("c", "/metrics").find("octohalo_fleet_available{instance=\"c\"} 0"),
            std::string::npos);
  fleet.server.start();
  ASSERT_TRUE(eventually([&] { return fleet.repairs().size() == 1; }));
  ASSERT_TRUE(eventually([&] {
    for (const auto& n : kNames)
      if (!fleet.engine(n)["fleet"].value("available", false)) return false;
    return true;
  }));
  ASSERT_TRUE(fleet.cycles_pass(kNames));
  EXPECT_EQ(fleet.repairs().size(), 1u);
}

}  // namespace

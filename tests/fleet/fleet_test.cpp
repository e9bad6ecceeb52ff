// Fleet HALO against a private redis-server: three engines of one service (each with its own
// executor, state and manual clock, as three instances would have) sharing a dependency. One
// repair fleet-wide under the lease, quorum detection, takeover after a holder stops with a
// stale outcome rejected, shared silences, the fleet-wide budget, Redis going away and coming
// back, and the round trips of a cycle with 1,000 shared subjects.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ecosystem.hpp"  // tests/support
#include "engine_rig.hpp"
#include "event_log.hpp"
#include "eventually.hpp"
#include "halo/http/handler.hpp"
#include "halo/http/history_store.hpp"
#include "halo/redis_fleet.hpp"
#include "redis_server.hpp"
#include "shared_dependency.hpp"

namespace {

using namespace std::chrono_literals;
using octo_test::eventually;
using octo_test::open_rails;
using octo_test::RedisServer;
using octo_test::Rig;
using octo_test::statuses;

constexpr std::string_view kService = "shop";

// The dependency's health as one instance sees it: broken when the dependency is (`down`,
// shared by every instance) or when this instance's own path to it is (`path_broken`).
struct Dependency : halo::Analyzer {
  const std::atomic<bool>* down;
  std::atomic<bool> path_broken{false};
  // Run once, on its own thread, after the next look: what happens while this instance looks.
  std::function<void()> while_looking;
  int count;
  Dependency(const std::atomic<bool>* d, int n) : down(d), count(n) {}
  std::string_view name() const noexcept override { return "dependency"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override {
    halo::AnalyzerResult r;
    const bool broken = down->load() || path_broken.load();
    if (auto f = std::exchange(while_looking, nullptr)) std::async(std::launch::async, f).get();
    if (!broken) return r;
    for (int i = 0; i < count; ++i)
      r.issues.push_back(octo_test::dependency_issue(count == 1 ? "db" : "db" + std::to_string(i)));
    return r;
  }
};

struct Options {
  halo::EngineConfig engine = open_rails();
  std::chrono::milliseconds lease_ttl = 30s;
  int subjects = 1;
};

// One instance of the service: its fleet client, its engine and executor, the dependency as it
// sees it. Its repairs fix the dependency for everyone.
struct Instance {
  std::shared_ptr<halo::RedisFleet> fleet;
  Dependency* dependency = nullptr;
  std::unique_ptr<Rig> rig;

  Instance(int port, std::string name, std::atomic<bool>& down, Options o = {}) {
    fleet =
        std::make_shared<halo::RedisFleet>(halo::RedisFleetConfig{.port = port,
                                                                  .service = std::string(kService),
                                                                  .instance = std::move(name),
                                                                  .lease_ttl = o.lease_ttl,
                                                                  .reconnect_base = 10ms,
                                                                  .reconnect_max = 50ms});
    o.engine.fleet = fleet;
    rig = std::make_unique<Rig>(std::move(o.engine));
    auto dep = std::make_unique<Dependency>(&down, o.subjects);
    dependency = dep.get();
    rig->engine->add_analyzer(std::move(dep));
    rig->engine->add_strategy(std::make_unique<octo_test::RestartDependency>());
    for (int i = 0; i < o.subjects; ++i)
      rig->engine->share({"dependency", o.subjects == 1 ? "db" : "db" + std::to_string(i)});
    rig->handler = [&down](const octo::Task&) {
      down = false;
      return octo::Outcome::success();
    };
  }
  std::shared_ptr<const halo::CycleResult> cycle() { return rig->cycle(); }
  // A cycle after the clock moved on: fresh evidence for a repair's verification.
  std::shared_ptr<const halo::CycleResult> later_cycle() {
    rig->clock->advance(1s);
    return rig->cycle();
  }
  halo::FleetStatus status() { return rig->engine->status().fleet; }
  // Holds this instance's repairs until the returned promise is set; they then fix the fault.
  std::promise<void> hold(std::atomic<bool>& down) {
    std::promise<void> release;
    std::shared_future<void> gate = release.get_future().share();
    rig->handler = [gate, &down](const octo::Task&) {
      gate.wait();
      down = false;
      return octo::Outcome::success();
    };
    return release;
  }
  bool audited(halo::AuditKind kind, std::string_view reason) {
    for (const auto& e : rig->engine->audit().entries())
      if (e.kind == kind && e.reason.find(reason) != std::string::npos) return true;
    return false;
  }
};

std::string key(std::string_view rest) {
  return "halo:fleet:" + std::string(kService) + ":" + std::string(rest);
}

std::map<std::string, int> one(std::string k) { return {{std::move(k), 1}}; }

TEST(Fleet, AFaultEveryInstanceSeesIsRepairedOnceAndTheOthersRecordWhoRepairsIt) {
  RedisServer server;
  std::atomic<bool> down{true};
  Instance a(server.port(), "a", down), b(server.port(), "b", down), c(server.port(), "c", down);
  std::promise<void> release = a.hold(down);
  auto first = a.rig->engine->run_cycle("manual");  // the repair is held while b and c look
  EXPECT_EQ(statuses(*first), one("dispatched"));
  EXPECT_TRUE(a.audited(halo::AuditKind::kFleet, "granted (token 1)"));
  EXPECT_EQ(statuses(*b.cycle()), one("suppressed:repairing elsewhere (a)"));
  EXPECT_EQ(statuses(*c.cycle()), one("suppressed:repairing elsewhere (a)"));
  EXPECT_TRUE(b.audited(halo::AuditKind::kSuppressed, "repairing elsewhere (a)"));
  const halo::FleetStatus seen = c.status();
  EXPECT_TRUE(seen.available);
  EXPECT_EQ(seen.peers, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(seen.repairing_elsewhere, 1u);
  ASSERT_EQ(seen.subjects.size(), 1u);
  EXPECT_EQ(seen.subjects[0].subject, "dependency:db");
  EXPECT_EQ(seen.subjects[0].reporters, 3u);
  EXPECT_EQ(seen.subjects[0].unhealthy, 3u);
  EXPECT_EQ(seen.subjects[0].quorum, 2u);
  EXPECT_EQ(seen.subjects[0].holder, "a");

  release.set_value();
  a.rig->executor->wait_idle();
  EXPECT_TRUE(a.later_cycle()->weak_points.empty());  // verified: healed, the outcome written
  EXPECT_EQ(a.status().outcomes_written, 1u);
  EXPECT_EQ(a.status().leases_held, 0u);
  EXPECT_EQ(server.command({"EXISTS", key("lease:dependency:db")}), "0");
  EXPECT_EQ(server.command({"GET", key("outcome:dependency:db")}), "1 1 a");  // token, healed
  EXPECT_TRUE(b.cycle()->dispatch_results.empty());
  EXPECT_TRUE(c.cycle()->dispatch_results.empty());
  EXPECT_EQ(a.rig->ran_count() + b.rig->ran_count() + c.rig->ran_count(), 1u);
}

// b looks (the dependency is down), a's repair is verified and its outcome written, then b
// publishes its verdict and claims: its evidence predates the fix, so it repairs nothing.
TEST(Fleet, ARepairThatEndsWhileAnotherInstanceLooksIsNotRepeatedOnOlderEvidence) {
  RedisServer server;
  std::atomic<bool> down{false};
  Instance a(server.port(), "a", down), b(server.port(), "b", down), c(server.port(), "c", down);
  for (Instance* i : {&a, &b, &c}) i->cycle();  // all healthy
  down = true;
  EXPECT_TRUE(c.cycle()->generated_tasks.empty());  // no quorum yet: c's own path, for now
  std::promise<void> release = a.hold(down);
  EXPECT_EQ(statuses(*a.rig->engine->run_cycle("manual")), one("dispatched"));
  EXPECT_EQ(statuses(*c.cycle()), one("suppressed:repairing elsewhere (a)"));
  b.dependency->while_looking = [&] {
    release.set_value();
    a.rig->executor->wait_idle();
    a.later_cycle();
  };
  auto looked = b.cycle();
  EXPECT_EQ(a.status().outcomes_written, 1u);
  EXPECT_EQ(statuses(*looked),
            one("suppressed:repaired elsewhere since this instance last looked (a)"));
  EXPECT_TRUE(b.cycle()->dispatch_results.empty());  // fresh evidence: healthy
  EXPECT_EQ(a.rig->ran_count() + b.rig->ran_count() + c.rig->ran_count(), 1u);
}

// The probe is a full-cycle analyzer: a light cycle does not run it, and a probe that throws
// looks at nothing. Neither may tell the fleet that the dependency is healthy (which once turned
// the holder's weak point into a path one).
class NoHealthyVerdictWithoutALook : public testing::TestWithParam<bool> {};

TEST_P(NoHealthyVerdictWithoutALook, FromALightCycleOrAFailedProbe) {
  const bool light = GetParam();
  RedisServer server;
  std::atomic<bool> down{true};
  Instance a(server.port(), "a", down), b(server.port(), "b", down), c(server.port(), "c", down);
  std::promise<void> release = a.hold(down);
  EXPECT_EQ(statuses(*a.rig->engine->run_cycle("manual")), one("dispatched"));
  EXPECT_EQ(statuses(*b.cycle()), one("suppressed:repairing elsewhere (a)"));
  EXPECT_EQ(statuses(*c.cycle()), one("suppressed:repairing elsewhere (a)"));
  for (Instance* i : {&b, &c}) {
    if (!light) i->dependency->while_looking = [] { throw std::runtime_error("probe timed out"); };
    auto looked =
        i->rig->engine->run_cycle("manual", {}, light ? halo::Mode::kLight : halo::Mode::kFull);
    for (const auto& wp : looked->weak_points) EXPECT_NE(wp.subject_type, "dependency");
  }

  // EXPECT, not ASSERT, until the held repair is released: returning early would leave it held
  // (and the rig's teardown waiting for it).
  auto again = a.rig->engine->run_cycle("manual");  // the repair still runs
  EXPECT_EQ(again->weak_points.size(), 1u);
  for (const auto& wp : again->weak_points) EXPECT_EQ(wp.subject_type, "dependency") << wp.summary;
  const halo::FleetStatus seen = a.status();
  EXPECT_EQ(seen.subjects.size(), 1u);
  for (const auto& v : seen.subjects) EXPECT_EQ(v.unhealthy, 3u) << v.subject;
  EXPECT_EQ(seen.path_weak_points, 0u);

  release.set_value();
  a.rig->executor->wait_idle();
  EXPECT_TRUE(a.later_cycle()->weak_points.empty());
  EXPECT_EQ(a.status().outcomes_written, 1u);
  EXPECT_EQ(a.rig->ran_count() + b.rig->ran_count() + c.rig->ran_count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Fleet, NoHealthyVerdictWithoutALook, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& p) {
                           return p.param ? "light" : "failed";
                         });

TEST(Fleet, AFaultOnlyOneInstanceSeesIsItsOwnPathNotTheDependency) {
  RedisServer server;
  std::atomic<bool> down{false};
  Instance a(server.port(), "a", down), b(server.port(), "b", down), c(server.port(), "c", down);
  b.cycle();
  c.cycle();
  a.dependency->path_broken = true;
  auto cycle = a.cycle();
  ASSERT_EQ(cycle->weak_points.size(), 1u);
  const halo::WeakPoint& wp = cycle->weak_points[0];
  EXPECT_EQ(wp.subject_type, "path");
  EXPECT_EQ(wp.subject_id, "dependency:db");
  EXPECT_NE(wp.summary.find("dependency unreachable from this instance"), std::string::npos)
      << wp.summary;
  EXPECT_NE(wp.summary.find("unhealthy for 1 of 3 instances, quorum 2"), std::string::npos)
      << wp.summary;
  EXPECT_TRUE(cycle->generated_tasks.empty());
  EXPECT_EQ(a.status().path_weak_points, 1u);
  // A second instance seeing it makes the quorum: now it is the dependency, repaired once.
  b.dependency->path_broken = true;
  EXPECT_EQ(statuses(*b.cycle()), one("dispatched"));
  EXPECT_EQ(a.rig->ran_count(), 0u);
  EXPECT_EQ(b.rig->ran_count(), 1u);
}

TEST(Fleet, AHolderThatStopsLosesTheRepairAfterTheLeaseAndItsStaleOutcomeIsRejected) {
  RedisServer server;
  std::atomic<bool> down{true};
  Instance a(server.port(), "a", down, {.lease_ttl = 300ms});
  Instance b(server.port(), "b", down);
  std::promise<void> release = a.hold(down);
  EXPECT_EQ(statuses(*a.rig->engine->run_cycle("manual")), one("dispatched"));
  EXPECT_EQ(statuses(*b.cycle()), one("suppressed:repairing elsewhere (a)"));
  // a runs no more cycles, as a stopped process would not: its lease expires on the server.
  ASSERT_TRUE(eventually([&] {
    return server.command({"EXISTS", key("lease:dependency:db")}) == "0";
  }));
  EXPECT_EQ(statuses(*b.cycle()), one("dispatched"));
  EXPECT_TRUE(b.audited(halo::AuditKind::kFleet, "granted (token 2)"));
  EXPECT_EQ(b.rig->ran_count(), 1u);  // b's repair fixed it

  release.set_value();  // a wakes up and finishes its repair
  a.rig->executor->wait_idle();
  a.later_cycle();
  EXPECT_EQ(a.status().leases_lost, 1u);
  EXPECT_EQ(a.status().outcomes_rejected, 1u);
  EXPECT_EQ(a.status().outcomes_written, 0u);
  EXPECT_TRUE(a.audited(halo::AuditKind::kFleet, "rejected as stale: healed (token 1)"));
  b.later_cycle();
  EXPECT_EQ(b.status().outcomes_written, 1u);
  EXPECT_EQ(server.command({"GET", key("outcome:dependency:db")}), "2 1 b");
  EXPECT_EQ(a.rig->ran_count() + b.rig->ran_count(), 2u);
}

TEST(Fleet, ASilenceCreatedOnOneInstanceHoldsOnAllAndIsListedByEach) {
  RedisServer server;
  std::atomic<bool> down{false};
  Instance a(server.port(), "a", down), b(server.port(), "b", down);
  const auto now = a.rig->state.now();
  const std::uint64_t id = a.rig->engine->silence({.match = {.subject_type = "dependency"},
                                                   .from = now,
                                                   .until = now + 1h,
                                                   .reason = "db migration",
                                                   .author = "ops",
                                                   .fleet = true});
  down = true;
  for (Instance* i : {&a, &b}) {
    auto r = statuses(*i->cycle());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r.begin()->first.starts_with("suppressed:silenced by ")) << r.begin()->first;
  }
  auto listed = b.rig->engine->silences();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed[0].fleet);
  EXPECT_NE(listed[0].reason.find("db migration"), std::string::npos) << listed[0].reason;
  EXPECT_NE(listed[0].reason.find("from a"), std::string::npos) << listed[0].reason;
  EXPECT_EQ(a.rig->engine->silences().size(), 1u);

  // What someone else left in the hash is skipped, not trusted.
  server.command({"HSET", key("silences"), "98", "not a silence"});
  server.command({"HSET", key("silences"), "99",
                  std::string("dependency\x1f"
                              "db\x1f\x1f"
                              "1\x1f"
                              "99999999999999999999\x1f"
                              "r\x1f"
                              "a\x1f"
                              "x")});
  b.cycle();
  EXPECT_EQ(b.rig->engine->silences().size(), 1u);

  EXPECT_TRUE(a.rig->engine->unsilence(id));  // ended fleet-wide
  EXPECT_EQ(statuses(*b.cycle()), one("dispatched"));
  EXPECT_TRUE(b.rig->engine->silences().empty());
  EXPECT_EQ(a.rig->ran_count() + b.rig->ran_count(), 1u);
}

// "Until forever" on the state's clock is past what the fleet stores: refused by name, not
// overflowed into a time in the past.
TEST(Fleet, AFleetSilenceWithoutAnEndIsRefusedNamingItsTimes) {
  RedisServer server;
  std::atomic<bool> down{false};
  Instance a(server.port(), "a", down);
  const auto now = a.rig->state.now();
  for (const auto& [from, until] : {std::pair{now, std::chrono::nanoseconds::max()},
                                    std::pair{std::chrono::nanoseconds::min(), now + 1h}}) {
    try {
      a.rig->engine->silence({.match = {.subject_type = "dependency"},
                              .from = from,
                              .until = until,
                              .reason = "forever",
                              .fleet = true});
      ADD_FAILURE() << "accepted " << from.count() << " .. " << until.count();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string_view(e.what()).find("between 1970 and 2255"), std::string_view::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(a.rig->engine->silences().empty());
  EXPECT_EQ(server.command({"HLEN", key("silences")}), "0");
}

TEST(Fleet, TheRepairBudgetOfASharedSubjectCountsAcrossTheFleet) {
  RedisServer server;
  std::atomic<bool> down{true};
  Options o;
  o.engine.safety.max_repairs = 1;
  o.engine.safety.budget_window = 1h;
  Instance a(server.port(), "a", down, o), b(server.port(), "b", down, o);
  EXPECT_EQ(statuses(*a.cycle()), one("dispatched"));
  a.later_cycle();
  EXPECT_EQ(a.status().outcomes_written, 1u);
  b.cycle();    // b looks after the repair
  down = true;  // back again: b has repaired nothing, the fleet has repaired it once
  a.cycle();    // a's verdict too, for the quorum
  EXPECT_EQ(statuses(*b.cycle()), one("suppressed:fleet-budget (1 repairs in the window)"));
  EXPECT_EQ(b.rig->ran_count(), 0u);
}

// A slow rate reaches the fleet's bucket as it is (it was once sent with six decimals, as 0).
TEST(Fleet, TheFleetsRateLimitTakesASlowRateAsGiven) {
  RedisServer server;
  halo::RedisFleet fleet({.port = server.port(), .service = "shop", .instance = "a"});
  const auto r = fleet.exchange({}, {"dependency:db0", "dependency:db1"},
                                {.repairs_per_second = 1e-7, .repair_burst = 1});
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.claims.size(), 2u);
  EXPECT_EQ(r.claims[0].refusal, halo::FleetRefusal::kNone);
  EXPECT_EQ(r.claims[1].refusal, halo::FleetRefusal::kRateLimited);
  // The bucket lives as long as it takes to refill: 1 / 1e-7 s.
  EXPECT_GT(std::stoll(server.command({"PTTL", key("bucket")})), 1'000'000'000LL);

  // One that would take longer than PEXPIRE can say: the bucket's life is capped.
  halo::RedisFleet slower({.port = server.port(), .service = "slow", .instance = "a"});
  const auto s = slower.exchange({}, {"dependency:db0"}, {.repairs_per_second = 1e-300});
  ASSERT_TRUE(s.ok) << s.error;
  EXPECT_EQ(s.claims[0].refusal, halo::FleetRefusal::kNone);
  EXPECT_GT(std::stoll(server.command({"PTTL", "halo:fleet:slow:bucket"})), 1'000'000'000LL);
}

TEST(Fleet, WithoutRedisSharedSubjectsAreOnlyReportedUntilItIsBack) {
  RedisServer server;
  octo_test::EventLog log;  // outlives the engine
  std::atomic<bool> down{true};
  Instance a(server.port(), "a", down);
  log.attach(*a.rig->engine);
  server.kill();
  auto r = statuses(*a.cycle());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r.begin()->first.starts_with("suppressed:fleet-unavailable: ")) << r.begin()->first;
  halo::FleetStatus s = a.status();
  EXPECT_FALSE(s.available);
  EXPECT_NE(s.reason.find("127.0.0.1:" + std::to_string(server.port())), std::string::npos)
      << s.reason;
  EXPECT_EQ(a.rig->engine->status().open_weak_points, 1u);  // detected and reported
  EXPECT_EQ(log.wait_for(halo::EventKind::kFleetUnavailable, 1), 1u);
  EXPECT_EQ(a.rig->ran_count(), 0u);

  server.start();  // same port: the instance rejoins by itself
  ASSERT_TRUE(eventually([&] {
    a.cycle();
    return a.status().available;
  }));
  EXPECT_EQ(log.wait_for(halo::EventKind::kFleetRejoined, 1), 1u);
  EXPECT_EQ(a.rig->ran_count(), 1u);
  EXPECT_EQ(a.status().leases_granted, 1u);
}

// The fleet as /status, /metrics and /silences of every instance show it.
TEST(Fleet, EveryInstanceShowsTheFleetOverHttp) {
  RedisServer server;
  std::atomic<bool> down{true};
  Instance a(server.port(), "a", down), b(server.port(), "b", down);
  const halo::HttpHandler ha({.token = "t"}, *a.rig->engine);
  const halo::HttpHandler hb({.token = "t"}, *b.rig->engine);
  std::promise<void> release = a.hold(down);
  a.rig->engine->run_cycle("manual");
  b.cycle();
  const auto status =
      nlohmann::json::parse(hb.handle({.method = "GET", .target = "/status"}, "").body);
  const auto& fleet = status.at("engine").at("fleet");
  EXPECT_EQ(fleet.at("available"), true);
  EXPECT_EQ(fleet.at("instance"), "b");
  EXPECT_EQ(fleet.at("peers"), nlohmann::json({"a", "b"}));
  ASSERT_EQ(fleet.at("subjects").size(), 1u);
  EXPECT_EQ(fleet.at("subjects")[0].at("holder"), "a");
  EXPECT_EQ(fleet.at("subjects")[0].at("quorum"), 2);
  EXPECT_EQ(fleet.at("repairing_elsewhere"), 1);

  const auto scrape = hb.handle({.method = "GET", .target = "/metrics"}, "").body;
  EXPECT_NE(scrape.find("octohalo_fleet_lease_holder{subject=\"dependency:db\",holder=\"a\"} 1"),
            std::string::npos)
      << scrape;
  EXPECT_NE(scrape.find("octohalo_fleet_peers 2"), std::string::npos);
  EXPECT_NE(scrape.find("octohalo_repairs_suppressed_total{reason=\"repairing-elsewhere\"} 1"),
            std::string::npos);
  if (octo_test::have_binary(octo_test::kPromtool)) {
    const auto r = octo_test::promtool_check(
        scrape, (std::filesystem::temp_directory_path() /
                 ("octo-fleet-scrape-" + std::to_string(::getpid()) + ".txt"))
                    .string());
    EXPECT_EQ(r.status, 0) << r.output;
  }

  const auto made = ha.handle(
      {.method = "POST", .target = "/silences", .authorization = "Bearer t"},
      R"({"subject_type": "dependency", "duration_s": 3600, "reason": "failover", "fleet": true})");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(nlohmann::json::parse(made.body).at("fleet"), true);
  EXPECT_EQ(ha.handle({.method = "POST", .target = "/silences", .authorization = "Bearer t"},
                      R"({"duration_s": 1, "reason": "x", "fleet": "yes"})")
                .status,
            400);
  b.cycle();
  const auto listed = nlohmann::json::parse(
      hb.handle({.method = "GET", .target = "/silences", .authorization = "Bearer t"}, "").body);
  ASSERT_EQ(listed.size(), 1u) << listed;
  EXPECT_EQ(listed[0].at("fleet"), true);
  EXPECT_EQ(listed[0].at("subject_type"), "dependency");
  release.set_value();
}

// The fleet keeps its silences: a history store that saved the mirrored ones would bring them
// back after a restart as local silences that the fleet could no longer end.
TEST(Fleet, TheHistoryStoreKeepsLocalSilencesOnly) {
  RedisServer server;
  std::atomic<bool> down{false};
  const auto dir =
      std::filesystem::temp_directory_path() / ("octo-fleet-history-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    Instance a(server.port(), "a", down);
    halo::HistoryStore store(*a.rig->engine, {.dir = dir});
    const auto now = a.rig->state.now();
    for (const bool fleet : {false, true})
      a.rig->engine->silence({.match = {.subject_type = fleet ? "dependency" : "agent"},
                              .from = now,
                              .until = now + 1h,
                              .reason = fleet ? "fleet-wide" : "here only",
                              .fleet = fleet});
    ASSERT_EQ(a.rig->engine->silences().size(), 2u);
    store.flush();
  }
  octo_test::ManualState local;
  halo::Engine restarted(local.state, {});
  halo::HistoryStore again(restarted, {.dir = dir});
  EXPECT_EQ(again.status().restored_silences, 1u);
  ASSERT_EQ(restarted.silences().size(), 1u);
  EXPECT_EQ(restarted.silences()[0].reason, "here only");
  std::filesystem::remove_all(dir);
}

std::uint64_t eval_calls(const RedisServer& server) {
  const std::string info = server.command({"INFO", "commandstats"});
  const auto at = info.find("cmdstat_eval:calls=");
  return at == std::string::npos ? 0 : std::stoull(info.substr(at + 19));
}

// Counted twice: by the fleet client and by the server's own command statistics.
TEST(Fleet, ACycleWithAThousandSharedSubjectsMakesAtMostTwoRoundTrips) {
  RedisServer server;
  std::atomic<bool> down{false};
  Options o;
  o.subjects = 1000;
  Instance a(server.port(), "a", down, o);
  a.rig->handler = [](const octo::Task&) { return octo::Outcome::success(); };
  a.cycle();  // connects
  auto trips = a.fleet->round_trips();
  auto evals = eval_calls(server);
  a.cycle();
  EXPECT_EQ(a.fleet->round_trips() - trips, 1u);  // all healthy: the verdicts only
  EXPECT_EQ(eval_calls(server) - evals, 1u);
  down = true;
  trips = a.fleet->round_trips();
  evals = eval_calls(server);
  auto c = a.cycle();
  EXPECT_EQ(c->weak_points.size(), 1000u);
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"dispatched", 1000}}));
  EXPECT_EQ(a.fleet->round_trips() - trips, 2u);  // verdicts, then 1,000 claims
  EXPECT_EQ(eval_calls(server) - evals, 2u);
  EXPECT_EQ(a.status().leases_held, 1000u);
}

TEST(Fleet, BadConfigurationIsRefusedNamingTheField) {
  auto refused = [](halo::RedisFleetConfig c, std::string_view field) {
    try {
      halo::RedisFleet f(std::move(c));
    } catch (const std::invalid_argument& e) {
      return std::string_view(e.what()).find(field) != std::string_view::npos;
    }
    return false;
  };
  EXPECT_TRUE(refused({.service = ""}, "service"));
  EXPECT_TRUE(refused({.service = "a b"}, "service"));
  EXPECT_TRUE(refused({.instance = "x\ty"}, "instance"));
  EXPECT_TRUE(refused({.port = 0}, "port"));
  EXPECT_TRUE(refused({.port = 70000}, "port"));
  EXPECT_TRUE(refused({.lease_ttl = 0ms}, "lease_ttl"));
  EXPECT_TRUE(refused({.verdict_ttl = -1ms}, "verdict_ttl"));
  halo::RedisFleet ok({.instance = "fine"});
  EXPECT_EQ(ok.instance(), "fine");
  EXPECT_EQ(ok.prefix(), "halo:fleet:default:");

  octo_test::ManualState local;
  halo::Engine engine(local.state, {});
  EXPECT_THROW(engine.share({"dependency", "db"}), std::invalid_argument);
  EXPECT_THROW(engine.silence({.match = {},
                               .from = local.state.now(),
                               .until = local.state.now() + 1s,
                               .reason = "r",
                               .fleet = true}),
               std::invalid_argument);
}

}  // namespace

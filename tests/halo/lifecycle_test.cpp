// The weak point life cycle and the rails that keep repairs from storming: verification,
// repair timeout, budget and escalation, the ladder, flapping, the systemic breaker, the
// per-type blast radius, dependencies and silences. Manual time throughout.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <latch>
#include <random>

#include "engine_rig.hpp"  // tests/support
#include "event_log.hpp"
#include "halo/engine.hpp"

namespace {

using namespace std::chrono_literals;
using halo::Level;
using halo::WeakPointState;
using octo_test::open_rails;
using octo_test::Rig;
using octo_test::statuses;

using octo_test::EventLog;

const halo::WeakPointLife* life_of(const halo::EngineStatus& s, std::string_view subject) {
  for (const auto& l : s.lifecycle)
    if (l.subject_id == subject) return &l;
  return nullptr;
}

std::vector<std::string> types_ran(Rig& rig) {
  std::lock_guard lock(rig.mu);
  std::vector<std::string> out;
  for (const auto& t : rig.ran) out.push_back(t.type);
  return out;
}

TEST(Verification, ASucceededRepairHealsOnlyOnEvidenceAfterIt) {
  auto cfg = open_rails();
  EventLog log;  // outlives the engine, whose event thread writes to it
  Rig rig(cfg);
  log.attach(*rig.engine);
  rig.handler = [&](const octo::Task& t) {
    rig.state.set_agent_online(t.payload, true);  // fixed, but no heartbeat yet
    return octo::Outcome::success();
  };
  rig.state.upsert_agent({.id = "a1", .online = false});
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  // Healthy-looking, but its last heartbeat is as old as the repair: still verifying.
  auto c2 = rig.cycle();
  EXPECT_TRUE(c2->weak_points.empty());
  auto s = rig.engine->status();
  ASSERT_NE(life_of(s, "a1"), nullptr);
  EXPECT_EQ(life_of(s, "a1")->state, WeakPointState::kVerifying);
  EXPECT_EQ(s.weak_points_by_state.at("verifying"), 1u);
  EXPECT_EQ(s.heals, 0u);
  rig.clock->advance(1s);
  rig.state.heartbeat("a1");
  rig.cycle();
  s = rig.engine->status();
  EXPECT_EQ(life_of(s, "a1")->state, WeakPointState::kHealed);
  EXPECT_EQ(s.heals, 1u);
  EXPECT_EQ(rig.ran_count(), 1u);
  EXPECT_EQ(log.wait_for(halo::EventKind::kHealed, 1), 1u);
  bool audited = false;
  for (const auto& e : rig.engine->audit().entries())
    audited |=
        e.kind == halo::AuditKind::kStateChanged && e.reason.starts_with("verifying -> healed");
  EXPECT_TRUE(audited);
}

TEST(Verification, FreshUnhealthyEvidenceFailsTheRepairAndTheLadderStepsUp) {
  auto cfg = open_rails();
  Rig rig(cfg);  // the handler reports success and fixes nothing
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.cycle();
  rig.clock->advance(1s);
  rig.state.heartbeat("a1");  // reachable, but still reports itself offline
  auto c2 = rig.cycle();
  EXPECT_EQ(statuses(*c2), (std::map<std::string, int>{{"suppressed:backoff", 1}}));
  ASSERT_EQ(c2->weak_points.size(), 1u);
  EXPECT_EQ(c2->weak_points[0].state, WeakPointState::kOpen);
  EXPECT_EQ(c2->weak_points[0].step, 1u);
  rig.clock->advance(30s);  // backoff_base
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  EXPECT_EQ(types_ran(rig), (std::vector<std::string>{"agent.revive", "agent.redeploy"}));
  EXPECT_EQ(rig.engine->status().repairs_failed, 0u) << "the tasks themselves succeeded";
}

TEST(Verification, AnEndpointsOldErrorsDoNotFailItsRepair) {
  auto cfg = open_rails();
  Rig rig(cfg);
  auto& ep = rig.state.endpoint("/api/orders");
  bool broken = true;
  rig.handler = [&](const octo::Task&) {
    broken = false;
    return octo::Outcome::success();
  };
  for (int i = 0; i < 100; ++i) ep.record(5.0, broken && i % 2 == 0);
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  // The window still holds the errors from before the repair; they no longer count.
  auto c2 = rig.cycle();
  EXPECT_TRUE(c2->weak_points.empty());
  rig.advance(ep.bucket_width());  // a new bucket
  for (int i = 0; i < 50; ++i) ep.record(5.0, broken);
  rig.cycle();
  const auto s = rig.engine->status();
  EXPECT_EQ(life_of(s, "/api/orders")->state, WeakPointState::kHealed);
  EXPECT_EQ(rig.ran_count(), 1u) << "one dispatch for one fault";
  EXPECT_EQ(ep.requests(), 50u);
}

TEST(Verification, StillUnhealthyAtTheTimeoutIsAFailedRepair) {
  auto cfg = open_rails();
  cfg.safety.verify_timeout = 10s;
  Rig rig(cfg);
  rig.state.upsert_graft({.id = "g", .status = halo::GraftStatus::kFailed});
  rig.cycle();
  rig.clock->advance(9s);
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"suppressed:verifying", 1}}));
  rig.clock->advance(1s);
  auto c = rig.cycle();
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"suppressed:backoff", 1}}));
  const auto s = rig.engine->status();
  EXPECT_NE(life_of(s, "g")->reason.find("at verify_timeout"), std::string::npos)
      << life_of(s, "g")->reason;
}

TEST(RepairTimeout, ARepairWithoutAnOutcomeCountsAsFailed) {
  auto cfg = open_rails();
  cfg.safety.repair_timeout = 1min;
  Rig rig(cfg);
  auto release = rig.hold_repairs();
  rig.state.upsert_agent({.id = "a1", .online = false});
  EXPECT_EQ(statuses(*rig.engine->run_cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  rig.clock->advance(59s);
  EXPECT_EQ(statuses(*rig.engine->run_cycle()),
            (std::map<std::string, int>{{"suppressed:in-flight", 1}}));
  rig.clock->advance(1s);
  auto c = rig.engine->run_cycle();
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"suppressed:backoff", 1}}));
  auto s = rig.engine->status();
  EXPECT_EQ(s.repairs_in_flight, 0u);
  EXPECT_EQ(s.repairs_failed, 1u);
  EXPECT_NE(life_of(s, "a1")->reason.find("no outcome within 60 s"), std::string::npos);
  // The hung handler finishes late: its success is ignored, the repair stays failed.
  release.set_value();
  rig.executor->wait_idle();
  s = rig.engine->status();
  EXPECT_EQ(s.repairs_succeeded, 0u);
  EXPECT_EQ(life_of(s, "a1")->state, WeakPointState::kOpen);
}

// A repair still queued at its timeout is cancelled, not left to run late: one deploy slot, two
// repairs, the first hung in its handler.
TEST(RepairTimeout, AQueuedRepairPastItsTimeoutIsCancelled) {
  octo_test::ManualState ms;
  auto cfg = open_rails();
  cfg.safety.repair_timeout = 1min;
  halo::Engine engine(ms.state, cfg);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::latch first_started(1);
  octo::ExecutorConfig ec;
  ec.threads = 2;
  for (auto& arm : ec.arms) {
    arm.max_parallel = 1;
    arm.max_attempts = 1;
    arm.handler = [gate, &first_started](const octo::Task&, const octo::Context&) {
      first_started.count_down();  // the slot allows one: only the first gets here
      gate.wait();
      return octo::Outcome::success();
    };
  }
  octo::Executor executor(std::move(ec));
  engine.attach(executor);
  ms.state.upsert_agent({.id = "a1", .online = false});
  ms.state.upsert_agent({.id = "a2", .online = false});
  EXPECT_EQ(statuses(*engine.run_cycle()), (std::map<std::string, int>{{"dispatched", 2}}));
  first_started.wait();  // one running, one queued
  ms.clock->advance(1min);
  EXPECT_EQ(statuses(*engine.run_cycle()), (std::map<std::string, int>{{"suppressed:backoff", 2}}));
  release.set_value();
  ASSERT_TRUE(executor.wait_idle(30s));
  const auto xs = executor.status();
  EXPECT_EQ(xs.cancelled, 1u) << "the queued one";
  EXPECT_EQ(xs.succeeded, 1u) << "the hung one finished late";
  const auto es = engine.status();
  EXPECT_EQ(es.repairs_failed, 2u);
  EXPECT_EQ(es.repairs_succeeded, 0u) << "a late success does not count";
  engine.detach();
  executor.shutdown(octo::ShutdownMode::kDrain, 10s);
}

// While a repair is verifying, the engine runs its own full "verify" cycles every
// verify_interval of the state's clock, without a trigger.
TEST(Verification, TheEngineRequestsItsOwnVerifyCycles) {
  auto cfg = open_rails();
  cfg.safety.verify_interval = 20ms;
  Rig rig(cfg);
  rig.handler = [&](const octo::Task& t) {
    rig.state.set_agent_online(t.payload, true);
    return octo::Outcome::success();
  };
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.cycle();
  rig.clock->advance(1s);
  rig.state.heartbeat("a1");  // the evidence the verify cycle needs
  // Bounded wait for the worker's cycle (it looks every 20 ms of real time).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (life_of(rig.engine->status(), "a1")->state != WeakPointState::kHealed &&
         std::chrono::steady_clock::now() < deadline)
    rig.engine->wait_idle(10ms);
  EXPECT_EQ(life_of(rig.engine->status(), "a1")->state, WeakPointState::kHealed);
  ASSERT_TRUE(rig.engine->wait_idle(30s));
  const auto s = rig.engine->status();
  EXPECT_GE(s.cycles_by_trigger.at("verify"), 1u);
  // Nothing left to verify: no more verify cycles, however far the clock moves.
  const auto verify_cycles = s.cycles_by_trigger.at("verify");
  rig.clock->advance(1h);
  EXPECT_TRUE(rig.engine->wait_idle(30s));
  EXPECT_EQ(rig.engine->status().cycles_by_trigger.at("verify"), verify_cycles);
}

// A repair that reports success and fixes nothing: at most max_repairs, ladder included, then
// escalated until an operator clears it.
TEST(Budget, ALyingRepairEscalatesAfterMaxRepairsAndClearReopens) {
  auto cfg = open_rails();
  cfg.safety.max_repairs = 3;
  cfg.safety.verify_timeout = 5s;
  cfg.safety.backoff_base = 1s;
  cfg.safety.backoff_max = 1s;
  EventLog log;  // outlives the engine, whose event thread writes to it
  Rig rig(cfg);
  log.attach(*rig.engine);
  rig.state.upsert_agent({.id = "a1", .online = false});
  std::map<std::string, int> seen;
  for (int i = 0; i < 20; ++i) {
    for (const auto& [k, v] : statuses(*rig.cycle())) seen[k] += v;
    rig.clock->advance(3s);
  }
  EXPECT_EQ(types_ran(rig),
            (std::vector<std::string>{"agent.revive", "agent.redeploy", "agent.redeploy"}));
  EXPECT_GT(seen["suppressed:escalated"], 5);
  auto s = rig.engine->status();
  const auto* life = life_of(s, "a1");
  ASSERT_NE(life, nullptr);
  EXPECT_EQ(life->state, WeakPointState::kEscalated);
  EXPECT_EQ(life->repairs, 3u);
  EXPECT_NE(life->reason.find("repair budget spent"), std::string::npos) << life->reason;
  EXPECT_EQ(s.escalations, 1u);
  EXPECT_EQ(log.wait_for(halo::EventKind::kEscalated, 1), 1u);

  EXPECT_FALSE(rig.engine->clear("wp-0000000000000000"));
  EXPECT_TRUE(rig.engine->clear(life->weak_point));
  EXPECT_FALSE(rig.engine->clear(life->weak_point)) << "open now: nothing to clear";
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  EXPECT_EQ(types_ran(rig).back(), "agent.revive") << "a fresh budget starts the ladder over";
}

TEST(Budget, AnEscalationClearsItselfAfterBeingHealthyForAutoClearAfter) {
  auto cfg = open_rails();
  cfg.safety.max_repairs = 1;
  cfg.safety.verify_timeout = 5s;
  cfg.safety.auto_clear_after = 1min;
  Rig rig(cfg);
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.cycle();
  rig.clock->advance(5s);
  rig.cycle();  // still offline at the timeout, budget of one spent
  EXPECT_EQ(life_of(rig.engine->status(), "a1")->state, WeakPointState::kEscalated);
  rig.state.set_agent_online("a1", true);
  rig.state.heartbeat("a1");
  rig.cycle();  // healthy from here
  rig.clock->advance(59s);
  rig.state.heartbeat("a1");
  rig.cycle();
  EXPECT_EQ(life_of(rig.engine->status(), "a1")->state, WeakPointState::kEscalated);
  rig.clock->advance(1s);
  rig.state.heartbeat("a1");
  rig.cycle();
  EXPECT_EQ(life_of(rig.engine->status(), "a1")->state, WeakPointState::kHealed);
}

// Healed and broken again within flap_window: flapping, each flap doubling the wait, escalated
// past flap_threshold.
TEST(Flapping, EachFlapDoublesTheWaitAndTooManyEscalate) {
  auto cfg = open_rails();
  cfg.safety.backoff_base = 10s;
  cfg.safety.backoff_max = 1h;
  cfg.safety.flap_threshold = 2;
  Rig rig(cfg);
  rig.handler = [&](const octo::Task& t) {
    rig.state.set_graft_status(t.payload, halo::GraftStatus::kInstalled);
    return octo::Outcome::success();
  };
  rig.state.upsert_graft({.id = "g", .status = halo::GraftStatus::kFailed});
  auto heal_then_break = [&] {
    rig.clock->advance(1s);
    rig.state.set_graft_status("g", halo::GraftStatus::kInstalled);  // a report after it
    rig.cycle();
    EXPECT_EQ(life_of(rig.engine->status(), "g")->state, WeakPointState::kHealed);
    rig.clock->advance(1s);
    rig.state.set_graft_status("g", halo::GraftStatus::kFailed);
  };
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  heal_then_break();
  auto c = rig.cycle();
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"suppressed:flapping", 1}}));
  EXPECT_EQ(c->weak_points[0].flags, halo::kFlapping);
  rig.clock->advance(10s);  // first flap: backoff_base
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  heal_then_break();
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"suppressed:flapping", 1}}));
  rig.clock->advance(19s);  // second flap: twice as long
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"suppressed:flapping", 1}}));
  rig.clock->advance(1s);
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  heal_then_break();  // third flap: over the threshold
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"suppressed:escalated", 1}}));
  const auto s = rig.engine->status();
  EXPECT_EQ(life_of(s, "g")->flaps, 3u);
  EXPECT_EQ(s.weak_points_by_flag.at("flapping"), 1u);
  EXPECT_EQ(rig.ran_count(), 3u);
}

TEST(Breaker, OverHalfOfATypeUnhealthyPausesRepairsUntilItSettles) {
  auto cfg = open_rails();
  cfg.safety.max_unhealthy_percent = 50;
  cfg.safety.breaker_settle = 30s;
  EventLog log;  // outlives the engine, whose event thread writes to it
  Rig rig(cfg);
  log.attach(*rig.engine);
  for (int i = 0; i < 10; ++i) rig.state.upsert_agent({.id = std::to_string(i), .online = i >= 5});
  // Five of ten: at the level, not over it.
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 5}}));
  for (int i = 0; i < 10; ++i)
    rig.state.upsert_agent({.id = "b" + std::to_string(i), .online = false});
  // Fifteen of twenty (five verifying).
  auto c = rig.cycle();
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"suggested:breaker-open", 10},
                                                      {"suppressed:verifying", 5}}));
  EXPECT_NE(c->breaker.find("15 of 20 agent subjects unhealthy"), std::string::npos) << c->breaker;
  EXPECT_TRUE(rig.engine->status().breaker_open);
  EXPECT_EQ(log.wait_for(halo::EventKind::kBreakerOpened, 1), 1u);
  for (int i = 0; i < 10; ++i) rig.state.remove_agent("b" + std::to_string(i));
  rig.clock->advance(1s);
  c = rig.cycle();  // below the level, not yet for breaker_settle
  EXPECT_FALSE(c->breaker.empty());
  rig.clock->advance(30s);
  c = rig.cycle();
  EXPECT_TRUE(c->breaker.empty());
  EXPECT_FALSE(rig.engine->status().breaker_open);
  EXPECT_EQ(log.wait_for(halo::EventKind::kBreakerClosed, 1), 1u);
}

TEST(Breaker, MostRepairsFailingPausesRepairs) {
  auto cfg = open_rails();
  cfg.safety.breaker_min_repairs = 4;
  cfg.safety.breaker_failure_ratio = 0.5;
  Rig rig(cfg);
  rig.handler = [](const octo::Task&) { return octo::Outcome::failure("no"); };
  for (int i = 0; i < 3; ++i)
    rig.state.upsert_graft({.id = "g" + std::to_string(i), .status = halo::GraftStatus::kFailed});
  rig.cycle();  // three failures: under the minimum count
  rig.clock->advance(30s);
  rig.state.upsert_graft({.id = "g3", .status = halo::GraftStatus::kFailed});
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 4}}));
  rig.clock->advance(1min);
  auto c = rig.cycle();  // seven of seven failed
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"suggested:breaker-open", 4}}));
  EXPECT_NE(c->breaker.find("7 of the last 7 repairs failed"), std::string::npos) << c->breaker;
}

TEST(BlastRadius, CoversEveryTypeNotOnlyAgents) {
  auto cfg = open_rails();
  cfg.safety.blast_radius_percent = 20;
  Rig rig(cfg);
  auto release = rig.hold_repairs();
  for (int i = 0; i < 10; ++i)
    rig.state.report_probe("/e" + std::to_string(i), i < 5 ? 503 : 200, 1.0);
  for (int i = 0; i < 10; ++i)
    rig.state.upsert_graft(
        {.id = "g" + std::to_string(i),
         .status = i < 3 ? halo::GraftStatus::kFailed : halo::GraftStatus::kInstalled});
  // Two endpoints and two grafts of ten each; the rest wait.
  auto c = rig.engine->run_cycle();
  EXPECT_EQ(statuses(*c),
            (std::map<std::string, int>{{"dispatched", 4}, {"suppressed:blast-radius", 4}}));
  release.set_value();
  rig.executor->wait_idle();
}

// An endpoint depends on the agent serving it: while the agent is broken the endpoint's repairs
// are inhibited; once the agent heals, the endpoint verifies without a repair of its own.
TEST(Dependencies, AParentsRepairCoversItsInhibitedChildren) {
  auto cfg = open_rails();
  Rig rig(cfg);
  rig.handler = [&](const octo::Task& t) {
    if (t.type == "agent.revive") rig.state.set_agent_online(t.payload, true);
    return octo::Outcome::success();
  };
  rig.state.upsert_agent({.id = "a1", .online = false});
  std::vector<halo::EndpointCounters*> eps;
  for (int i = 0; i < 3; ++i) {
    const std::string path = "/e" + std::to_string(i);
    eps.push_back(&rig.state.endpoint(path));
    for (int r = 0; r < 100; ++r) eps.back()->record(5.0, r % 2 == 0);
    rig.engine->add_dependency({"endpoint", path}, {"agent", "a1"});
  }
  EXPECT_THROW(rig.engine->add_dependency({"agent", "a1"}, {"agent", "a1"}), std::invalid_argument);
  EXPECT_THROW(rig.engine->add_dependency({"", "x"}, {"agent", "a1"}), std::invalid_argument);
  auto c1 = rig.cycle();
  std::map<std::string, int> expected{{"dispatched", 1}};
  for (const auto& wp : c1->weak_points) {
    if (wp.subject_type == "endpoint") {
      EXPECT_EQ(wp.flags, halo::kInhibited);
    } else {
      expected["suppressed:inhibited by " + wp.id] = 3;
    }
  }
  EXPECT_EQ(statuses(*c1), expected);
  EXPECT_EQ(rig.engine->status().weak_points_by_flag.at("inhibited"), 3u);
  rig.clock->advance(1s);
  rig.state.heartbeat("a1");
  // The agent heals; the endpoints' windows still hold the old errors: they verify instead of
  // being repaired.
  auto c2 = rig.cycle();
  EXPECT_EQ(statuses(*c2), (std::map<std::string, int>{{"suppressed:verifying", 3}}));
  rig.advance(100ms);
  for (auto* ep : eps)
    for (int r = 0; r < 30; ++r) ep->record(5.0, false);
  rig.cycle();
  const auto s = rig.engine->status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_NE(life_of(s, "/e" + std::to_string(i)), nullptr);
    EXPECT_EQ(life_of(s, "/e" + std::to_string(i))->state, WeakPointState::kHealed);
  }
  EXPECT_EQ(types_ran(rig), (std::vector<std::string>{"agent.revive"}));
  EXPECT_TRUE(rig.engine->remove_dependency({"endpoint", "/e0"}, {"agent", "a1"}));
  EXPECT_FALSE(rig.engine->remove_dependency({"endpoint", "/e0"}, {"agent", "a1"}));
}

// A child that turns up unhealthy only after its parent healed (its records of the outage
// arrived late: halo-sim's parent-down fault on a loaded machine) verifies instead of being
// repaired; a child still unhealthy at verify_timeout is repaired then, and a heal covers a child
// once.
TEST(Dependencies, AChildThatTurnsUpAfterItsParentHealedVerifiesInsteadOfBeingRepaired) {
  auto cfg = open_rails();
  cfg.safety.verify_timeout = 20s;
  Rig rig(cfg);
  rig.handler = [&](const octo::Task& t) {
    if (t.type == "agent.revive") rig.state.set_agent_online(t.payload, true);
    return octo::Outcome::success();
  };
  rig.state.upsert_agent({.id = "a1", .online = false});
  halo::EndpointCounters& ep = rig.state.endpoint("/e0");
  rig.engine->add_dependency({"endpoint", "/e0"}, {"agent", "a1"});
  auto c1 = rig.cycle();  // the agent is repaired; the endpoint is not a weak point yet
  EXPECT_EQ(statuses(*c1), (std::map<std::string, int>{{"dispatched", 1}}));
  rig.clock->advance(1s);
  rig.state.heartbeat("a1");
  rig.cycle();  // the agent heals
  ASSERT_NE(life_of(rig.engine->status(), "a1"), nullptr);
  ASSERT_EQ(life_of(rig.engine->status(), "a1")->state, WeakPointState::kHealed);
  rig.advance(1s);
  for (int r = 0; r < 100; ++r) ep.record(5.0, r % 2 == 0);  // the outage's late records
  auto c3 = rig.cycle();
  EXPECT_EQ(statuses(*c3), (std::map<std::string, int>{{"suppressed:verifying", 1}}));
  EXPECT_EQ(types_ran(rig), (std::vector<std::string>{"agent.revive"}));
  // Still failing at verify_timeout: a failed repair (backoff), then repaired as any weak point;
  // the heal does not cover the child a second time.
  std::size_t endpoint_repairs = 0;
  for (int i = 0; i < 40 && endpoint_repairs == 0; ++i) {
    rig.advance(5s);
    for (int r = 0; r < 100; ++r) ep.record(5.0, r % 2 == 0);
    rig.cycle();
    rig.executor->wait_idle();
    for (const auto& type : types_ran(rig)) endpoint_repairs += type != "agent.revive";
  }
  EXPECT_EQ(endpoint_repairs, 1u) << "a child that stays unhealthy is repaired after verifying";
}

TEST(Silences, ASilencedWeakPointIsReportedNeverRepairedUntilTheSilenceEnds) {
  auto cfg = open_rails();
  Rig rig(cfg);
  rig.state.upsert_graft({.id = "g-pay", .status = halo::GraftStatus::kFailed});
  rig.state.upsert_graft({.id = "g-other", .status = halo::GraftStatus::kFailed});
  EXPECT_THROW(rig.engine->silence({.from = 10s, .until = 10s, .reason = "x"}),
               std::invalid_argument);
  EXPECT_THROW(rig.engine->silence({.from = 0s, .until = 10s}), std::invalid_argument);
  const auto id = rig.engine->silence({.match = {.subject_type = "graft", .subject_id = "g-p*"},
                                       .from = 0s,
                                       .until = 10min,
                                       .reason = "payments migration",
                                       .author = "ops"});
  // A silence on a task type no strategy plans for these matches nothing.
  rig.engine->silence({.match = {.task_type = "env.*"}, .from = 0s, .until = 1h, .reason = "env"});
  auto c = rig.cycle();
  std::map<std::string, int> expected{{"dispatched", 1},
                                      {"suppressed:silenced by " + std::to_string(id), 1}};
  EXPECT_EQ(statuses(*c), expected);
  for (const auto& wp : c->weak_points)
    EXPECT_EQ(wp.flags, wp.subject_id == "g-pay" ? halo::kSilenced : 0) << wp.subject_id;
  EXPECT_EQ(rig.engine->silences().size(), 2u);
  rig.clock->advance(10min);  // the first silence is over
  EXPECT_EQ(rig.engine->silences().size(), 1u);
  auto after = rig.cycle();
  int dispatched = 0;
  for (const auto& d : after->dispatch_results)
    dispatched += d.status == halo::DispatchStatus::kDispatched;
  EXPECT_EQ(dispatched, 1) << "g-pay, now that its silence ended";
  EXPECT_FALSE(rig.engine->unsilence(id));
  EXPECT_TRUE(rig.engine->unsilence(2));
  EXPECT_TRUE(rig.engine->silences().empty());
}

// Silences come over HTTP from whoever holds the token: their number is bounded.
TEST(Silences, AtMostTenThousandAreKept) {
  halo::SystemState state;
  halo::Engine engine(state);
  for (int i = 0; i < 10'000; ++i)
    engine.silence({.from = 0s, .until = 1h, .reason = "r" + std::to_string(i)});
  EXPECT_THROW(engine.silence({.from = 0s, .until = 1h, .reason = "one more"}),
               std::invalid_argument);
  EXPECT_TRUE(engine.unsilence(1));
  EXPECT_NO_THROW(engine.silence({.from = 0s, .until = 1h, .reason = "room again"}));
}

TEST(SafetyConfig, NewSettingsAreValidatedByName) {
  halo::SystemState state;
  auto expect_throw = [&](auto change, const std::string& field) {
    halo::EngineConfig c;
    change(c.safety);
    try {
      halo::Engine e(state, std::move(c));
      ADD_FAILURE() << "no throw for " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  expect_throw([](halo::SafetyConfig& s) { s.max_repairs = 0; }, "max_repairs");
  expect_throw([](halo::SafetyConfig& s) { s.repair_timeout = 0s; }, "repair_timeout");
  expect_throw([](halo::SafetyConfig& s) { s.verify_timeout = -1s; }, "verify_timeout");
  expect_throw([](halo::SafetyConfig& s) { s.budget_window = 0s; }, "budget_window");
  expect_throw([](halo::SafetyConfig& s) { s.flap_window = 0s; }, "flap_window");
  expect_throw([](halo::SafetyConfig& s) { s.max_unhealthy_percent = 0; }, "max_unhealthy_percent");
  expect_throw([](halo::SafetyConfig& s) { s.max_unhealthy_percent = 101; },
               "max_unhealthy_percent");
  expect_throw([](halo::SafetyConfig& s) { s.breaker_failure_ratio = 1; }, "breaker_failure_ratio");
  expect_throw([](halo::SafetyConfig& s) { s.breaker_min_repairs = 0; }, "breaker_min_repairs");
  expect_throw([](halo::SafetyConfig& s) { s.breaker_min_subjects = 0; }, "breaker_min_subjects");
  expect_throw([](halo::SafetyConfig& s) { s.breaker_window = 0s; }, "breaker_window");
}

TEST(Events, AThrowingSubscriberIsCountedAndOthersStillHearEverything) {
  auto cfg = open_rails();
  cfg.safety.max_repairs = 1;
  cfg.safety.verify_timeout = 1s;
  EventLog log;  // outlives the engine, whose event thread writes to it
  Rig rig(cfg);
  const auto thrower = rig.engine->subscribe([](const halo::Event&) { throw 1; });
  log.attach(*rig.engine);
  EXPECT_THROW(rig.engine->subscribe({}), std::invalid_argument);
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.cycle();
  rig.clock->advance(1s);
  rig.cycle();
  EXPECT_EQ(log.wait_for(halo::EventKind::kEscalated, 1), 1u);
  EXPECT_TRUE(rig.engine->unsubscribe(thrower));
  EXPECT_FALSE(rig.engine->unsubscribe(thrower));
  const auto s = rig.engine->status();
  EXPECT_GE(s.events_failed, 1u);
  EXPECT_EQ(s.events_dropped, 0u);
  std::lock_guard lock(log.mu);
  const auto escalated = std::find_if(log.events.begin(), log.events.end(), [](const auto& e) {
    return e.kind == halo::EventKind::kEscalated;
  });
  ASSERT_NE(escalated, log.events.end());
  EXPECT_EQ(escalated->subject_id, "a1");
  EXPECT_NE(escalated->weak_point.find("wp-"), std::string::npos);
  EXPECT_EQ(escalated->state, WeakPointState::kEscalated);
}

// One subject's whole story as a subscriber hears it, in order, with what each event carries.
TEST(Events, OneRepairFromOpenedToHealed) {
  EventLog log;  // outlives the engine, whose event thread writes to it
  Rig rig(open_rails());
  log.attach(*rig.engine);
  rig.handler = [&](const octo::Task& t) {
    // Finishes after its cycle did (the cycle does not wait for its repairs).
    log.wait_for(halo::EventKind::kCycleCompleted, 1);
    rig.state.set_agent_online(t.payload, true);
    return octo::Outcome::success();
  };
  rig.state.upsert_agent({.id = "a1", .online = false});
  const auto c1 = rig.cycle();
  rig.clock->advance(1s);
  rig.state.heartbeat("a1");
  const auto c2 = rig.cycle();
  ASSERT_EQ(log.wait_for(halo::EventKind::kCycleCompleted, 2), 2u);
  using K = halo::EventKind;
  std::lock_guard lock(log.mu);
  std::vector<K> kinds;
  for (const auto& e : log.events) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<K>{K::kWeakPointOpened, K::kWeakPointCritical, K::kRepairDispatched,
                                   K::kCycleCompleted, K::kRepairFinished, K::kHealed,
                                   K::kCycleCompleted}));
  ASSERT_EQ(kinds.size(), 7u);
  const auto& opened = log.events[0];
  EXPECT_EQ(opened.subject_type, "agent");
  EXPECT_EQ(opened.subject_id, "a1");
  EXPECT_EQ(opened.cycle_id, c1->id);
  EXPECT_EQ(opened.severity, Level::kCritical);
  EXPECT_EQ(opened.weak_point, c1->weak_points.at(0).id);
  const auto& dispatched = log.events[2];
  EXPECT_EQ(dispatched.task_type, "agent.revive");
  EXPECT_EQ(dispatched.task_id, c1->dispatch_results.at(0).task_id);
  EXPECT_EQ(dispatched.state, WeakPointState::kRepairing);
  EXPECT_EQ(log.events[3].cycle_id, c1->id);
  EXPECT_NE(log.events[3].reason.find("1 dispatched"), std::string::npos) << log.events[3].reason;
  const auto& finished = log.events[4];
  EXPECT_EQ(finished.task_id, dispatched.task_id);
  EXPECT_EQ(finished.reason, "succeeded");
  EXPECT_EQ(finished.state, WeakPointState::kVerifying);
  EXPECT_EQ(log.events[5].state, WeakPointState::kHealed);
  EXPECT_EQ(log.events[6].cycle_id, c2->id);
}

// A weak point that grows critical by escalation is announced once when it gets there.
TEST(Events, CriticalIsAnnouncedOnceWhenAWeakPointReachesIt) {
  auto cfg = open_rails();
  cfg.dry_run = true;
  cfg.escalate_after = 2;
  EventLog log;  // outlives the engine, whose event thread writes to it
  Rig rig(cfg);
  log.attach(*rig.engine);
  // A slow endpoint is kHigh: the second cycle raises it to critical.
  rig.state.report_probe("/slow", 200, 60'000.0);
  for (int i = 0; i < 4; ++i) rig.cycle();
  ASSERT_EQ(log.wait_for(halo::EventKind::kCycleCompleted, 4), 4u);
  std::lock_guard lock(log.mu);
  int opened = 0, critical = 0;
  for (const auto& e : log.events) {
    opened += e.kind == halo::EventKind::kWeakPointOpened;
    critical += e.kind == halo::EventKind::kWeakPointCritical;
  }
  EXPECT_EQ(opened, 1);
  EXPECT_EQ(critical, 1);
  const auto first = std::find_if(log.events.begin(), log.events.end(), [](const auto& e) {
    return e.kind == halo::EventKind::kWeakPointOpened;
  });
  EXPECT_EQ(first->severity, Level::kHigh);
}

// Random faults, fixes, lies and failures over many cycles: whatever happens, no subject has
// two repairs in flight, none is dispatched while verifying, silenced or inhibited, and none
// gets more than max_repairs within budget_window.
TEST(Property, RandomFaultsAndOutcomesNeverBreakTheRails) {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    std::mt19937_64 rng(seed);
    auto cfg = open_rails();
    cfg.safety.max_repairs = 3;
    cfg.safety.budget_window = 10min;
    cfg.safety.verify_timeout = 20s;
    cfg.safety.backoff_base = 5s;
    cfg.safety.backoff_max = 40s;
    cfg.safety.flap_window = 2min;
    cfg.safety.repair_timeout = 1min;
    Rig rig(cfg);
    constexpr int kGrafts = 12;
    std::mutex mu;
    std::map<std::string, int> running;
    std::vector<std::string> twice;
    rig.handler = [&](const octo::Task& t) {
      std::uint64_t r;
      {
        std::lock_guard lock(mu);
        if (++running[t.payload] > 1) twice.push_back(t.payload);
        r = rng();
      }
      octo::Outcome o = octo::Outcome::success();
      if (r % 4 == 0)
        o = octo::Outcome::failure("random failure");
      else if (r % 4 == 1)  // a real fix
        rig.state.set_graft_status(t.payload, halo::GraftStatus::kInstalled);
      // else: a lie
      std::lock_guard lock(mu);
      --running[t.payload];
      return o;
    };
    for (int g = 0; g < kGrafts; ++g) rig.state.upsert_graft({.id = "g" + std::to_string(g)});
    rig.engine->add_dependency({"graft", "g1"}, {"graft", "g0"});
    rig.engine->silence({.match = {.subject_id = "g11"}, .from = 0s, .until = 1h, .reason = "p"});
    std::map<std::string, std::vector<std::chrono::nanoseconds>> dispatches;
    for (int step = 0; step < 150; ++step) {
      for (int k = 0; k < 2; ++k) {
        const int g = static_cast<int>(rng() % kGrafts);
        rig.state.set_graft_status("g" + std::to_string(g), rng() % 3 == 0
                                                                ? halo::GraftStatus::kInstalled
                                                                : halo::GraftStatus::kFailed);
      }
      const auto before = rig.engine->status().lifecycle;
      auto c = rig.cycle();
      for (const auto& d : c->dispatch_results) {
        if (d.status != halo::DispatchStatus::kDispatched) continue;
        const auto& gt = c->generated_tasks[d.task_index];
        dispatches[gt.task.payload].push_back(rig.clock->now());
        EXPECT_NE(gt.task.payload, "g11") << "silenced";
        for (const auto& l : before) {
          if (l.subject_id != gt.task.payload) continue;
          EXPECT_NE(l.state, WeakPointState::kVerifying) << gt.task.payload;
          EXPECT_NE(l.state, WeakPointState::kEscalated) << gt.task.payload;
          EXPECT_NE(l.state, WeakPointState::kRepairing) << gt.task.payload;
        }
        if (gt.task.payload == "g1") {
          for (const auto& wp : c->weak_points)
            EXPECT_NE(wp.subject_id, "g0") << "g1 repaired while its parent g0 was unhealthy";
          for (const auto& l : before)
            EXPECT_FALSE(l.subject_id == "g0" && (l.state == WeakPointState::kRepairing ||
                                                  l.state == WeakPointState::kVerifying))
                << "g1 repaired while its parent g0 was under repair";
        }
      }
      rig.clock->advance(std::chrono::seconds(1 + rng() % 15));
    }
    std::lock_guard lock(mu);
    EXPECT_TRUE(twice.empty()) << "seed " << seed;
    for (const auto& [subject, times] : dispatches) {
      for (std::size_t i = 0; i + 3 < times.size(); ++i)
        EXPECT_GE(times[i + 3] - times[i], cfg.safety.budget_window)
            << subject << " seed " << seed << ": four repairs within the budget window";
    }
  }
}

}  // namespace

#include "halo/engine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <future>
#include <latch>
#include <sstream>
#include <thread>

#include "engine_rig.hpp"    // tests/support
#include "halo_compare.hpp"  // tests/support
#include "manual_state.hpp"  // tests/support
#include "text_shape.hpp"    // tests/support

namespace {

using namespace std::chrono_literals;
using halo::DispatchStatus;
using halo::Level;
using octo_test::expect_same_weak_point;
using octo_test::has_shape;
using octo_test::open_rails;
using octo_test::Rig;
using octo_test::statuses;

TEST(EngineConfig, RejectsBadValuesByName) {
  halo::SystemState state;
  auto expect_throw = [&](halo::EngineConfig c, const std::string& field) {
    try {
      halo::Engine e(state, std::move(c));
      ADD_FAILURE() << "no throw for " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  halo::EngineConfig c;
  c.safety.repair_burst = 0;
  expect_throw(c, "repair_burst");
  c = {};
  c.safety.blast_radius_percent = 0;
  expect_throw(c, "blast_radius_percent");
  c = {};
  c.safety.repairs_per_second = -1;
  expect_throw(c, "repairs_per_second");
  c = {};
  c.escalate_after = 0;
  expect_throw(c, "escalate_after");
  c = {};
  c.history_limit = 0;
  expect_throw(c, "history_limit");
}

// Enum values cast from outside input are refused by name where they enter.
TEST(Engine, AModeOutsideTheEnumIsRefused) {
  halo::SystemState state;
  halo::Engine engine(state);
  const auto bad = static_cast<halo::Mode>(7);
  EXPECT_THROW(engine.run_cycle("manual", {}, bad), std::invalid_argument);
  EXPECT_THROW(engine.request({halo::TriggerKind::kEvent, "x", {}, bad}), std::invalid_argument);
  EXPECT_THROW(state.upsert_graft({.id = "g", .status = static_cast<halo::GraftStatus>(9)}),
               std::invalid_argument);
  state.upsert_graft({.id = "g"});
  EXPECT_THROW(state.set_graft_status("g", static_cast<halo::GraftStatus>(3)),
               std::invalid_argument);
  EXPECT_NE(engine.run_cycle("manual"), nullptr) << "still works";
}

TEST(Engine, CycleRecordsIdTimestampAndSummary) {
  Rig rig(open_rails());
  rig.state.upsert_agent({.id = "a1", .online = false});
  auto c = rig.cycle();
  ASSERT_TRUE(c);
  EXPECT_TRUE(has_shape(c->id, "hhhhhhhh-hhhh-4hhh-hhhh-hhhhhhhhhhhh")) << c->id;
  EXPECT_NE(std::string("89ab").find(c->id[19]), std::string::npos) << c->id;  // RFC 4122 variant
  EXPECT_TRUE(has_shape(c->timestamp, "dddd-dd-ddTdd:dd:dd.dddZ")) << c->timestamp;
  EXPECT_EQ(c->analysis.size(), 7u);
  ASSERT_EQ(c->weak_points.size(), 1u);
  ASSERT_EQ(c->generated_tasks.size(), 1u);
  EXPECT_EQ(c->generated_tasks[0].task.type, "agent.revive");
  EXPECT_EQ(c->generated_tasks[0].task.priority, octo::Priority::kCritical);
  EXPECT_EQ(c->generated_tasks[0].task.target_agents, std::vector<std::string>{"dreamops"});
  EXPECT_EQ(c->summary.dispatched, 1u);
  EXPECT_NE(c->summary.text.find("1 dispatched"), std::string::npos);
  auto st = rig.engine->status();
  EXPECT_EQ(st.cycles, 1u);
  EXPECT_EQ(st.cycles_by_trigger.at("manual"), 1u);
  EXPECT_EQ(st.last_summary, c->summary.text);
  ASSERT_TRUE(st.last_run.has_value());
  EXPECT_EQ(*st.last_run, c->started);
  const auto& t = c->timings;
  for (double phase : {t.snapshot, t.analyze, t.group, t.track, t.plan, t.dispatch, t.record})
    EXPECT_GE(phase, 0.0);
  EXPECT_GT(t.analyze, 0.0);  // seven analyzers ran
  EXPECT_LE(t.snapshot + t.analyze + t.group + t.track + t.plan + t.dispatch + t.record,
            c->duration_ms + 1e-6);
  EXPECT_NE(rig.cycle()->id, c->id);
}

TEST(Engine, LightModeRunsThreeAnalyzersAndOnlySuggests) {
  Rig rig(open_rails());
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.state.upsert_graft({.id = "g1", .status = halo::GraftStatus::kFailed});
  auto c = rig.cycle(halo::Mode::kLight);
  EXPECT_EQ(c->analysis.size(), 3u);
  EXPECT_TRUE(c->dry_run);
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"suggested", 1}}));
  EXPECT_EQ(rig.ran_count(), 0u);
}

TEST(Engine, DryRunDispatchesNothing) {
  auto cfg = open_rails();
  cfg.dry_run = true;
  Rig rig(cfg);
  for (int i = 0; i < 5; ++i) rig.state.upsert_agent({.id = std::to_string(i), .online = false});
  auto c = rig.cycle();
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"suggested", 5}}));
  EXPECT_EQ(rig.ran_count(), 0u);
  EXPECT_EQ(rig.executor->status().accepted, 0u);
}

TEST(WeakPoints, GroupedBySubjectWithStableFingerprint) {
  auto cfg = open_rails();
  cfg.dry_run = true;
  Rig rig(cfg);
  rig.state.report_probe("/api", 503, 3000.0);
  auto& ep = rig.state.endpoint("/api");
  for (int i = 0; i < 40; ++i) ep.record(1.0, true);
  rig.state.upsert_squad({.id = "s-idle"});  // a low issue: no weak point
  auto c1 = rig.cycle();
  ASSERT_EQ(c1->weak_points.size(), 1u);
  const auto& wp = c1->weak_points[0];
  EXPECT_EQ(wp.issues.size(), 2u);  // down + errors
  EXPECT_EQ(wp.severity, Level::kCritical);
  EXPECT_EQ(wp.fingerprint, halo::fingerprint("endpoint", "/api"));
  char hex[20];
  std::snprintf(hex, sizeof hex, "wp-%016llx", static_cast<unsigned long long>(wp.fingerprint));
  EXPECT_EQ(wp.id, hex);
  auto c2 = rig.cycle();
  ASSERT_EQ(c2->weak_points.size(), 1u);
  EXPECT_EQ(c2->weak_points[0].id, wp.id);
  EXPECT_EQ(c2->weak_points[0].cycles_seen, 2u);
  EXPECT_NE(halo::fingerprint("endpoint", "/api"), halo::fingerprint("agent", "/api"));
}

TEST(WeakPoints, EscalateAfterPersistingAndForgetWhenHealed) {
  auto cfg = open_rails();
  cfg.dry_run = true;
  cfg.escalate_after = 3;
  Rig rig(cfg);
  rig.state.upsert_graft({.id = "g", .status = halo::GraftStatus::kPending});
  EXPECT_EQ(rig.cycle()->weak_points.at(0).severity, Level::kMedium);
  EXPECT_EQ(rig.cycle()->weak_points.at(0).severity, Level::kMedium);
  auto third = rig.cycle();
  EXPECT_EQ(third->weak_points.at(0).severity, Level::kHigh);
  EXPECT_EQ(third->weak_points.at(0).base_severity, Level::kMedium);
  // A light cycle does not run the graft analyzer: it cannot heal the weak point.
  rig.cycle(halo::Mode::kLight);
  EXPECT_EQ(rig.engine->status().open_weak_points, 1u);
  rig.state.set_graft_status("g", halo::GraftStatus::kInstalled);
  EXPECT_TRUE(rig.cycle()->weak_points.empty());
  EXPECT_EQ(rig.engine->status().open_weak_points, 0u);
  rig.state.set_graft_status("g", halo::GraftStatus::kPending);
  EXPECT_EQ(rig.cycle()->weak_points.at(0).cycles_seen, 1u);
}

// Reports `count` widgets while `on`; the first half of its issues name another analyzer
// ("elsewhere", which never runs), as a user analyzer may.
struct Widgets : halo::Analyzer {
  std::atomic<bool> on{true};
  int count = 0;
  explicit Widgets(int n) : count(n) {}
  std::string_view name() const noexcept override { return "widgets"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override {
    halo::AnalyzerResult r;
    if (!on.load()) return r;
    for (int i = 0; i < count; ++i) {
      halo::Issue issue;
      issue.subject_type = "widget";
      issue.subject_id = std::string("w").append(std::to_string(i));
      issue.id = "widget-" + issue.subject_id;
      issue.analyzer = i < count / 2 ? "elsewhere" : "widgets";
      issue.severity = Level::kHigh;
      issue.rule = "broken";
      r.issues.push_back(std::move(issue));
    }
    return r;
  }
};

// Enough weak points for tracking to run on its shards in parallel: the same escalation and
// forgetting as with a few, and a weak point naming an analyzer that never runs is never
// forgotten (nothing that could see it healed ran).
TEST(WeakPoints, ManyTrackedInParallelEscalateAndForgetAsFew) {
  auto cfg = open_rails();
  cfg.dry_run = true;
  cfg.escalate_after = 3;
  Rig rig(cfg);
  auto widgets = std::make_unique<Widgets>(400);
  Widgets* w = widgets.get();
  rig.engine->add_analyzer(std::move(widgets));
  auto agent = [](int i) { return std::string("a").append(std::to_string(i)); };
  for (int i = 0; i < 600; ++i) rig.state.upsert_agent({.id = agent(i), .online = false});
  for (std::uint32_t k = 1; k <= 3; ++k) {
    auto c = rig.cycle();
    ASSERT_EQ(c->weak_points.size(), 1000u);
    for (const auto& wp : c->weak_points) {
      ASSERT_EQ(wp.cycles_seen, k) << wp.subject_id;
      ASSERT_EQ(wp.escalation, k >= 3 ? 1u : 0u) << wp.subject_id;
    }
  }
  EXPECT_EQ(rig.engine->status().open_weak_points, 1000u);
  w->on = false;
  for (int i = 0; i < 300; ++i) rig.state.upsert_agent({.id = agent(i)});
  auto healed = rig.cycle();
  EXPECT_EQ(healed->weak_points.size(), 300u);
  for (const auto& wp : healed->weak_points) EXPECT_EQ(wp.cycles_seen, 4u);
  // 300 agents still down, 200 widgets whose issues named "elsewhere".
  EXPECT_EQ(rig.engine->status().open_weak_points, 500u);
  w->on = true;
  for (int i = 0; i < 300; ++i) rig.state.upsert_agent({.id = agent(i), .online = false});
  std::map<std::string, std::uint32_t> seen;
  for (const auto& wp : rig.cycle()->weak_points) seen[wp.subject_id] = wp.cycles_seen;
  ASSERT_EQ(seen.size(), 1000u);
  EXPECT_EQ(seen["a0"], 1u);    // forgotten when healed: counts again from one
  EXPECT_EQ(seen["a599"], 5u);  // never healed
  EXPECT_EQ(seen["w0"], 4u);    // kept, not seen in the cycle without widgets
  EXPECT_EQ(seen["w399"], 1u);  // forgotten: "widgets" ran and did not see it
}

TEST(SafetyRails, InFlightRepairIsNotRepeated) {
  Rig rig(open_rails());
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::latch started(1);
  rig.handler = [&](const octo::Task&) {
    started.count_down();
    gate.wait();
    return octo::Outcome::success();
  };
  rig.state.upsert_agent({.id = "a1", .online = false});
  auto c1 = rig.engine->run_cycle();
  EXPECT_EQ(statuses(*c1), (std::map<std::string, int>{{"dispatched", 1}}));
  started.wait();
  auto c2 = rig.engine->run_cycle();
  EXPECT_EQ(statuses(*c2), (std::map<std::string, int>{{"suppressed:in-flight", 1}}));
  EXPECT_EQ(rig.engine->status().repairs_in_flight, 1u);
  release.set_value();
  rig.executor->wait_idle();
  EXPECT_EQ(rig.engine->status().repairs_in_flight, 0u);
  EXPECT_EQ(rig.engine->status().suppressed_by_reason.at("in-flight"), 1u);
}

TEST(SafetyRails, TokenBucketLimitsDispatches) {
  auto cfg = open_rails();
  cfg.safety.repair_burst = 2;
  cfg.safety.repairs_per_second = 1.0;
  Rig rig(cfg);
  for (int i = 0; i < 10; ++i) rig.state.upsert_agent({.id = std::to_string(i), .online = false});
  EXPECT_EQ(statuses(*rig.cycle()),
            (std::map<std::string, int>{{"dispatched", 2}, {"suppressed:rate-limited", 8}}));
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"suppressed:rate-limited", 8},
                                                                {"suppressed:verifying", 2}}));
  rig.clock->advance(1s);
  EXPECT_EQ(statuses(*rig.cycle()),
            (std::map<std::string, int>{
                {"dispatched", 1}, {"suppressed:rate-limited", 7}, {"suppressed:verifying", 2}}));
  // Refilled to the burst, not beyond. The three repaired agents are still offline at their
  // verify_timeout: failed repairs, backing off.
  rig.clock->advance(1h);
  EXPECT_EQ(statuses(*rig.cycle()),
            (std::map<std::string, int>{
                {"dispatched", 2}, {"suppressed:backoff", 3}, {"suppressed:rate-limited", 5}}));
}

TEST(SafetyRails, BlastRadiusCapsAgentsUnderRepair) {
  auto cfg = open_rails();
  cfg.safety.blast_radius_percent = 20;  // of 10 agents: 2
  Rig rig(cfg);
  auto release = rig.hold_repairs();
  for (int i = 0; i < 10; ++i) rig.state.upsert_agent({.id = std::to_string(i), .online = i >= 5});
  rig.state.upsert_graft({.id = "g", .status = halo::GraftStatus::kFailed});  // not an agent
  auto c = rig.engine->run_cycle();
  EXPECT_EQ(statuses(*c),
            (std::map<std::string, int>{{"dispatched", 3}, {"suppressed:blast-radius", 3}}));
  release.set_value();
  rig.executor->wait_idle();
}

TEST(SafetyRails, BackoffAfterFailedRepairDoublesAndFailureEscalates) {
  auto cfg = open_rails();
  cfg.safety.backoff_base = 30s;
  cfg.escalate_after = 100;
  Rig rig(cfg);
  rig.handler = [](const octo::Task&) { return octo::Outcome::failure("still broken"); };
  rig.state.upsert_graft({.id = "g", .status = halo::GraftStatus::kFailed});
  auto c1 = rig.cycle();
  EXPECT_EQ(statuses(*c1), (std::map<std::string, int>{{"dispatched", 1}}));
  EXPECT_EQ(c1->weak_points[0].severity, Level::kHigh);
  auto c2 = rig.cycle();
  EXPECT_EQ(statuses(*c2), (std::map<std::string, int>{{"suppressed:backoff", 1}}));
  EXPECT_EQ(c2->weak_points[0].severity, Level::kCritical);  // the failure escalated it
  rig.clock->advance(30s);
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  rig.clock->advance(59s);  // second failure: 60 s
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"suppressed:backoff", 1}}));
  rig.clock->advance(1s);
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  EXPECT_EQ(rig.engine->status().repairs_failed, 3u);
}

// Nobody decided: the approval expires at the first cycle past approval_ttl (audited as a
// rejection), and the weak point, still there, asks again with a new id.
TEST(Approval, AnUndecidedApprovalExpiresAndIsAskedAgain) {
  auto cfg = open_rails();
  cfg.safety.approval_required = {"env.sync"};
  cfg.safety.approval_ttl = 10min;
  Rig rig(cfg);
  rig.state.set_env_baseline({{"DB", "db1"}});
  rig.state.set_env_snapshot("prod", {});
  rig.cycle();
  const auto first = rig.engine->pending_approvals();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].expires_at, rig.clock->now() + 10min);
  rig.clock->advance(9min);
  EXPECT_EQ(statuses(*rig.cycle()),
            (std::map<std::string, int>{{"suppressed:awaiting-approval", 1}}));
  rig.clock->advance(1min);
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"pending-approval", 1}}));
  const auto second = rig.engine->pending_approvals();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].id, first[0].id);
  EXPECT_EQ(rig.engine->approve(first[0].id), halo::ApprovalOutcome::kUnknownId);
  bool audited = false;
  for (const auto& e : rig.engine->audit().entries())
    audited |= e.kind == halo::AuditKind::kRejected && e.approval_id == first[0].id &&
               e.reason == "expired: not approved within 600 s";
  EXPECT_TRUE(audited);
  EXPECT_EQ(rig.ran_count(), 0u);
}

TEST(Approval, PendingThenApproveOrReject) {
  auto cfg = open_rails();
  cfg.safety.approval_required = {"env.sync"};
  Rig rig(cfg);
  rig.state.set_env_baseline({{"DB", "db1"}});
  rig.state.set_env_snapshot("prod", {});
  rig.state.set_env_snapshot("canary", {{"DB", "other"}});
  auto c1 = rig.cycle();
  EXPECT_EQ(statuses(*c1), (std::map<std::string, int>{{"pending-approval", 2}}));
  EXPECT_EQ(rig.ran_count(), 0u);
  auto pending = rig.engine->pending_approvals();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(rig.engine->status().pending_approvals, 2u);
  // Waiting for a decision is not a reason to ask again.
  EXPECT_EQ(statuses(*rig.cycle()),
            (std::map<std::string, int>{{"suppressed:awaiting-approval", 2}}));

  EXPECT_EQ(rig.engine->approve(pending[0].id), halo::ApprovalOutcome::kDispatched);
  rig.executor->wait_idle();  // the approved repair's outcome is audited before the rejection
  EXPECT_EQ(rig.engine->reject(pending[1].id, "not now"), halo::ApprovalOutcome::kRejected);
  EXPECT_EQ(rig.engine->approve(pending[1].id), halo::ApprovalOutcome::kUnknownId);
  EXPECT_EQ(rig.engine->reject(999), halo::ApprovalOutcome::kUnknownId);
  rig.executor->wait_idle();
  ASSERT_EQ(rig.ran_count(), 1u);
  EXPECT_EQ(rig.ran[0].type, "env.sync");
  EXPECT_EQ(rig.ran[0].payload, pending[0].planned.task.payload);

  std::vector<std::string> kinds;
  for (const auto& e : rig.engine->audit().entries()) kinds.emplace_back(halo::to_string(e.kind));
  EXPECT_EQ(kinds, (std::vector<std::string>{"analysis", "pending-approval", "pending-approval",
                                             "analysis", "suppressed", "suppressed", "approved",
                                             "dispatched",
                                             "state-changed",  // open -> repairing
                                             "succeeded",
                                             "state-changed",  // repairing -> verifying
                                             "rejected"}));
}

struct Throwing : halo::Analyzer {
  std::string_view name() const noexcept override { return "throwing"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override {
    throw std::runtime_error("disk on fire");
  }
};

struct ThrowingStrategy : halo::Strategy {
  std::string_view name() const noexcept override { return "picky"; }
  std::optional<octo::Task> plan(const halo::WeakPoint& wp) const override {
    if (wp.subject_id == "bad") throw std::runtime_error("cannot plan");
    return std::nullopt;
  }
};

TEST(Engine, ThrowingAnalyzerAndStrategyDoNotStopTheCycle) {
  auto cfg = open_rails();
  cfg.dry_run = true;
  Rig rig(cfg);
  rig.engine->add_analyzer(std::make_unique<Throwing>());
  rig.engine->add_strategy(std::make_unique<ThrowingStrategy>());
  rig.state.upsert_agent({.id = "bad", .online = false});
  rig.state.upsert_agent({.id = "good", .online = false});
  auto c = rig.cycle();
  ASSERT_EQ(c->analysis.size(), 8u);
  const auto& t = c->analysis.back();
  EXPECT_EQ(t.name, "throwing");
  EXPECT_EQ(t.error, "disk on fire");
  ASSERT_EQ(t.issues.size(), 1u);
  EXPECT_EQ(t.issues[0].severity, Level::kHigh);
  ASSERT_EQ(c->errors.size(), 1u);
  EXPECT_NE(c->errors[0].find("cannot plan"), std::string::npos);
  ASSERT_EQ(c->generated_tasks.size(), 1u);  // "good" still planned by the built-in
  EXPECT_EQ(c->generated_tasks[0].task.payload, "good");
}

// A service analyzer that reports what it is told to (set before each cycle).
struct Scripted : halo::Analyzer {
  std::vector<halo::Issue> issues;
  std::string_view name() const noexcept override { return "scripted"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override {
    halo::AnalyzerResult r;
    r.issues = issues;
    return r;
  }
};

halo::Issue issue(std::string id, std::string type, std::string subject, Level severity,
                  std::string analyzer = "scripted") {
  halo::Issue i;
  i.id = std::move(id);
  i.analyzer = std::move(analyzer);
  i.severity = severity;
  i.subject_type = std::move(type);
  i.subject_id = std::move(subject);
  i.rule = "offline";
  return i;
}

// Malformed issues and claims about subjects that do not exist never reach the strategies: a
// service analyzer claiming agent-health for an agent the state does not hold got
// `agent.revive ghost` dispatched, and severity 42 counted as critical.
TEST(Engine, AnalyzerResultsAreValidatedBeforeTheyCount) {
  Rig rig(open_rails());
  auto scripted = std::make_unique<Scripted>();
  Scripted* sc = scripted.get();
  rig.engine->add_analyzer(std::move(scripted));
  rig.state.upsert_agent({.id = "down", .online = false});
  rig.state.upsert_agent({.id = "gone", .online = false});
  rig.state.remove_agent("gone");
  auto first = rig.cycle();
  std::string builtin_id;
  for (const auto& a : first->analysis)
    if (a.name == "agent-health" && !a.issues.empty()) builtin_id = a.issues[0].id;
  ASSERT_FALSE(builtin_id.empty());
  rig.executor->wait_idle();

  sc->issues = {
      issue("ghost-1", "agent", "ghost", Level::kCritical, "agent-health"),  // no such agent
      issue("gone-1", "agent", "gone", Level::kCritical),                    // removed
      issue("", "widget", "w1", Level::kHigh),                               // no id
      issue("w-2", "", "w2", Level::kHigh),                                  // no type
      issue("w-3", "widget", "", Level::kHigh),                              // no subject
      issue("w-4", "widget", "w4", static_cast<Level>(42)),                  // no such level
      issue(builtin_id, "widget", "w5", Level::kHigh),                       // a built-in's id
      issue("w-6", "widget", "w6", Level::kHigh),                            // kept
      issue("w-6", "widget", "w7", Level::kHigh),                            // its id again
      issue("down-1", "agent", "down", Level::kHigh),                        // true: kept
  };
  auto c = rig.cycle();
  const halo::AnalyzerResult* r = nullptr;
  for (const auto& a : c->analysis)
    if (a.name == "scripted") r = &a;
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->issues.size(), 2u);
  EXPECT_EQ(r->issues[0].id, "w-6");
  EXPECT_EQ(r->issues[0].subject_id, "w6");
  EXPECT_EQ(r->issues[1].id, "down-1");
  EXPECT_EQ(r->rejected, 8u);
  ASSERT_EQ(r->rejections.size(), 5u);
  EXPECT_NE(r->rejections[0].find("'ghost'"), std::string::npos) << r->rejections[0];
  EXPECT_NE(r->rejections[3].find("subject_type"), std::string::npos) << r->rejections[3];
  for (const auto& t : c->generated_tasks) {
    EXPECT_NE(t.task.payload, "ghost");
    EXPECT_NE(t.task.payload, "gone");
  }
  bool w4 = false;
  for (const auto& wp : c->weak_points) w4 = w4 || wp.subject_id == "w4";
  EXPECT_FALSE(w4) << "severity 42 formed a weak point";
  EXPECT_EQ(rig.engine->status().rejected_issues.at("scripted"), 8u);
  EXPECT_EQ(rig.engine->status().rejected_issues.count("agent-health"), 0u);

  // Audited: one analysis entry per cycle, one rejection entry naming the analyzer.
  int analysis = 0, rejected = 0;
  for (const auto& e : rig.engine->audit().entries()) {
    if (e.cycle_id != c->id) continue;
    if (e.kind == halo::AuditKind::kAnalysis) {
      ++analysis;
      EXPECT_NE(e.reason.find("scripted 2"), std::string::npos) << e.reason;
      EXPECT_NE(e.reason.find("agent-health 1"), std::string::npos) << e.reason;
      EXPECT_NE(e.reason.find("errors: none"), std::string::npos) << e.reason;
    }
    if (e.kind == halo::AuditKind::kIssuesRejected) {
      ++rejected;
      EXPECT_EQ(e.subject, "scripted");
      EXPECT_EQ(e.reason.rfind("8 rejected: ", 0), 0u) << e.reason;
    }
  }
  EXPECT_EQ(analysis, 1);
  EXPECT_EQ(rejected, 1);
}

struct ThrowsNothingToSay : halo::Analyzer {
  std::string_view name() const noexcept override { return "mute"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override { throw std::runtime_error(""); }
};

struct ThrowsNonException : halo::Analyzer {
  std::string_view name() const noexcept override { return "odd"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override { throw 42; }
};

TEST(Engine, AnAnalyzerThatThrowsIsReportedEvenWithoutAMessage) {
  halo::EngineConfig cfg;
  cfg.builtin_analyzers = false;
  cfg.dry_run = true;
  Rig rig(cfg);
  rig.engine->add_analyzer(std::make_unique<ThrowsNothingToSay>());
  rig.engine->add_analyzer(std::make_unique<ThrowsNonException>());
  auto c = rig.cycle();
  ASSERT_EQ(c->analysis.size(), 2u);
  for (const auto& a : c->analysis) {
    ASSERT_EQ(a.issues.size(), 1u) << a.name;
    EXPECT_EQ(a.issues[0].rule, "error");
    EXPECT_EQ(a.issues[0].severity, Level::kHigh);
  }
  EXPECT_EQ(c->analysis[1].error, "unknown exception");
  EXPECT_EQ(c->weak_points.size(), 2u);
}

struct UserStrategy : halo::Strategy {
  std::string_view name() const noexcept override { return "reboot"; }
  std::optional<octo::Task> plan(const halo::WeakPoint& wp) const override {
    if (wp.subject_type != "agent") return std::nullopt;
    return octo::Task{.type = "agent.reboot", .payload = wp.subject_id};
  }
};

TEST(Engine, UserStrategiesComeFirst) {
  auto cfg = open_rails();
  cfg.dry_run = true;
  Rig rig(cfg);
  rig.engine->add_strategy(std::make_unique<UserStrategy>());
  rig.state.upsert_agent({.id = "a", .online = false});
  auto c = rig.cycle();
  ASSERT_EQ(c->generated_tasks.size(), 1u);
  EXPECT_EQ(c->generated_tasks[0].task.type, "agent.reboot");
  EXPECT_EQ(c->generated_tasks[0].strategy, "reboot");
}

TEST(Engine, NoExecutorAttachedIsAFailedDispatch) {
  Rig rig(open_rails(), false);
  rig.state.upsert_agent({.id = "a", .online = false});
  auto c = rig.cycle();
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{{"failed:no executor attached", 1}}));
}

TEST(Engine, HistoryIsBoundedNewestFirst) {
  auto cfg = open_rails();
  cfg.history_limit = 3;
  Rig rig(cfg);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(rig.cycle()->id);
  auto h = rig.engine->history(10);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0]->id, ids[4]);
  EXPECT_EQ(h[2]->id, ids[2]);
  EXPECT_EQ(rig.engine->history(1).size(), 1u);
}

// Cycles that leave history lend their storage to later ones: only when nobody else holds them,
// and without carrying anything over.
TEST(Engine, CyclesLeavingHistoryStayIntactForHoldersAndLeaveNothingBehind) {
  auto cfg = open_rails();
  cfg.history_limit = 1;
  cfg.dry_run = true;
  Rig rig(cfg);
  // Built with append: GCC 12 warns falsely (-Wrestrict) on "literal" + string at -O3.
  auto agent = [](int i) { return std::string("a").append(std::to_string(i)); };
  for (int i = 0; i < 40; ++i) rig.state.upsert_agent({.id = agent(i), .online = false});
  rig.state.upsert_graft({.id = "g", .status = halo::GraftStatus::kFailed});
  auto held = rig.cycle();
  const halo::CycleResult copy = *held;
  ASSERT_EQ(copy.weak_points.size(), 41u);
  for (int i = 0; i < 4; ++i) rig.cycle();  // `held` left history three cycles ago
  ASSERT_NE(rig.engine->history(1).at(0)->id, held->id);
  EXPECT_EQ(held->analysis.size(), copy.analysis.size());
  for (std::size_t k = 0; k < copy.analysis.size(); ++k)
    EXPECT_EQ(held->analysis[k].issues.size(), copy.analysis[k].issues.size());
  ASSERT_EQ(held->weak_points.size(), copy.weak_points.size());
  for (std::size_t k = 0; k < copy.weak_points.size(); ++k) {
    EXPECT_EQ(held->weak_points[k].id, copy.weak_points[k].id);
    EXPECT_EQ(held->weak_points[k].issues.size(), 1u);
  }
  ASSERT_EQ(held->generated_tasks.size(), 41u);
  EXPECT_EQ(held->generated_tasks[0].task.type, copy.generated_tasks[0].task.type);
  EXPECT_EQ(held->dispatch_results.size(), 41u);

  // Fewer problems: the next cycles (whose predecessors were freed and recycled) report only
  // what is there now.
  for (int i = 0; i < 30; ++i) rig.state.upsert_agent({.id = agent(i)});
  for (int i = 0; i < 3; ++i) {
    auto c = rig.cycle();
    ASSERT_EQ(c->weak_points.size(), 11u);
    ASSERT_EQ(c->generated_tasks.size(), 11u);
    ASSERT_EQ(c->dispatch_results.size(), 11u);
    for (std::size_t k = 0; k < c->weak_points.size(); ++k) {
      EXPECT_EQ(c->generated_tasks[k].weak_point, c->weak_points[k].id);
      EXPECT_EQ(c->dispatch_results[k].task_index, k);
      EXPECT_EQ(c->dispatch_results[k].status, halo::DispatchStatus::kSuggested);
    }
    const auto audit = rig.engine->audit().entries(11);
    ASSERT_EQ(audit.size(), 11u);
    for (const auto& e : audit) {
      EXPECT_EQ(e.cycle_id, c->id);
      EXPECT_EQ(e.kind, halo::AuditKind::kSuggested);
    }
  }
}

TEST(Engine, RecycledDispatchResultsCarryNothingOver) {
  auto cfg = open_rails();
  cfg.history_limit = 1;
  cfg.safety.repair_burst = 5;  // the manual clock never refills it
  Rig rig(cfg);
  for (int i = 0; i < 20; ++i)
    rig.state.upsert_agent({.id = std::string("a").append(std::to_string(i)), .online = false});
  auto first = rig.cycle();
  EXPECT_EQ(statuses(*first),
            (std::map<std::string, int>{{"dispatched", 5}, {"suppressed:rate-limited", 15}}));
  first.reset();  // the next cycle takes its storage
  auto second = rig.cycle();
  // The five repaired agents wait for their verification; the rest for tokens.
  EXPECT_EQ(statuses(*second), (std::map<std::string, int>{{"suppressed:rate-limited", 15},
                                                           {"suppressed:verifying", 5}}));
  for (const auto& d : second->dispatch_results) {
    EXPECT_EQ(d.task_id, 0u);
    EXPECT_EQ(d.approval_id, 0u);
  }
}

// Everything but the ids that differ between two engines (cycle UUIDs, executor task ids).
void expect_same_cycle(const halo::CycleResult& a, const halo::CycleResult& b) {
  ASSERT_EQ(a.weak_points.size(), b.weak_points.size());
  for (std::size_t k = 0; k < a.weak_points.size(); ++k)
    expect_same_weak_point(a.weak_points[k], b.weak_points[k]);
  ASSERT_EQ(a.generated_tasks.size(), b.generated_tasks.size());
  for (std::size_t k = 0; k < a.generated_tasks.size(); ++k) {
    const auto &x = a.generated_tasks[k], &y = b.generated_tasks[k];
    EXPECT_EQ(x.weak_point, y.weak_point);
    EXPECT_EQ(x.fingerprint, y.fingerprint);
    EXPECT_EQ(x.subject_type, y.subject_type);
    EXPECT_EQ(x.strategy, y.strategy);
    EXPECT_EQ(x.task.type, y.task.type);
    EXPECT_EQ(x.task.payload, y.task.payload);
    EXPECT_EQ(x.task.priority, y.task.priority);
    EXPECT_EQ(x.task.target_agents, y.task.target_agents);
  }
  ASSERT_EQ(a.dispatch_results.size(), b.dispatch_results.size());
  for (std::size_t k = 0; k < a.dispatch_results.size(); ++k) {
    const auto &x = a.dispatch_results[k], &y = b.dispatch_results[k];
    EXPECT_EQ(x.task_index, y.task_index);
    EXPECT_EQ(x.status, y.status);
    EXPECT_EQ(x.reason, y.reason);
    EXPECT_EQ(x.task_id != 0, y.task_id != 0);
    EXPECT_EQ(x.approval_id, y.approval_id);
  }
  EXPECT_EQ(a.summary.text, b.summary.text);
}

// An engine that recycles the storage of each cycle leaving history, and the audit entries its
// log pushes out, must report exactly what an engine that recycles nothing reports (its cycles
// are all held, its log never fills), while the problems change shape: fewer or more weak
// points, issues per weak point, escalations, every dispatch status.
TEST(Engine, RecyclingEngineReportsWhatAFreshOneDoes) {
  auto cfg = open_rails();
  cfg.history_limit = 1;
  cfg.safety.repair_burst = 1;  // one dispatch, then rate-limited (manual time never refills)
  cfg.safety.approval_required = {"env.sync"};
  auto big_audit = cfg;
  cfg.audit_capacity = 40;  // turns over every cycle: the entries pushed out are reused
  Rig recycling(cfg), fresh(big_audit);
  std::vector<std::shared_ptr<const halo::CycleResult>> held;  // keeps `fresh` from recycling
  auto agent = [](char c, int i) { return std::string(1, c).append(std::to_string(i)); };
  const std::vector<std::function<void(halo::SystemState&)>> steps = {
      [&](halo::SystemState& s) {
        for (int i = 0; i < 30; ++i) s.upsert_agent({.id = agent('a', i), .online = false});
        s.report_probe("/api", 503, 3000.0);
        s.upsert_graft({.id = "g", .status = halo::GraftStatus::kFailed, .error = "disk full"});
        s.set_env_baseline({{"DB", "db1"}, {"MODE", "x"}});
        s.set_env_snapshot("prod", {{"MODE", "y"}});
      },
      [&](halo::SystemState& s) {
        for (int i = 0; i < 20; ++i) s.upsert_agent({.id = agent('a', i)});
        for (int i = 0; i < 4; ++i) s.upsert_agent({.id = agent('b', i), .online = false});
        s.report_probe("/api", 200, 3000.0);
        s.upsert_graft({.id = "g", .status = halo::GraftStatus::kPending});
      },
      [&](halo::SystemState&) {},  // the same problems again: escalation
      [&](halo::SystemState& s) {
        for (int i = 0; i < 30; ++i) s.upsert_agent({.id = agent('a', i)});
        s.report_probe("/api", 200, 10.0);
        for (int i = 0; i < 60; ++i) s.upsert_agent({.id = agent('c', i), .online = false});
      },
      [&](halo::SystemState& s) {
        for (int i = 0; i < 60; ++i) s.upsert_agent({.id = agent('c', i)});
      },
  };
  std::vector<std::string> ids_recycling, ids_fresh;
  std::vector<std::chrono::system_clock::time_point> started;
  // The last 40 entries of both logs (all the small one holds), after every cycle.
  auto expect_same_audit = [&] {
    const auto a = recycling.engine->audit().entries(40);
    const auto b = fresh.engine->audit().entries(40);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t k = 0; k < a.size(); ++k) {
      SCOPED_TRACE("audit entry " + std::to_string(a[k].seq));
      EXPECT_EQ(a[k].seq, b[k].seq);
      EXPECT_EQ(a[k].kind, b[k].kind);
      EXPECT_EQ(a[k].weak_point, b[k].weak_point);
      EXPECT_EQ(a[k].task_type, b[k].task_type);
      EXPECT_EQ(a[k].subject, b[k].subject);
      EXPECT_EQ(a[k].reason, b[k].reason);
      EXPECT_EQ(a[k].approval_id, b[k].approval_id);
      EXPECT_EQ(a[k].task_id != 0, b[k].task_id != 0);
      const auto step = std::find(ids_recycling.begin(), ids_recycling.end(), a[k].cycle_id);
      if (a[k].cycle_id.empty()) {
        EXPECT_TRUE(b[k].cycle_id.empty());
      } else {
        ASSERT_NE(step, ids_recycling.end());
        const auto n = static_cast<std::size_t>(step - ids_recycling.begin());
        EXPECT_EQ(b[k].cycle_id, ids_fresh[n]);
        EXPECT_GE(a[k].when, started[n]);  // stamped by this cycle, not left from an older one
      }
    }
  };
  for (std::size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    steps[k](recycling.state);
    steps[k](fresh.state);
    auto r = recycling.cycle();
    held.push_back(fresh.cycle());
    ids_recycling.push_back(r->id);
    started.push_back(r->started);
    ids_fresh.push_back(held.back()->id);
    expect_same_cycle(*r, *held.back());
    expect_same_audit();
    // The cycle's entries still in the log are the last of its decisions, in order (after its
    // analysis-run entry).
    std::vector<halo::AuditEntry> mine;
    for (auto& e : recycling.engine->audit().entries(40))
      if (e.cycle_id == r->id && e.kind != halo::AuditKind::kAnalysis) mine.push_back(std::move(e));
    ASSERT_FALSE(mine.empty());
    ASSERT_LE(mine.size(), r->dispatch_results.size());
    const std::size_t skip = r->dispatch_results.size() - mine.size();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      const auto& d = r->dispatch_results[skip + i];
      const auto& t = r->generated_tasks[d.task_index];
      EXPECT_EQ(mine[i].weak_point, t.weak_point);
      EXPECT_EQ(mine[i].task_type, t.task.type);
      EXPECT_EQ(mine[i].subject, t.task.payload);
      EXPECT_EQ(mine[i].reason, d.reason);
      EXPECT_EQ(mine[i].approval_id, d.approval_id);
      EXPECT_EQ(mine[i].task_id, d.task_id);
    }
  }
  EXPECT_GT(recycling.engine->audit().dropped(), 40u);
}

struct Gate : halo::Analyzer {
  std::latch entered{1};
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> calls{0};
  std::string_view name() const noexcept override { return "gate"; }
  bool light() const noexcept override { return true; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override {
    if (calls.fetch_add(1) == 0) {
      entered.count_down();
      gate.wait();
    }
    return {};
  }
};

// An engine without built-in analyzers whose first cycle ("manual", on a thread of its own) is
// held inside the Gate analyzer until release(): the state in which requests must coalesce.
struct HeldCycle {
  static halo::EngineConfig gated_config() {
    halo::EngineConfig cfg;
    cfg.builtin_analyzers = false;
    return cfg;
  }
  Rig rig{gated_config()};
  Gate* gate = nullptr;
  std::thread first;

  HeldCycle() {
    auto owner = std::make_unique<Gate>();
    gate = owner.get();
    rig.engine->add_analyzer(std::move(owner));
    first = std::thread([this] { EXPECT_TRUE(rig.engine->run_cycle("manual")); });
    gate->entered.wait();
  }
  // Also on an early test failure, so that the held cycle's thread is never left joinable.
  ~HeldCycle() {
    if (first.joinable()) release();
  }
  void release() {
    gate->release.set_value();
    first.join();
  }
};

TEST(SingleFlight, HundredTriggersDuringACycleGiveOneFollowUp) {
  HeldCycle held;
  Rig& rig = held.rig;
  for (int i = 0; i < 100; ++i)
    rig.engine->request({halo::TriggerKind::kErrorRate, "error-rate", {}, halo::Mode::kLight});
  EXPECT_EQ(rig.engine->run_cycle("manual"), nullptr);  // coalesced too
  auto st = rig.engine->status();
  EXPECT_TRUE(st.running);
  EXPECT_EQ(st.pending_triggers, (std::vector<std::string>{"error-rate", "manual"}));
  held.release();
  ASSERT_TRUE(rig.engine->wait_idle(60s));
  st = rig.engine->status();
  EXPECT_EQ(st.cycles, 2u);
  EXPECT_EQ(held.gate->calls.load(), 2);
  EXPECT_EQ(st.coalesced, 101u);
  EXPECT_EQ(st.cycles_by_trigger.at("error-rate"), 1u);
  EXPECT_EQ(st.served_by_trigger.at("manual"), 2u);  // the first cycle, and folded into the second
  EXPECT_EQ(rig.engine->history(1).at(0)->coalesced, std::vector<std::string>{"manual"});
  EXPECT_TRUE(st.pending_triggers.empty());
  // The follow-up is full because one of the coalesced requests was.
  EXPECT_EQ(rig.engine->history(1).at(0)->mode, halo::Mode::kFull);
}

TEST(SingleFlight, NoFollowUpIsQueuedAfterStop) {
  HeldCycle held;
  Rig& rig = held.rig;
  rig.engine->stop();
  EXPECT_EQ(rig.engine->run_cycle("late"), nullptr);
  rig.engine->request({halo::TriggerKind::kEvent, "event", {}, halo::Mode::kFull});
  EXPECT_TRUE(rig.engine->status().pending_triggers.empty());
  held.release();
  ASSERT_TRUE(rig.engine->wait_idle(60s));
  EXPECT_EQ(rig.engine->status().cycles, 1u);
  EXPECT_EQ(rig.engine->status().coalesced, 0u);
  EXPECT_NE(rig.engine->run_cycle("after"), nullptr);  // run_cycle still works once idle
}

TEST(SingleFlight, TriggersDriveTheEngineThroughRegisterLoop) {
  halo::EngineConfig cfg = open_rails();
  Rig rig(cfg);
  halo::Signals signals(rig.ticker, 10s, 100);
  halo::TriggerConfig tc;
  tc.time_interval = 0s;
  tc.request_threshold = 0;
  auto loop = halo::register_loop(*rig.engine, signals, tc);
  rig.state.upsert_agent({.id = "a", .online = false});
  ASSERT_EQ(loop->trigger_from_event("api.endpoint.failed", "critical"),
            halo::EventOutcome::kFired);
  ASSERT_TRUE(rig.engine->wait_idle(60s));
  rig.executor->wait_idle();
  EXPECT_EQ(rig.engine->status().cycles_by_trigger.at("event"), 1u);
  EXPECT_EQ(rig.ran_count(), 1u);
  loop.stop();
}

// The whole loop: an agent goes offline, HALO dispatches agent.revive to the deploy arm, the
// handler revives it, and the next cycle finds everything healthy.
TEST(EndToEnd, OfflineAgentIsRevivedThroughTheDeployArm) {
  Rig rig(open_rails());
  std::string arm_of_revive;
  rig.handler = [&](const octo::Task& t) {
    if (t.type == "agent.revive") {
      rig.state.set_agent_online(t.payload, true);
      rig.state.heartbeat(t.payload);
    }
    return octo::Outcome::success();
  };
  for (int i = 0; i < 20; ++i) rig.state.upsert_agent({.id = "agent-" + std::to_string(i)});
  EXPECT_TRUE(rig.cycle()->weak_points.empty());
  rig.state.set_agent_online("agent-7", false);
  auto c = rig.cycle();
  ASSERT_EQ(c->dispatch_results.size(), 1u);
  EXPECT_EQ(c->dispatch_results[0].status, DispatchStatus::kDispatched);
  const auto deploy = *rig.executor->arm_id("deploy");
  EXPECT_EQ(rig.executor->arm_status(deploy).succeeded, 1u);
  EXPECT_EQ(rig.engine->status().repairs_succeeded, 1u);
  auto after = rig.cycle();
  EXPECT_TRUE(after->weak_points.empty());
  EXPECT_TRUE(rig.state.agent("agent-7")->online);
  EXPECT_EQ(rig.engine->status().open_weak_points, 0u);
}

// A real-time rig for the lifetime tests: offline agents that every full cycle repairs (the
// handler reports success without reviving, so each cycle dispatches again), a time trigger
// firing every tick, and a thread requesting cycles without pause.
struct LiveRig {
  halo::SystemState state;
  std::unique_ptr<halo::Engine> engine;
  std::unique_ptr<octo::Executor> executor;
  std::atomic<int> repairs{0};
  std::function<void()> in_handler = [] {};
  std::atomic<bool> stop{false};
  std::thread requester;

  LiveRig() {
    for (int i = 0; i < 40; ++i)
      state.upsert_agent({.id = "a" + std::to_string(i), .online = false});
    auto cfg = open_rails();
    cfg.concurrency = 2;
    cfg.safety.repairs_per_second = 1e6;
    // A repair storm on purpose: every verification fails at once (the agents stay offline)
    // and the next repair follows without waiting.
    cfg.safety.verify_timeout = 1ns;
    cfg.safety.backoff_base = 1ns;
    cfg.safety.backoff_max = 1ns;
    engine = std::make_unique<halo::Engine>(state, cfg);
    octo::ExecutorConfig ec;
    ec.threads = 2;
    for (auto& arm : ec.arms) {
      arm.max_attempts = 1;
      arm.handler = [this](const octo::Task&, const octo::Context&) {
        repairs.fetch_add(1);
        in_handler();
        return octo::Outcome::success();
      };
    }
    executor = std::make_unique<octo::Executor>(std::move(ec));
    engine->attach(*executor);
  }
  void start_requests() {
    requester = std::thread([this] {
      while (!stop.load()) {
        engine->request({.kind = halo::TriggerKind::kEvent, .trigger = "event", .context = {}});
        std::this_thread::yield();
      }
    });
  }
  void stop_requests() {
    stop = true;
    if (requester.joinable()) requester.join();
  }
  ~LiveRig() { stop_requests(); }
  bool wait_for_repairs(int n) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (repairs.load() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }
};

// The order the README once showed: the engine outlives the executor. Destroying the executor
// while cycles run, repairs are in flight and triggers fire must leave the engine working,
// dispatching nothing (under ASan: no use of the freed executor).
TEST(Lifetime, ExecutorDestroyedFirstWhileCyclesRunAndTriggersFire) {
  LiveRig rig;
  auto loop = halo::register_loop(*rig.engine, {.time_interval = 1ms});
  rig.start_requests();
  ASSERT_TRUE(rig.wait_for_repairs(200));
  rig.executor.reset();
  // Later cycles run; their repairs fail, naming why.
  rig.stop_requests();
  loop.stop();
  ASSERT_TRUE(rig.engine->wait_idle(30s));
  auto after = rig.engine->run_cycle("manual");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(statuses(*after), (std::map<std::string, int>{{"failed:no executor attached", 40}}));
  rig.engine.reset();
}

// The other order: the engine goes first while its repairs are still running on the executor
// and the triggers it registered keep firing; the repairs' outcomes then reach no engine, and
// the loop's requests do nothing (under ASan: no use of the freed engine).
TEST(Lifetime, EngineDestroyedFirstWhileRepairsRunAndTriggersFire) {
  LiveRig rig;
  std::latch entered(1);
  std::latch gate(1);
  std::atomic<bool> first{true};
  rig.in_handler = [&] {
    if (first.exchange(false)) entered.count_down();
    gate.wait();
  };
  auto loop = halo::register_loop(*rig.engine, {.time_interval = 1ms});
  rig.start_requests();
  entered.wait();
  rig.stop_requests();
  rig.engine.reset();
  gate.count_down();  // the held repairs finish: their events find no observer
  EXPECT_TRUE(rig.executor->wait_idle(30s));
  EXPECT_GT(rig.executor->status().succeeded, 0u);
  // The time trigger fires again into the destroyed engine's callback.
  const auto time_fired = [&] {
    return loop->status().triggers[static_cast<int>(halo::TriggerKind::kTime)].fired;
  };
  const auto fired_at_reset = time_fired();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (time_fired() == fired_at_reset && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_GT(time_fired(), fired_at_reset);
  loop.stop();
  rig.executor->shutdown(octo::ShutdownMode::kDrain, 30s);
}

// attach() alone wires the outcomes: a repair that succeeded leaves in flight for verifying
// (the engine's observer was once a separate, silent step, and without it the weak point stayed
// in flight); detach() stops dispatching and attach() of another executor resumes.
TEST(Lifetime, AttachIsTheOneWiringCallAndDetachStopsDispatch) {
  auto cfg = open_rails();
  Rig rig(cfg);
  rig.state.upsert_agent({.id = "a1", .online = false});
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"dispatched", 1}}));
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"suppressed:verifying", 1}}));
  EXPECT_EQ(rig.engine->status().repairs_succeeded, 1u);
  rig.engine->detach();
  rig.engine->detach();  // idempotent
  rig.state.upsert_agent({.id = "a2", .online = false});
  EXPECT_EQ(statuses(*rig.cycle()), (std::map<std::string, int>{{"failed:no executor attached", 1},
                                                                {"suppressed:verifying", 1}}));
  octo::ExecutorConfig ec;
  int ran = 0;
  ec.on("deploy", [&](const octo::Task&, const octo::Context&) {
    ++ran;
    return octo::Outcome::success();
  });
  octo::Executor other(std::move(ec));
  rig.engine->attach(other);
  EXPECT_EQ(statuses(*rig.engine->run_cycle("manual")),
            (std::map<std::string, int>{{"dispatched", 1}, {"suppressed:verifying", 1}}));
  ASSERT_TRUE(other.wait_idle(30s));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(rig.engine->status().repairs_succeeded, 2u);
  EXPECT_EQ(rig.engine->status().repairs_in_flight, 0u);
  rig.engine->detach();
}

// Two analyzers that each wait for the other: they meet only if the cycle runs them at the same
// time. Under TSan the cycle's TBB parts run on the calling thread by design (halo/src/detail/
// parallel.hpp), so there it is skipped.
TEST(Engine, AnalyzersOfACycleRunInParallel) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the cycle's TBB parts run serially under TSan";
#endif
  struct Rendezvous {
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0;
  };
  struct Meeting : halo::Analyzer {
    Rendezvous& r;
    std::string name_;
    bool met = false;
    Meeting(Rendezvous& rv, std::string n) : r(rv), name_(std::move(n)) {}
    std::string_view name() const noexcept override { return name_; }
    halo::AnalyzerResult analyze(const halo::Snapshot&) override {
      std::unique_lock lock(r.mu);
      ++r.arrived;
      r.cv.notify_all();
      met = r.cv.wait_for(lock, 20s, [&] { return r.arrived >= 2; });  // generous: a failure bound
      return {};
    }
  };
  Rendezvous rv;
  halo::EngineConfig cfg;
  cfg.builtin_analyzers = false;
  Rig rig(cfg, /*with_executor=*/false);
  auto a = std::make_unique<Meeting>(rv, "left");
  auto b = std::make_unique<Meeting>(rv, "right");
  Meeting* left = a.get();
  Meeting* right = b.get();
  rig.engine->add_analyzer(std::move(a));
  rig.engine->add_analyzer(std::move(b));
  ASSERT_NE(rig.cycle(), nullptr);
  EXPECT_TRUE(left->met);
  EXPECT_TRUE(right->met);
}

// A sync journal whose wait_durable() can be held: an enqueue then blocks as it would on a slow
// fsync.
struct HeldJournal : octo::Journal {
  std::atomic<bool> hold{false};
  std::latch waiting{1};
  std::latch release{1};
  std::atomic<std::uint64_t> next{1};
  octo::Durability durability() const noexcept override { return octo::Durability::kSync; }
  octo::JournalRecovery recover() override { return {}; }
  octo::JournalTicket accepted(std::string_view, const octo::Task&) noexcept override {
    const auto k = next.fetch_add(1);
    return {k, k};
  }
  bool wait_durable(std::uint64_t) noexcept override {
    if (hold.exchange(false)) {
      waiting.count_down();
      release.wait();
    }
    return true;
  }
  void retried(std::uint64_t, std::uint32_t) noexcept override {}
  void succeeded(std::uint64_t) noexcept override {}
  void cancelled(std::uint64_t) noexcept override {}
  void dead_lettered(std::uint64_t, std::string_view, std::uint32_t) noexcept override {}
};

// While a cycle's dispatch waits inside enqueue (a held fsync), the outcome of an earlier repair
// still reaches the engine: the outcome path takes no lock the dispatch holds.
TEST(Lifetime, OutcomesDoNotWaitForADispatchBlockedOnTheJournal) {
  octo_test::ManualState ms;
  auto journal = std::make_shared<HeldJournal>();
  halo::Engine engine(ms.state, open_rails());
  std::latch first_running(1);
  std::latch first_done(1);
  octo::ExecutorConfig ec;
  ec.threads = 2;
  ec.journal = journal;
  for (auto& arm : ec.arms) {
    arm.max_attempts = 1;
    arm.handler = [&](const octo::Task& t, const octo::Context&) {
      if (t.payload == "a1") {
        first_running.count_down();
        first_done.wait();
      }
      return octo::Outcome::success();
    };
  }
  octo::Executor ex(std::move(ec));
  engine.attach(ex);
  // Registered after the engine's: it sees an event once the engine's observer has returned.
  struct Seen : octo::Observer {
    std::promise<void> succeeded;
    std::atomic<bool> once{false};
    void on_event(const octo::TaskEvent& e) noexcept override {
      if (e.kind == octo::TaskEventKind::kSucceeded && e.task && e.task->payload == "a1" &&
          !once.exchange(true))
        succeeded.set_value();
    }
  } seen;
  ex.add_observer(seen);

  ms.state.upsert_agent({.id = "a1", .online = false});
  ASSERT_EQ(statuses(*engine.run_cycle("manual")), (std::map<std::string, int>{{"dispatched", 1}}));
  first_running.wait();
  // The next cycle's enqueue of a2's repair blocks in the journal.
  ms.state.upsert_agent({.id = "a2", .online = false});
  journal->hold = true;
  auto second = std::async(std::launch::async, [&] { return engine.run_cycle("manual"); });
  journal->waiting.wait();
  first_done.count_down();  // a1's repair finishes while the dispatch is held
  auto outcome = seen.succeeded.get_future();
  EXPECT_EQ(outcome.wait_for(30s), std::future_status::ready);
  journal->release.count_down();
  auto c2 = second.get();
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(statuses(*c2),
            (std::map<std::string, int>{{"dispatched", 1}, {"suppressed:in-flight", 1}}));
  ASSERT_TRUE(ex.wait_idle(30s));
  EXPECT_EQ(engine.status().repairs_succeeded, 2u);
  EXPECT_EQ(engine.status().repairs_in_flight, 0u);
  ex.remove_observer(seen);
}

}  // namespace

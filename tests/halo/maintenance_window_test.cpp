// Maintenance windows: recurring silences opened by a cron expression or a period, on a manual
// wall clock that moves with the state's manual clock.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "engine_rig.hpp"  // tests/support
#include "halo/engine.hpp"

namespace {

using namespace std::chrono_literals;
using octo_test::open_rails;
using octo_test::Rig;
using octo_test::statuses;
using Wall = std::chrono::system_clock;

constexpr Wall::time_point kDec1 = std::chrono::sys_days{std::chrono::year{2026} / 12 / 1};

// A rig whose wall clock starts at `start` and moves with its state clock.
struct WindowRig {
  std::shared_ptr<std::atomic<Wall::rep>> wall;
  Rig rig;
  explicit WindowRig(Wall::time_point start)
      : wall(std::make_shared<std::atomic<Wall::rep>>(start.time_since_epoch().count())),
        rig(config(wall)) {}
  static halo::EngineConfig config(const std::shared_ptr<std::atomic<Wall::rep>>& wall) {
    auto cfg = open_rails();
    cfg.safety.wall_clock = [wall] { return Wall::time_point(Wall::duration(wall->load())); };
    return cfg;
  }
  void advance(std::chrono::nanoseconds d) {
    rig.clock->advance(d);
    wall->fetch_add(std::chrono::duration_cast<Wall::duration>(d).count());
  }
  Wall::time_point now() const { return Wall::time_point(Wall::duration(wall->load())); }
  halo::MaintenanceWindowStatus window(std::size_t i = 0) {
    return rig.engine->maintenance_windows().at(i);
  }
};

TEST(MaintenanceWindows, ACronWindowSilencesItsMatchesFromItsStartAndEndsByItself) {
  WindowRig w(kDec1 + 1h + 59min);  // 01:59 UTC
  auto& engine = *w.rig.engine;
  engine.add_maintenance_window({.name = "nightly",
                                 .cron = "0 2 * * *",
                                 .duration = 30min,
                                 .match = {.subject_type = "graft", .subject_id = "g-p*"}});
  EXPECT_TRUE(engine.silences().empty()) << "not before 02:00";
  EXPECT_EQ(w.window().next_start, kDec1 + 2h);
  EXPECT_EQ(w.window().opened, 0u);
  EXPECT_EQ(engine.status().maintenance_windows, 1u);

  w.advance(6min);  // 02:05: the start passed while nobody looked
  w.rig.state.upsert_graft({.id = "g-pay", .status = halo::GraftStatus::kFailed});
  w.rig.state.upsert_graft({.id = "g-other", .status = halo::GraftStatus::kFailed});
  auto c = w.rig.cycle();
  const auto st = w.window();
  ASSERT_EQ(st.opened, 1u);
  EXPECT_TRUE(st.active);
  EXPECT_EQ(st.last_start, kDec1 + 2h);
  EXPECT_EQ(st.next_start, kDec1 + 24h + 2h);
  EXPECT_EQ(statuses(*c), (std::map<std::string, int>{
                              {"dispatched", 1},
                              {"suppressed:silenced by " + std::to_string(st.silence_id), 1}}));
  const auto silences = engine.silences();
  ASSERT_EQ(silences.size(), 1u);
  EXPECT_EQ(silences[0].id, st.silence_id);
  EXPECT_EQ(silences[0].reason, "maintenance window 'nightly'");
  EXPECT_EQ(silences[0].until - w.rig.clock->now(), 25min) << "to 02:30, not 30 min from now";

  w.advance(25min);  // 02:30: over
  EXPECT_FALSE(w.window().active);
  EXPECT_TRUE(engine.silences().empty());
  const auto after = w.rig.cycle();
  bool pay_repaired = false;
  for (std::size_t i = 0; i < after->generated_tasks.size(); ++i) {
    pay_repaired |= after->generated_tasks[i].task.payload == "g-pay" &&
                    after->dispatch_results[i].status == halo::DispatchStatus::kDispatched;
  }
  EXPECT_TRUE(pay_repaired) << "once its window closed";
  EXPECT_EQ(w.window().opened, 1u) << "once a night";
}

TEST(MaintenanceWindows, AWindowAddedDuringAStartOpensForWhatIsLeftAndRemovingItEndsIt) {
  WindowRig w(kDec1 + 3h + 4min);
  auto& engine = *w.rig.engine;
  engine.add_maintenance_window({.name = "hourly",
                                 .every = 1h,
                                 .duration = 10min,
                                 .reason = "log rotation",
                                 .author = "ops"});
  const auto silences = engine.silences();
  ASSERT_EQ(silences.size(), 1u) << "03:00 + 10 min is under way at 03:04";
  EXPECT_EQ(silences[0].until - w.rig.clock->now(), 6min);
  EXPECT_EQ(silences[0].reason, "log rotation");
  EXPECT_EQ(silences[0].author, "ops");
  EXPECT_EQ(w.window().last_start, kDec1 + 3h);
  EXPECT_EQ(w.window().next_start, kDec1 + 4h);
  EXPECT_FALSE(engine.remove_maintenance_window("nope"));
  EXPECT_TRUE(engine.remove_maintenance_window("hourly"));
  EXPECT_TRUE(engine.silences().empty()) << "its silence ended with it";
  EXPECT_TRUE(engine.maintenance_windows().empty());
  std::vector<std::string> reasons;
  for (const auto& e : engine.audit().entries()) reasons.push_back(e.reason);
  const auto has = [&](const std::string& text) {
    return std::any_of(reasons.begin(), reasons.end(),
                       [&](const std::string& r) { return r.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("maintenance window 'hourly' added"));
  EXPECT_TRUE(has("by ops for 360 s: log rotation"));
  EXPECT_TRUE(has("maintenance window 'hourly' removed, ending silence 1"));
}

TEST(MaintenanceWindows, StartsThatPassedUnseenAreCountedMissedAndTheLookStaysBounded) {
  WindowRig w(kDec1 + 30min);
  auto& engine = *w.rig.engine;
  engine.add_maintenance_window({.name = "h", .every = 1h, .duration = 10min});
  w.advance(5h);  // 05:30: the windows of 01:00 to 05:00 all closed unseen
  auto st = w.window();
  EXPECT_EQ(st.missed, 5u);
  EXPECT_EQ(st.opened, 0u);
  EXPECT_EQ(st.next_start, kDec1 + 6h);
  w.advance(35min);  // 06:05
  st = w.window();
  EXPECT_EQ(st.opened, 1u);
  EXPECT_EQ(st.last_start, kDec1 + 6h);
  EXPECT_EQ(st.missed, 5u);

  // One a second, left alone for a day: not 86,400 steps in one look, and still right after.
  engine.add_maintenance_window({.name = "s", .every = 1s, .duration = 500ms});
  w.advance(24h + 200ms);
  st = w.window(1);
  EXPECT_GT(st.missed, 0u);
  EXPECT_LT(st.missed, 86'400u);
  EXPECT_GT(st.next_start, w.now());
  EXPECT_TRUE(st.active) << "the start of this very second is under way";
  EXPECT_EQ(st.last_start, std::chrono::floor<std::chrono::seconds>(w.now()));
}

TEST(MaintenanceWindows, ACronStartWhileTheLastSilenceIsOnReplacesIt) {
  WindowRig w(kDec1);
  auto& engine = *w.rig.engine;
  engine.add_maintenance_window({.name = "c", .cron = "*/10 * * * *", .duration = 15min});
  const auto first = w.window().silence_id;
  ASSERT_NE(first, 0u) << "00:00 is under way";
  w.advance(10min);
  const auto silences = engine.silences();
  ASSERT_EQ(silences.size(), 1u) << "one silence per window at a time";
  EXPECT_NE(silences[0].id, first);
  EXPECT_EQ(silences[0].until - w.rig.clock->now(), 15min);
  EXPECT_EQ(w.window().opened, 2u);
}

TEST(MaintenanceWindows, BadWindowsAreRefusedNamingTheField) {
  WindowRig w(kDec1);
  auto& engine = *w.rig.engine;
  auto refused = [&](halo::MaintenanceWindow mw, const std::string& needle) {
    try {
      engine.add_maintenance_window(std::move(mw));
      ADD_FAILURE() << "no error for " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused({.every = 1h, .duration = 1min}, "name is empty");
  refused({.name = "x", .duration = 1min}, "'x': give exactly one of `every` and `cron`");
  refused({.name = "x", .every = 1h, .cron = "* * * * *", .duration = 1min}, "exactly one");
  refused({.name = "x", .cron = "61 * * * *", .duration = 1min}, "'x': octo::CronSchedule: '61");
  refused({.name = "x", .every = 500ms, .duration = 100ms}, "every must be in [1 s, 100 years]");
  refused({.name = "x", .every = 1h}, "duration must be in (0, every] (got 0 ms)");
  refused({.name = "x", .every = 1h, .duration = 2h}, "duration must be in (0, every]");
  refused({.name = "x", .cron = "0 0 * * *", .duration = 24h * 8}, "(0, 7 days]");
  engine.add_maintenance_window({.name = "x", .every = 1h, .duration = 1min});
  refused({.name = "x", .every = 1h, .duration = 1min}, "'x': the name is taken");
  EXPECT_EQ(engine.maintenance_windows().size(), 1u);
}

}  // namespace

// Periodic schedules (Executor::schedule): firings, the overlap policies, pause / resume /
// remove, status, and bad specs. Time passing is observed through the executor's own timer (a
// delayed marker task), never by sleeping.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <stdexcept>
#include <string>

#include "octo/cron.hpp"
#include "octo/executor.hpp"
#include "octo/schedule.hpp"
#include "test_arms.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::Executor;
using octo::Outcome;
using octo::Overlap;
using octo::ScheduleSpec;
using octo::Task;
using octo_test::arm;
using octo_test::config_with;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation
using Wall = std::chrono::system_clock;

// Two arms: "a" runs the schedule's tasks ("tick"), "m" the markers that tell the test time has
// passed.
template <class H>
octo::ExecutorConfig two_arms(H handler, std::function<void()> on_marker) {
  auto cfg = config_with(
      {arm("a", 2, handler), arm("m", 1, [on_marker](const Task&, const octo::Context&) {
         on_marker();
         return Outcome::success();
       })});
  cfg.routes.add_exact("tick", "a").add_exact("marker", "m");
  return cfg;
}

const octo::ScheduleStatus& status_of(const std::vector<octo::ScheduleStatus>& all,
                                      const std::string& name) {
  for (const auto& s : all)
    if (s.name == name) return s;
  throw std::out_of_range(name);
}

// Waits (bounded) until `pred` holds, re-reading the executor's schedules.
template <class P>
bool until(Executor& ex, P pred) {
  const auto end = std::chrono::steady_clock::now() + kGenerous;
  while (std::chrono::steady_clock::now() < end) {
    if (pred(ex.schedules())) return true;
    std::this_thread::yield();
  }
  return false;
}

// Returns once `d` has passed on the executor's timer (a marker task delayed by `d` has run).
void let_pass(Executor& ex, std::promise<void>*& slot, std::chrono::milliseconds d) {
  std::promise<void> done;
  slot = &done;
  ASSERT_TRUE(ex.enqueue_after(d, Task{.type = "marker"}));
  ASSERT_EQ(done.get_future().wait_for(kGenerous), std::future_status::ready);
  slot = nullptr;
}

// The epoch-aligned instants fleet schedules and maintenance windows plan on.
TEST(Schedules, NextPeriodAfterIsTheNextMultipleOfThePeriodFromTheEpoch) {
  using Wall = std::chrono::system_clock;
  const auto at = [](std::chrono::milliseconds ms) { return Wall::time_point(ms); };
  EXPECT_EQ(octo::next_period_after(at(0ms), 100ms), at(100ms));
  EXPECT_EQ(octo::next_period_after(at(99ms), 100ms), at(100ms));
  EXPECT_EQ(octo::next_period_after(at(100ms), 100ms), at(200ms)) << "strictly after";
  EXPECT_EQ(octo::next_period_after(at(-1ms), 100ms), at(0ms)) << "before the epoch, too";
  EXPECT_EQ(octo::next_period_after(at(-100ms), 100ms), at(0ms));
  EXPECT_EQ(octo::next_period_after(at(-150ms), 100ms), at(-100ms));
  const auto day = std::chrono::sys_days{std::chrono::year{2026} / 12 / 2};
  EXPECT_EQ(octo::next_period_after(day + 3h + 4min, 6h), day + 6h);
}

TEST(Schedules, AnEveryScheduleFiresEachPeriodAndSaysWhenNext) {
  std::atomic<int> ran{0};
  std::promise<void>* marker = nullptr;
  Executor ex(two_arms(
      [&](const Task&, const octo::Context&) {
        ran.fetch_add(1);
        return Outcome::success();
      },
      [&] { marker->set_value(); }));
  const auto before = Wall::now();
  ex.schedule(
      {.name = "tick", .every = 20ms, .task = {.type = "tick"}, .overlap = Overlap::kAllow});
  ASSERT_TRUE(until(ex, [](const auto& all) { return status_of(all, "tick").fired >= 3; }));
  const auto s = status_of(ex.schedules(), "tick");
  EXPECT_EQ(s.every, 20ms);
  EXPECT_TRUE(s.cron.empty());
  EXPECT_FALSE(s.paused);
  EXPECT_GE(s.last_run, before + 60ms) << "the third firing, three periods in";
  EXPECT_GT(s.next_run, s.last_run - 20ms);
  EXPECT_NE(s.last_task, 0u);
  EXPECT_EQ(s.skipped, 0u);
  ASSERT_TRUE(ex.remove_schedule("tick"));
  EXPECT_FALSE(ex.remove_schedule("tick"));
  EXPECT_TRUE(ex.schedules().empty());
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const int after_remove = ran.load();
  let_pass(ex, marker, 100ms);
  EXPECT_EQ(ran.load(), after_remove) << "a removed schedule does not fire";
}

TEST(Schedules, SkipHoldsFiringsWhileThePreviousRunIsGoing) {
  std::latch release(1);
  std::atomic<int> ran{0};
  Executor ex(two_arms(
      [&](const Task&, const octo::Context&) {
        ran.fetch_add(1);
        release.wait();
        return Outcome::success();
      },
      [] {}));
  ex.schedule({.name = "s", .every = 10ms, .task = {.type = "tick"}, .overlap = Overlap::kSkip});
  ASSERT_TRUE(until(ex, [](const auto& all) { return status_of(all, "s").skipped >= 3; }));
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(ex.arm_status(0).queued, 0u) << "nothing waits behind the running one";
  EXPECT_EQ(status_of(ex.schedules(), "s").fired, 1u);
  release.count_down();
  ASSERT_TRUE(until(ex, [](const auto& all) { return status_of(all, "s").fired >= 2; }));
}

TEST(Schedules, BufferOneQueuesOneBehindTheRunningOne) {
  std::latch release(1);
  std::atomic<int> ran{0};
  Executor ex(two_arms(
      [&](const Task&, const octo::Context&) {
        ran.fetch_add(1);
        release.wait();
        return Outcome::success();
      },
      [] {}));
  ex.set_max_parallel(0, 1);
  ex.schedule(
      {.name = "b", .every = 10ms, .task = {.type = "tick"}, .overlap = Overlap::kBufferOne});
  ASSERT_TRUE(until(ex, [](const auto& all) { return status_of(all, "b").skipped >= 3; }));
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(ex.arm_status(0).queued, 1u) << "one buffered";
  EXPECT_EQ(status_of(ex.schedules(), "b").fired, 2u);
  ex.pause_schedule("b");
  release.count_down();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), 2) << "the buffered one ran after the first";
}

TEST(Schedules, APausedScheduleDoesNotFireAndResumeCountsWhatItMissed) {
  std::atomic<int> ran{0};
  std::promise<void>* marker = nullptr;
  Executor ex(two_arms(
      [&](const Task&, const octo::Context&) {
        ran.fetch_add(1);
        return Outcome::success();
      },
      [&] { marker->set_value(); }));
  ex.schedule({.name = "p", .every = 20ms, .task = {.type = "tick"}});
  const auto paused_at = Wall::now();
  ASSERT_TRUE(ex.pause_schedule("p"));
  EXPECT_TRUE(status_of(ex.schedules(), "p").paused);
  EXPECT_EQ(status_of(ex.schedules(), "p").next_run, Wall::time_point{});
  let_pass(ex, marker, 110ms);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(status_of(ex.schedules(), "p").fired, 0u);
  ASSERT_TRUE(ex.resume_schedule("p"));
  const auto periods = static_cast<std::uint64_t>((Wall::now() - paused_at) / 20ms);
  const auto s = status_of(ex.schedules(), "p");
  EXPECT_FALSE(s.paused);
  EXPECT_GE(s.missed, 4u) << "at least 110 ms of a 20 ms period";
  EXPECT_LE(s.missed, periods + 1);
  EXPECT_GE(s.missed + 1, periods);
  EXPECT_GT(s.next_run, Wall::now() - 1ms);
  ASSERT_TRUE(until(ex, [](const auto& all) { return status_of(all, "p").fired >= 1; }));
  EXPECT_FALSE(ex.pause_schedule("nope"));
  EXPECT_FALSE(ex.resume_schedule("nope"));
}

TEST(Schedules, ACronScheduleIsPlannedAtItsNextMinute) {
  Executor ex(
      two_arms([](const Task&, const octo::Context&) { return Outcome::success(); }, [] {}));
  const auto before = Wall::now();
  ex.schedule({.name = "c", .cron = "*/5 * * * *", .task = {.type = "tick"}, .jitter = 10s});
  const auto s = status_of(ex.schedules(), "c");
  EXPECT_EQ(s.cron, "*/5 * * * *");
  const auto want = octo::CronSchedule::parse("*/5 * * * *").next_after(before);
  EXPECT_TRUE(s.next_run == want || s.next_run == want + 5min) << "planned before jitter";
}

TEST(Schedules, BadSpecsAreRefusedNamingTheScheduleAndTheField) {
  Executor ex(
      two_arms([](const Task&, const octo::Context&) { return Outcome::success(); }, [] {}));
  auto expect_error = [&](ScheduleSpec spec, const std::string& needle) {
    try {
      ex.schedule(std::move(spec));
      ADD_FAILURE() << "no error for " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const Task tick{.type = "tick"};
  expect_error({.every = 1s, .task = tick}, "name must not be empty");
  expect_error({.name = "x", .task = tick}, "'x': give exactly one of `every` and `cron`");
  expect_error({.name = "x", .every = 1s, .cron = "* * * * *", .task = tick}, "exactly one");
  expect_error({.name = "x", .every = 0ms, .task = tick},
               "every must be in [1 ms, 100 years] (got 0 ms)");
  expect_error({.name = "x", .every = std::chrono::milliseconds::max(), .task = tick},
               "every must be in [1 ms, 100 years]");
  expect_error({.name = "x", .every = 1s, .task = tick, .jitter = 1s},
               "jitter must be in [0, every)");
  expect_error({.name = "x", .every = 1s, .task = tick, .jitter = -1ms}, "(got -1 ms)");
  expect_error({.name = "x", .cron = "* * * * *", .task = tick, .jitter = 2h}, "jitter");
  expect_error({.name = "x", .cron = "61 * * * *", .task = tick},
               "'x': octo::CronSchedule: '61 * * * *': minute field");
  expect_error({.name = "x", .every = 1s, .task = {.type = "nowhere"}},
               "task type 'nowhere' matches no route");
  expect_error({.name = "x", .every = 1s, .task = tick, .overlap = static_cast<Overlap>(9)},
               "overlap 9");
  ex.schedule({.name = "x", .every = 1s, .task = tick});
  expect_error({.name = "x", .every = 2s, .task = tick}, "'x': the name is taken");
  EXPECT_EQ(ex.schedules().size(), 1u);
}

TEST(Schedules, FiringsStopAtShutdownAndNothingIsLeftPending) {
  std::atomic<int> ran{0};
  Executor ex(two_arms(
      [&](const Task&, const octo::Context&) {
        ran.fetch_add(1);
        return Outcome::success();
      },
      [] {}));
  ex.schedule({.name = "t", .every = 5ms, .task = {.type = "tick"}, .overlap = Overlap::kAllow});
  ASSERT_TRUE(until(ex, [](const auto& all) { return status_of(all, "t").fired >= 2; }));
  const auto report = ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
  EXPECT_FALSE(report.deadline_hit);
  const auto s = ex.status();
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.accepted, s.succeeded + s.cancelled);
  const auto fired = status_of(ex.schedules(), "t").fired;
  EXPECT_EQ(static_cast<std::uint64_t>(ran.load()) + s.cancelled, fired);
}

}  // namespace

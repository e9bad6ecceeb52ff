// Delayed tasks (Task::run_at, Executor::enqueue_after): not run before their time, counted while
// they wait, cancellable by id, bounded, and what shutdown does with them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "octo/executor.hpp"
#include "test_arms.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::EnqueueError;
using octo::Executor;
using octo::Outcome;
using octo::Task;
using octo_test::arm;
using octo_test::config_with;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation
using Wall = std::chrono::system_clock;

TEST(DelayedTasks, ATaskRunsNoEarlierThanItsTimeAndIsCountedWhileItWaits) {
  std::promise<Wall::time_point> ran;
  Executor ex(config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    ran.set_value(Wall::now());
    return Outcome::success();
  })}));
  const auto due = Wall::now() + 80ms;
  const auto r = ex.enqueue(0, Task{.type = "t", .run_at = due});
  ASSERT_TRUE(r);
  EXPECT_NE(r.id(), 0u);
  const auto waiting = ex.arm_status(0);
  EXPECT_EQ(waiting.delayed, 1u);
  EXPECT_EQ(waiting.pending, 1u);
  EXPECT_EQ(waiting.queued, 0u);
  EXPECT_EQ(waiting.accepted, 1u);
  auto f = ran.get_future();
  ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
  EXPECT_GE(f.get(), due);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const auto done = ex.arm_status(0);
  EXPECT_EQ(done.delayed, 0u);
  EXPECT_EQ(done.succeeded, 1u);
  // Its queue wait runs from its due time, not from the enqueue.
  EXPECT_LT(ex.arm_latency(0).queue_wait.max(), std::uint64_t{50'000'000});
}

TEST(DelayedTasks, EnqueueAfterADelayAndARunAtInThePastRunsAtOnce) {
  std::atomic<int> ran{0};
  std::promise<void> two, three;
  auto cfg = config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    const int n = ran.fetch_add(1) + 1;
    if (n == 2) two.set_value();
    if (n == 3) three.set_value();
    return Outcome::success();
  })});
  cfg.routes.add_exact("t", "a").add_exact("never", "a");  // enqueue_after() routes by type
  Executor ex(std::move(cfg));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "past", .run_at = Wall::now() - 1h}));
  const auto before = Wall::now();
  ASSERT_TRUE(ex.enqueue_after(60ms, Task{.type = "t"}));
  ASSERT_EQ(two.get_future().wait_for(kGenerous), std::future_status::ready);
  EXPECT_GE(Wall::now() - before, 60ms);
  // A delay of zero or less runs at once; one past the clock's end is accepted and never due.
  ASSERT_TRUE(ex.enqueue_after(std::chrono::nanoseconds::max(), Task{.type = "never"}));
  ASSERT_TRUE(ex.enqueue_after(-5s, Task{.type = "t"}));
  ASSERT_EQ(three.get_future().wait_for(kGenerous), std::future_status::ready);
  EXPECT_EQ(ex.arm_status(0).delayed, 1u);
}

TEST(DelayedTasks, ADelayedTaskIsCancelledByIdAndNeverRuns) {
  std::atomic<int> ran{0};
  Executor ex(config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    ran.fetch_add(1);
    return Outcome::success();
  })}));
  const auto r = ex.enqueue(0, Task{.type = "t", .run_at = Wall::now() + 1h});
  ASSERT_TRUE(r);
  EXPECT_TRUE(ex.cancel(r.id()));
  EXPECT_FALSE(ex.cancel(r.id())) << "once";
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.delayed, 0u) << "counted as cancelled at once, not in an hour";
  EXPECT_EQ(s.cancelled, 1u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(ran.load(), 0);
}

TEST(DelayedTasks, AnArmHoldsAtMostItsCapacityInTheTimer) {
  auto a = arm("a");
  a.capacity = 3;
  Executor ex(config_with({a}));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .run_at = Wall::now() + 1h}));
  const auto full = ex.enqueue(0, Task{.type = "t", .run_at = Wall::now() + 1h});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), EnqueueError::kFull);
  EXPECT_EQ(ex.arm_status(0).rejected, 1u);
  // The queue's own capacity is not taken by waiting tasks.
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
}

TEST(DelayedTasks, ADrainingShutdownCancelsTasksNotYetDueAndWaitsForTheRest) {
  std::atomic<int> ran{0};
  Executor ex(config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    ran.fetch_add(1);
    return Outcome::success();
  })}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "later", .run_at = Wall::now() + 1h}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "now"}));
  const auto report = ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
  EXPECT_FALSE(report.deadline_hit) << "it did not wait for the hour";
  EXPECT_EQ(report.cancelled, 1u);
  EXPECT_EQ(ran.load(), 1);
  const auto s = ex.status();
  EXPECT_EQ(s.accepted, s.succeeded + s.cancelled);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(ex.enqueue(0, Task{.type = "t", .run_at = Wall::now() + 1s}).error(),
            EnqueueError::kStopped);
}

TEST(DelayedTasks, ADeadlineBeforeTheDueTimeExpiresWhenTheTaskComesDue) {
  std::atomic<int> ran{0};
  Executor ex(config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    ran.fetch_add(1);
    return Outcome::success();
  })}));
  const auto now = Wall::now();
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .deadline = now + 20ms, .run_at = now + 60ms}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.dead_lettered, 1u);
  EXPECT_EQ(ran.load(), 0);
}

// A retry's queue wait runs from when its backoff ended. It used to be measured from the clock's
// origin (the enqueue stamp is cleared for the wait in the timer): the machine's uptime.
TEST(DelayedTasks, ARetrysQueueWaitIsMeasuredFromTheEndOfItsBackoff) {
  std::atomic<int> runs{0};
  auto a = arm("a", 1, [&](const Task&, const octo::Context&) {
    return runs.fetch_add(1) == 0 ? Outcome::failure("once") : Outcome::success();
  });
  a.max_attempts = 2;
  Executor ex(config_with({a}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  ASSERT_EQ(runs.load(), 2);
  const auto waits = ex.arm_latency(0).queue_wait;
  EXPECT_EQ(waits.count, 2u);
  EXPECT_LT(waits.max(), std::uint64_t{1'000'000'000}) << "nanoseconds";
}

}  // namespace

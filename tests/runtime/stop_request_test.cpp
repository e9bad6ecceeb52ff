// Deadlines, timeouts and cancellation of running tasks: what octo::this_task reports, what is
// counted, and what ends how.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "octo/executor.hpp"
#include "octo/this_task.hpp"
#include "test_arms.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::Executor;
using octo::Outcome;
using octo::Task;
using octo_test::arm;
using octo_test::config_with;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation
using Wall = std::chrono::system_clock;

struct DeadLetterObserver : octo::Observer {
  std::mutex mu;
  std::vector<std::string> reasons;
  void on_event(const octo::TaskEvent& e) noexcept override {
    if (e.kind != octo::TaskEventKind::kDeadLettered) return;
    std::lock_guard lock(mu);
    reasons.emplace_back(e.reason);
  }
};

// Blocks until the handler returns true from stop_requested(), bounded by kGenerous.
bool wait_for_stop() {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, octo::this_task::stop_token(), kGenerous, [] { return false; });
  return octo::this_task::stop_requested();
}

TEST(Deadlines, APastDeadlineExpiresAtOnceAndIsCounted) {
  std::atomic<int> ran{0};
  Executor ex(config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    ran.fetch_add(1);
    return Outcome::success();
  })}));
  DeadLetterObserver seen;
  ex.add_observer(seen);
  const auto r = ex.enqueue(0, Task{.type = "t", .deadline = Wall::now() - 1s});
  ASSERT_TRUE(r);
  EXPECT_NE(r.id(), 0u);
  // Expired during enqueue: nothing is pending or queued.
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.accepted, 1u);
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.dead_lettered, 1u);
  EXPECT_EQ(s.pending, 0u);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), 0);
  const auto dead = ex.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "expired");
  EXPECT_EQ(dead[0].id, r.id());
  EXPECT_TRUE(ex.remove_observer(seen));
  ASSERT_EQ(seen.reasons.size(), 1u);
  EXPECT_EQ(seen.reasons[0], "expired");
  EXPECT_EQ(ex.status().expired, 1u);
}

TEST(Deadlines, AQueuedTaskWhoseDeadlinePassesBeforeItStartsExpires) {
  std::atomic<int> ran{0};
  const auto deadline = Wall::now() + 50ms;
  Executor ex(config_with({arm("a", 1, [&](const Task& t, const octo::Context&) {
    ran.fetch_add(1);
    // The first task holds the arm's only slot until the second task's deadline has passed.
    if (t.payload == "hold") {
      while (Wall::now() <= deadline) std::this_thread::yield();
    }
    return Outcome::success();
  })}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "hold"}));
  const auto late = ex.enqueue(0, Task{.type = "late", .deadline = deadline});
  ASSERT_TRUE(late);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), 1);
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.succeeded, 1u);
  EXPECT_EQ(s.dead_lettered, 1u);
  ASSERT_EQ(ex.dead_letters().size(), 1u);
  EXPECT_EQ(ex.dead_letters()[0].id, late.id());
}

TEST(Deadlines, ARunningTaskIsAskedToStopAtItsDeadline) {
  std::promise<Wall::time_point> stopped_at;
  auto a = arm("a", 1, [&](const Task&, const octo::Context&) {
    EXPECT_FALSE(octo::this_task::stop_requested());
    const bool stopped = wait_for_stop();
    stopped_at.set_value(stopped ? Wall::now() : Wall::time_point{});
    return Outcome::failure("stopped");
  });
  a.max_attempts = 2;
  Executor ex(config_with({a}));
  const auto deadline = Wall::now() + 30ms;
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .deadline = deadline}));
  auto f = stopped_at.get_future();
  ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
  // The stop is due at the deadline converted to TSC ticks at the start (a calibration error of a
  // few parts in 10^5: microseconds here), so allow a millisecond.
  EXPECT_GE(f.get(), deadline - 1ms);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  // The failure retries under the arm's policy, and the retry has missed the deadline: expired.
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.overran, 1u);
}

TEST(Timeouts, ARunPastItsTimeoutIsAskedToStopAndReportedStuck) {
  std::promise<void> stopped;
  std::latch checked(1);
  auto a = arm("a", 1, [&](const Task&, const octo::Context&) {
    if (wait_for_stop()) stopped.set_value();
    checked.wait();  // still running, past the timeout, while the test reads the status
    return Outcome::success();
  });
  a.timeout = 20ms;
  Executor ex(config_with({a}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  ASSERT_EQ(stopped.get_future().wait_for(kGenerous), std::future_status::ready);
  EXPECT_EQ(ex.arm_status(0).stuck, 1u);
  EXPECT_EQ(ex.status().stuck, 1u);
  checked.count_down();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.stuck, 0u);
  EXPECT_EQ(s.overran, 1u);
  EXPECT_EQ(s.succeeded, 1u);  // cooperative: the task decided to finish, and it succeeded
  EXPECT_GE(s.run_time.max, 20ms * 0.99);
}

TEST(Timeouts, AFastRunIsNeitherStoppedNorCounted) {
  std::atomic<bool> saw_stop{false};
  auto a = arm("a", 1, [&](const Task&, const octo::Context&) {
    saw_stop = saw_stop || octo::this_task::stop_requested();
    return Outcome::success();
  });
  a.timeout = std::chrono::hours(1);
  Executor ex(config_with({a}));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_FALSE(saw_stop.load());
  EXPECT_EQ(ex.arm_status(0).overran, 0u);
}

TEST(Timeouts, ZeroOrNegativeIsRefused) {
  auto a = arm("a");
  a.timeout = 0ms;
  EXPECT_THROW(Executor(config_with({a})), std::invalid_argument);
  a.timeout = -5ms;
  EXPECT_THROW(Executor(config_with({a})), std::invalid_argument);
  Executor ex(config_with({arm("b")}));
  auto c = arm("c");
  c.timeout = 0ns;
  EXPECT_THROW(ex.add_arm(c), std::invalid_argument);
}

TEST(Cancel, ARunningTaskSeesTheCancelAndIsNotRetried) {
  std::promise<void> started;
  std::atomic<int> runs{0};
  auto a = arm("a", 1, [&](const Task&, const octo::Context&) {
    runs.fetch_add(1);
    started.set_value();
    return wait_for_stop() ? Outcome::failure("cancelled") : Outcome::success();
  });
  a.max_attempts = 5;
  Executor ex(config_with({a}));
  const auto r = ex.enqueue(0, Task{.type = "t"});
  ASSERT_TRUE(r);
  ASSERT_EQ(started.get_future().wait_for(kGenerous), std::future_status::ready);
  EXPECT_FALSE(ex.cancel(r.id()));  // running: it may still succeed
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(s.cancelled, 1u);
  EXPECT_EQ(s.retried, 0u);
  EXPECT_EQ(s.dead_lettered, 0u);
}

TEST(Cancel, ARequestForAFinishedRunDoesNotReachTheNextOne) {
  std::atomic<int> stopped{0};
  Executor ex(config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    stopped.fetch_add(octo::this_task::stop_requested() ? 1 : 0);
    return Outcome::success();
  })}));
  const auto first = ex.enqueue(0, Task{.type = "t"});
  ASSERT_TRUE(first);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_FALSE(ex.cancel(first.id()));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(stopped.load(), 0);
}

TEST(ThisTask, OutsideATaskNothingIsRequested) {
  EXPECT_FALSE(octo::this_task::stop_requested());
  EXPECT_FALSE(octo::this_task::stop_token().stop_possible());
  EXPECT_EQ(octo::this_task::id(), 0u);
}

TEST(ThisTask, IdIsTheTypedTasksAndZeroForCallables) {
  std::promise<octo::TaskId> typed, callable;
  Executor ex(config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    typed.set_value(octo::this_task::id());
    return Outcome::success();
  })}));
  const auto r = ex.enqueue(0, Task{.type = "t"});
  ASSERT_TRUE(r);
  ASSERT_TRUE(ex.submit(0, [&] { callable.set_value(octo::this_task::id()); }));
  EXPECT_EQ(typed.get_future().get(), r.id());
  EXPECT_EQ(callable.get_future().get(), 0u);
}

TEST(Shutdown, ACancellingShutdownAsksRunningCallablesToStop) {
  std::latch started(1);
  std::atomic<bool> stopped{false};
  Executor ex(config_with({arm("a")}));
  ASSERT_TRUE(ex.submit(0, [&] {
    started.count_down();
    stopped = wait_for_stop();
  }));
  started.wait();
  const auto report = ex.shutdown(octo::ShutdownMode::kCancel, kGenerous);
  EXPECT_TRUE(stopped.load());
  EXPECT_EQ(report.still_running, 0u);
}

}  // namespace

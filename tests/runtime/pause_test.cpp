// pause() / resume(): queued work is held while enqueue still accepts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <stdexcept>
#include <thread>

#include "octo/executor.hpp"
#include "test_arms.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::Executor;
using octo::Outcome;
using octo::Task;
using octo_test::arm;
using octo_test::config_with;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation

octo::Handler counting(std::atomic<int>& ran) {
  return [&ran](const Task&, const octo::Context&) {
    ran.fetch_add(1);
    return Outcome::success();
  };
}

TEST(Pause, QueuedWorkIsHeldAndEnqueueStillAccepts) {
  std::atomic<int> ran{0};
  Executor ex(config_with({arm("a", 2, counting(ran)), arm("b", 1, counting(ran))}));
  ex.pause(0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  // Another arm keeps running meanwhile.
  ASSERT_TRUE(ex.enqueue(1, Task{.type = "t"}));
  // Held: the executor does not become idle (a bound on how long the test looks, not a sync).
  EXPECT_FALSE(ex.wait_idle(50ms));
  EXPECT_EQ(ex.arm_status(1).succeeded, 1u);
  auto s = ex.arm_status(0);
  EXPECT_TRUE(s.paused);
  EXPECT_EQ(s.queued, 10u);
  EXPECT_EQ(s.succeeded, 0u);
  EXPECT_EQ(ran.load(), 1);
  ex.resume(0);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  s = ex.arm_status(0);
  EXPECT_FALSE(s.paused);
  EXPECT_EQ(s.succeeded, 10u);
  EXPECT_EQ(ran.load(), 11);
}

TEST(Pause, DisabledRefusesButPausedAccepts) {
  Executor ex(config_with({arm("a")}));
  ex.set_enabled(0, false);
  const auto refused = ex.enqueue(0, Task{.type = "t"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), octo::EnqueueError::kDisabled);
  ex.set_enabled(0, true);
  ex.pause(0);
  ex.pause(0);  // idempotent
  EXPECT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  ex.resume(0);
  ex.resume(0);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ex.arm_status(0).succeeded, 1u);
}

TEST(Pause, ARunningTaskFinishesAndNoNewOneStarts) {
  std::latch gate(1);
  std::promise<void> started;
  std::atomic<int> ran{0};
  Executor ex(config_with({arm("a", 1, [&](const Task& t, const octo::Context&) {
    ran.fetch_add(1);
    if (t.payload == "hold") {
      started.set_value();
      gate.wait();
    }
    return Outcome::success();
  })}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "hold"}));
  ASSERT_EQ(started.get_future().wait_for(kGenerous), std::future_status::ready);
  ex.pause(0);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  gate.count_down();
  // The held task finishes (bounded wait for its count); the five stay queued.
  const auto until = std::chrono::steady_clock::now() + kGenerous;
  while (ex.arm_status(0).succeeded < 1 && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  EXPECT_FALSE(ex.wait_idle(50ms));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.succeeded, 1u);
  EXPECT_EQ(s.queued, 5u);
  EXPECT_EQ(ran.load(), 1);
  ex.resume(0);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), 6);
}

TEST(Pause, ADrainingShutdownRunsPausedWork) {
  std::atomic<int> ran{0};
  Executor ex(config_with({arm("a", 1, counting(ran))}));
  ex.pause(0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
  const auto report = ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
  EXPECT_FALSE(report.deadline_hit);
  EXPECT_EQ(ran.load(), 3);
  EXPECT_EQ(ex.arm_status(0).succeeded, 3u);
}

TEST(Pause, AnUnknownArmIsRefused) {
  Executor ex(config_with({arm("a")}));
  EXPECT_THROW(ex.pause(7), std::invalid_argument);
  EXPECT_THROW(ex.resume(7), std::invalid_argument);
}

}  // namespace

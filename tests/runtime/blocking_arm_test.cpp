// Blocking arms: handlers that wait on I/O run on the arm's own threads, so they never hold back
// another arm's task (the default arms are configured so).
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "octo/executor.hpp"
#include "octo/this_task.hpp"
#include "test_arms.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::Executor;
using octo_test::arm;
using octo_test::config_with;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation

TEST(BlockingArms, TheDefaultArmsThatDoIoAreBlocking) {
  for (const auto& a : octo::default_arms()) {
    const bool cpu = a.name == "batch" || a.name == "analytics";
    EXPECT_EQ(a.blocking, !cpu) << a.name;
  }
}

// Occupies every slot of `arm` with handlers blocked on `gate`; true once all of them run.
bool block_arm(Executor& ex, octo::ArmId arm, std::uint32_t slots, std::latch& gate,
               std::atomic<int>& returned) {
  auto started = std::make_shared<std::latch>(slots);
  for (std::uint32_t i = 0; i < slots; ++i) {
    if (!ex.submit(arm, [started, &gate, &returned] {
          started->count_down();
          gate.wait();
          returned.fetch_add(1);
        }))
      return false;
  }
  // Bounded wait for the latch (std::latch has no timed wait).
  auto done = std::async(std::launch::async, [started] { started->wait(); });
  return done.wait_for(kGenerous) == std::future_status::ready;
}

TEST(BlockingArms, AHandlerBlockedOnOneArmNeverHoldsBackAnotherArmsTask) {
  // The default configuration, as a new user has it (threads = the machine's cores).
  Executor ex;
  for (const auto& blocked : octo::default_arms()) {
    if (!blocked.blocking) continue;
    SCOPED_TRACE("blocked arm: " + blocked.name);
    const octo::ArmId id = *ex.arm_id(blocked.name);
    std::latch gate(1);
    std::atomic<int> returned{0};
    ASSERT_TRUE(block_arm(ex, id, blocked.max_parallel, gate, returned));
    for (const auto& other : octo::default_arms()) {
      if (other.name == blocked.name) continue;
      std::promise<void> ran;
      auto f = ran.get_future();
      ASSERT_TRUE(ex.submit(*ex.arm_id(other.name), [&ran] { ran.set_value(); }));
      ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready) << other.name;
    }
    // Every other arm ran while the blocked handlers were still held.
    EXPECT_EQ(returned.load(), 0);
    gate.count_down();
    ASSERT_TRUE(ex.wait_idle(kGenerous));
    EXPECT_EQ(returned.load(), static_cast<int>(blocked.max_parallel));
  }
}

TEST(BlockingArms, CpuArmsRunOnTheArenaAndBlockingArmsOnTheirOwnThreads) {
  auto cpu = arm("cpu", 2);
  auto io = arm("io", 2);
  io.blocking = true;
  Executor ex(config_with({cpu, io}, 2));
  std::promise<int> on_cpu, on_io;
  ASSERT_TRUE(
      ex.submit(0, [&] { on_cpu.set_value(tbb::this_task_arena::current_thread_index()); }));
  ASSERT_TRUE(ex.submit(1, [&] { on_io.set_value(tbb::this_task_arena::current_thread_index()); }));
  auto c = on_cpu.get_future();
  auto i = on_io.get_future();
  ASSERT_EQ(c.wait_for(kGenerous), std::future_status::ready);
  ASSERT_EQ(i.wait_for(kGenerous), std::future_status::ready);
  EXPECT_GE(c.get(), 0);  // a slot of the executor's arena
  EXPECT_LT(i.get(), 0);  // no arena at all
  EXPECT_FALSE(ex.arm_status(0).blocking);
  EXPECT_TRUE(ex.arm_status(1).blocking);
}

TEST(BlockingArms, ThreadsStartOnDemandUpToMaxParallel) {
  auto io = arm("io", 3);
  io.blocking = true;
  Executor ex(config_with({io}, 1));
  EXPECT_EQ(ex.arm_status(0).threads, 0u);  // nothing ran yet: no thread
  std::latch gate(1);
  std::atomic<int> returned{0};
  ASSERT_TRUE(block_arm(ex, 0, 3, gate, returned));
  // More work than slots waits; the arm never has more threads than max_parallel.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ex.submit(0, [] {}));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.threads, 3u);
  EXPECT_EQ(s.active, 3u);
  EXPECT_EQ(s.queued, 20u);
  gate.count_down();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ex.arm_status(0).threads, 3u);
  EXPECT_EQ(ex.arm_status(0).succeeded, 23u);
}

TEST(BlockingArms, ARaisedLimitAddsThreads) {
  auto io = arm("io", 1);
  io.blocking = true;
  Executor ex(config_with({io}, 1));
  std::latch gate(1);
  std::atomic<int> returned{0};
  ASSERT_TRUE(block_arm(ex, 0, 1, gate, returned));
  std::promise<void> ran;
  ASSERT_TRUE(ex.submit(0, [&] { ran.set_value(); }));
  ex.set_max_parallel(0, 2);
  // The second thread runs the queued task while the first is still blocked.
  ASSERT_EQ(ran.get_future().wait_for(kGenerous), std::future_status::ready);
  EXPECT_EQ(returned.load(), 0);
  EXPECT_EQ(ex.arm_status(0).threads, 2u);
  gate.count_down();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
}

// The child's side of the test below: exits 0 when the task ran on the arena; other exit codes
// name the step that failed.
[[noreturn]] void run_with_no_threads_left() {
  auto cpu = arm("cpu", 1);
  auto io = arm("io", 1);
  io.blocking = true;
  {
    Executor ex(config_with({cpu, io}, 2));
    // The arena's threads exist before the limit (the CPU task ran on one).
    std::promise<void> warm;
    if (!ex.submit(0, [&] { warm.set_value(); })) std::_Exit(2);
    if (warm.get_future().wait_for(kGenerous) != std::future_status::ready) std::_Exit(3);
    const rlimit none{0, 0};
    if (setgid(65534) != 0 || setuid(65534) != 0 || setrlimit(RLIMIT_NPROC, &none) != 0)
      std::_Exit(4);
    try {
      std::thread([] {}).join();
      std::_Exit(5);  // the limit did not hold: the test would prove nothing
    } catch (const std::system_error&) {
    }
    std::promise<int> ran;
    if (!ex.submit(1, [&] { ran.set_value(tbb::this_task_arena::current_thread_index()); }))
      std::_Exit(6);
    auto f = ran.get_future();
    if (f.wait_for(kGenerous) != std::future_status::ready) std::_Exit(7);
    if (f.get() < 0) std::_Exit(8);                    // it ran, but not on the arena
    if (ex.arm_status(1).threads != 0) std::_Exit(9);  // the arm has no thread of its own
    if (!ex.wait_idle(kGenerous) || ex.arm_status(1).succeeded != 1) std::_Exit(10);
  }
  std::_Exit(0);
}

// A blocking arm whose thread cannot be started runs its drainer on the arena instead: late (it
// shares the CPU arms' threads) but not lost. Threads are refused for real, in a child process that
// gives up root and may start no more processes or threads (RLIMIT_NPROC 0).
TEST(BlockingArms, AnArmWhoseThreadCannotStartRunsOnTheArena) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to drop to an unprivileged user";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_with_no_threads_left(), ::testing::ExitedWithCode(0), "");
}

TEST(BlockingArms, ShutdownAsksBlockedHandlersToStopAndWaitsForThem) {
  auto io = arm("io", 2);
  io.blocking = true;
  Executor ex(config_with({io}, 1));
  std::atomic<int> stopped{0};
  std::latch started(2);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(ex.submit(0, [&] {
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock lock(mu);
      started.count_down();
      // Waits until the executor asks it to stop (bounded, for a failing test).
      if (cv.wait_for(lock, octo::this_task::stop_token(), kGenerous, [] { return false; }) ||
          octo::this_task::stop_requested())
        stopped.fetch_add(1);
      return octo::Outcome::failure("stopped");
    }));
  }
  started.wait();
  const auto report = ex.shutdown(octo::ShutdownMode::kCancel, kGenerous);
  EXPECT_EQ(stopped.load(), 2);
  EXPECT_EQ(report.still_running, 0u);
  EXPECT_FALSE(report.deadline_hit);
  // A failure after a cancelling shutdown's stop request is a cancellation, not a dead letter.
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.cancelled, 2u);
  EXPECT_EQ(s.dead_lettered, 0u);
}

}  // namespace

// Unique tasks (Task::unique): a duplicate is refused with the holder's id while the holder
// is pending in its scope and its TTL lasts; bad keys are refused; and under racing producers a
// key never runs twice at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "octo/executor.hpp"
#include "test_arms.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::EnqueueError;
using octo::Executor;
using octo::Outcome;
using octo::Task;
using octo::UniqueScope;
using octo_test::arm;
using octo_test::config_with;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation

Task keyed(std::string key, UniqueScope scope = UniqueScope::kQueued,
           std::chrono::milliseconds ttl = 1h) {
  return Task{.type = "t",
              .unique = octo::Unique{.key = std::move(key), .ttl = ttl, .scope = scope}};
}

TEST(UniqueTasks, ADuplicateOfAQueuedTaskIsRefusedWithTheHoldersId) {
  Executor ex(config_with({arm("a")}));
  ex.pause(0);  // everything stays queued
  const auto first = ex.enqueue(0, keyed("deploy:svc-a"));
  ASSERT_TRUE(first);
  const auto again = ex.enqueue(0, keyed("deploy:svc-a"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), EnqueueError::kDuplicate);
  EXPECT_EQ(again.id(), first.id());
  EXPECT_TRUE(ex.enqueue(0, keyed("deploy:svc-b"))) << "another key";
  EXPECT_TRUE(ex.enqueue(0, Task{.type = "t"})) << "no key";
  EXPECT_EQ(ex.arm_status(0).rejected, 1u);
  // Cancelled: the key is free again.
  ASSERT_TRUE(ex.cancel(first.id()));
  EXPECT_TRUE(ex.enqueue(0, keyed("deploy:svc-a")));
  ex.resume(0);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_TRUE(ex.enqueue(0, keyed("deploy:svc-a"))) << "finished: free";
}

TEST(UniqueTasks, TheScopeSaysWhetherARunningTaskHoldsItsKey) {
  for (const auto scope : {UniqueScope::kQueued, UniqueScope::kQueuedOrRunning}) {
    std::latch release(1);
    std::promise<void> started;
    Executor ex(config_with({arm("a", 2, [&](const Task&, const octo::Context&) {
      started.set_value();
      release.wait();
      return Outcome::success();
    })}));
    const auto first = ex.enqueue(0, keyed("k", scope));
    ASSERT_TRUE(first);
    ASSERT_EQ(started.get_future().wait_for(kGenerous), std::future_status::ready);
    ex.pause(0);  // a second accepted task waits, so the handler runs once
    const auto second = ex.enqueue(0, keyed("k", scope));
    if (scope == UniqueScope::kQueued) {
      EXPECT_TRUE(second) << "running does not hold a kQueued key";
    } else {
      ASSERT_FALSE(second);
      EXPECT_EQ(second.error(), EnqueueError::kDuplicate);
      EXPECT_EQ(second.id(), first.id());
    }
    release.count_down();
    ex.shutdown(octo::ShutdownMode::kCancel);
  }
}

TEST(UniqueTasks, AKeyIsFreeOnceItsTtlHasPassed) {
  Executor ex(config_with({arm("a")}));
  ex.pause(0);
  const auto first = ex.enqueue(0, keyed("k", UniqueScope::kQueued, 30ms));
  ASSERT_TRUE(first);
  EXPECT_FALSE(ex.enqueue(0, keyed("k", UniqueScope::kQueued, 30ms)));
  const auto end = std::chrono::steady_clock::now() + 30ms;
  while (std::chrono::steady_clock::now() < end) std::this_thread::yield();  // the TTL itself
  EXPECT_TRUE(ex.enqueue(0, keyed("k", UniqueScope::kQueued, 30ms)))
      << "the first is still queued, but its claim has expired";
}

TEST(UniqueTasks, AnEmptyKeyOrATtlOfZeroOrLessIsRefused) {
  Executor ex(config_with({arm("a")}));
  EXPECT_EQ(ex.enqueue(0, keyed("k", UniqueScope::kQueued, 0ms)).error(), EnqueueError::kBadUnique);
  EXPECT_EQ(ex.enqueue(0, keyed("k", UniqueScope::kQueued, -5ms)).error(),
            EnqueueError::kBadUnique);
  EXPECT_EQ(ex.enqueue(0, keyed("", UniqueScope::kQueued, 1s)).error(), EnqueueError::kBadUnique);
  EXPECT_EQ(ex.enqueue(0, Task{.type = "t", .unique = octo::Unique{}}).error(),
            EnqueueError::kBadUnique)
      << "an empty Unique";
  EXPECT_EQ(ex.arm_status(0).rejected, 4u);
  EXPECT_EQ(octo::to_string(EnqueueError::kDuplicate), "a task with this unique key is pending");
}

TEST(UniqueTasks, ARefusedTaskGivesItsKeyBack) {
  auto a = arm("a");
  a.capacity = 1;
  Executor ex(config_with({a}));
  ex.pause(0);
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));  // the queue is full now
  EXPECT_EQ(ex.enqueue(0, keyed("k")).error(), EnqueueError::kFull);
  ex.resume(0);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_TRUE(ex.enqueue(0, keyed("k"))) << "the refused task did not keep the key";
}

// 4 producers enqueue 40 keys over and over while 2 workers run them: a key never has two runs
// at once (kQueuedOrRunning), and every refusal names a task that held the key.
TEST(UniqueTasks, UnderRacingProducersAKeyNeverRunsTwiceAtOnce) {
  constexpr int kKeys = 40, kProducers = 4, kPerProducer = 20'000;
  std::vector<std::atomic<int>> running(kKeys);
  std::atomic<int> overlaps{0}, ran{0};
  auto cfg = config_with({arm("a", 2, [&](const Task& t, const octo::Context&) {
    const int k = std::stoi(t.payload);
    if (running[static_cast<std::size_t>(k)].fetch_add(1) != 0) overlaps.fetch_add(1);
    std::this_thread::yield();
    running[static_cast<std::size_t>(k)].fetch_sub(1);
    ran.fetch_add(1);
    return Outcome::success();
  })});
  Executor ex(std::move(cfg));
  std::atomic<int> accepted{0}, duplicates{0}, bad{0};
  std::latch go(kProducers);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      go.arrive_and_wait();
      for (int i = 0; i < kPerProducer; ++i) {
        const int k = (i * 7 + p) % kKeys;
        Task t = keyed("key-" + std::to_string(k), UniqueScope::kQueuedOrRunning);
        t.payload = std::to_string(k);
        const auto r = ex.enqueue(0, std::move(t));
        if (r) {
          accepted.fetch_add(1);
        } else if (r.error() == EnqueueError::kDuplicate && r.id() != 0) {
          duplicates.fetch_add(1);
        } else {
          bad.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(accepted.load() + duplicates.load(), kProducers * kPerProducer);
  EXPECT_EQ(ran.load(), accepted.load());
  EXPECT_GT(duplicates.load(), 0);
  EXPECT_GT(accepted.load(), kKeys);
}

}  // namespace

// Per-key concurrency (ArmConfig::max_parallel_per_key, Task::key): a key never runs past its
// limit, a busy key does not hold up other keys, a freed key passes its slot to its next task,
// and parked tasks are cancellable, drained and discarded as other queued tasks are.
#include <gtest/gtest.h>

#include <algorithm>
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

// Waits (bounded) until the arm reports `n` tasks parked on their key.
bool parked(const Executor& ex, std::uint64_t n) {
  const auto until = std::chrono::steady_clock::now() + kGenerous;
  while (ex.arm_status(0).waiting_on_key != n) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

// A blocking arm whose handler logs each start by payload and holds the tasks whose payload is
// listed in `gates` until the test opens that gate.
struct Logged {
  std::mutex mu;
  std::vector<std::string> starts;
  std::promise<void> open_a, open_b;
  std::shared_future<void> gate_a = open_a.get_future().share();
  std::shared_future<void> gate_b = open_b.get_future().share();
  std::promise<void> b_started, a1_started;
  bool a1_waits_for_stop = false;  // a1 ends when its run is asked to stop, not at gate_a

  octo::ArmConfig config(std::uint32_t parallel, std::uint32_t per_key) {
    octo::ArmConfig c = arm("keyed", parallel, [this](const Task& t, const octo::Context&) {
      {
        std::lock_guard lock(mu);
        starts.push_back(t.payload);
      }
      if (t.payload == "a1") a1_started.set_value();
      if (t.payload == "a1" && a1_waits_for_stop) {
        std::mutex m;
        std::unique_lock lock(m);
        std::condition_variable_any().wait(lock, octo::this_task::stop_token(),
                                           [] { return false; });
      } else if (t.payload == "a1") {
        gate_a.wait();
      }
      if (t.payload == "b1") {
        b_started.set_value();
        gate_b.wait();
      }
      return Outcome::success();
    });
    c.blocking = true;
    c.max_parallel_per_key = per_key;
    return c;
  }
  std::vector<std::string> log() {
    std::lock_guard lock(mu);
    return starts;
  }
  // Enqueues a1 (key "a") and returns once it runs, so that a1, not a task enqueued after it on
  // the other thread, holds key "a".
  bool run_a1(Executor& ex) {
    return ex.enqueue(0, Task{.type = "t", .payload = "a1", .key = "a"}) &&
           a1_started.get_future().wait_for(kGenerous) == std::future_status::ready;
  }
  void open_all() {
    for (std::promise<void>* gate : {&open_a, &open_b}) {
      try {
        gate->set_value();
      } catch (const std::future_error&) {  // opened by the test already
      }
    }
  }
};

// Declared after the executor: a failed assertion leaves the test with its gates open, so the
// executor's destructor does not wait forever for the tasks they hold.
struct OpenOnExit {
  Logged& l;
  ~OpenOnExit() { l.open_all(); }
};

TEST(KeyedTasks, AZeroPerKeyLimitIsRefusedNamingIt) {
  auto c = arm("keyed");
  c.max_parallel_per_key = 0;
  try {
    Executor ex(config_with({c}));
    FAIL() << "a per-key limit of 0 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("max_parallel_per_key"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'keyed'"), std::string::npos) << e.what();
  }
}

TEST(KeyedTasks, ABusyKeyParksItsTasksAndOtherKeysRun) {
  Logged l;
  Executor ex(config_with({l.config(2, 1)}));
  OpenOnExit open{l};
  EXPECT_EQ(ex.arm_status(0).max_parallel_per_key, 1u);
  ASSERT_TRUE(l.run_a1(ex));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "a2", .key = "a"}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "b1", .key = "b"}));
  // b1 starts while a1 holds key "a": the second thread parked a2 and went on.
  ASSERT_EQ(l.b_started.get_future().wait_for(kGenerous), std::future_status::ready);
  ASSERT_TRUE(parked(ex, 1));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.pending, 3u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(l.log(), (std::vector<std::string>{"a1", "b1"}));
  l.open_a.set_value();
  l.open_b.set_value();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(l.log(), (std::vector<std::string>{"a1", "b1", "a2"}));
  const auto done = ex.arm_status(0);
  EXPECT_EQ(done.succeeded, 3u);
  EXPECT_EQ(done.waiting_on_key, 0u);
  EXPECT_EQ(done.pending, 0u);
}

// The freed slot passes to a2, which goes back to the queue with the tasks queued meanwhile (the
// queue is FIFO per producer only, so their order among themselves is not fixed); all three run
// on the one free thread while b1 holds the other.
TEST(KeyedTasks, AFreedKeysNextTaskGoesBackToTheQueueBesideTheOtherKeys) {
  Logged l;
  Executor ex(config_with({l.config(2, 1)}));
  OpenOnExit open{l};
  ASSERT_TRUE(l.run_a1(ex));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "a2", .key = "a"}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "b1", .key = "b"}));
  ASSERT_EQ(l.b_started.get_future().wait_for(kGenerous), std::future_status::ready);
  ASSERT_TRUE(parked(ex, 1));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "c1", .key = "c"}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "n1"}));
  EXPECT_EQ(ex.arm_status(0).queued, 2u);
  l.open_a.set_value();
  const auto until = std::chrono::steady_clock::now() + kGenerous;
  while (l.log().size() < 5 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  auto log = l.log();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(ex.arm_status(0).waiting_on_key, 0u);
  l.open_b.set_value();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(std::vector<std::string>(log.begin(), log.begin() + 2),
            (std::vector<std::string>{"a1", "b1"}));
  std::sort(log.begin() + 2, log.end());
  EXPECT_EQ(std::vector<std::string>(log.begin() + 2, log.end()),
            (std::vector<std::string>{"a2", "c1", "n1"}));
}

TEST(KeyedTasks, ALimitOfTwoRunsTwoOfAKeyAtOnce) {
  std::latch both(2);
  std::atomic<int> ran{0};
  auto c = arm("keyed", 3, [&](const Task&, const octo::Context&) {
    if (ran.fetch_add(1) < 2) both.arrive_and_wait();  // the first two meet: they run together
    return Outcome::success();
  });
  c.blocking = true;
  c.max_parallel_per_key = 2;
  Executor ex(config_with({c}));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .key = "k"}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ex.arm_status(0).succeeded, 3u);
}

TEST(KeyedTasks, TasksWithoutAKeyAndArmsWithoutALimitAreNotHeld) {
  std::latch both(2);
  auto handler = [&](const Task&, const octo::Context&) {
    both.arrive_and_wait();  // returns only if both tasks run at once
    return Outcome::success();
  };
  auto keyed = arm("keyed", 2, handler);
  keyed.blocking = true;
  keyed.max_parallel_per_key = 1;
  {
    Executor ex(config_with({keyed}));
    ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
    ASSERT_TRUE(ex.enqueue(0, Task{.type = "t"}));
    ASSERT_TRUE(ex.wait_idle(kGenerous));
  }
  std::latch again(2);
  auto plain = arm("plain", 2, [&](const Task&, const octo::Context&) {
    again.arrive_and_wait();
    return Outcome::success();
  });
  plain.blocking = true;
  Executor ex(config_with({plain}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .key = "same"}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .key = "same"}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ex.arm_status(0).waiting_on_key, 0u);
  EXPECT_EQ(ex.arm_status(0).max_parallel_per_key, 0u);
}

TEST(KeyedTasks, AParkedTaskIsCancelledByIdAndNeverRuns) {
  Logged l;
  Executor ex(config_with({l.config(2, 1)}));
  OpenOnExit open{l};
  ASSERT_TRUE(l.run_a1(ex));
  const auto a2 = ex.enqueue(0, Task{.type = "t", .payload = "a2", .key = "a"});
  ASSERT_TRUE(a2);
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "a3", .key = "a"}));
  ASSERT_TRUE(parked(ex, 2));
  EXPECT_TRUE(ex.cancel(a2.id()));
  l.open_a.set_value();
  l.open_b.set_value();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(l.log(), (std::vector<std::string>{"a1", "a3"}));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.cancelled, 1u);
  EXPECT_EQ(s.succeeded, 2u);
  EXPECT_EQ(s.pending, 0u);
}

TEST(KeyedTasks, ADrainingShutdownRunsParkedTasks) {
  Logged l;
  Executor ex(config_with({l.config(2, 1)}));
  OpenOnExit open{l};
  ASSERT_TRUE(l.run_a1(ex));
  for (const char* p : {"a2", "a3"})
    ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = p, .key = "a"}));
  ASSERT_TRUE(parked(ex, 2));
  auto report = std::async(std::launch::async,
                           [&] { return ex.shutdown(octo::ShutdownMode::kDrain, kGenerous); });
  l.open_a.set_value();
  l.open_b.set_value();
  const auto r = report.get();
  EXPECT_FALSE(r.deadline_hit);
  EXPECT_EQ(r.cancelled, 0u);
  EXPECT_EQ(l.log(), (std::vector<std::string>{"a1", "a2", "a3"}));
}

TEST(KeyedTasks, ACancellingShutdownDiscardsParkedTasks) {
  Logged l;
  l.a1_waits_for_stop = true;
  Executor ex(config_with({l.config(2, 1)}));
  OpenOnExit open{l};
  ASSERT_TRUE(l.run_a1(ex));
  for (const char* p : {"a2", "a3"})
    ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = p, .key = "a"}));
  ASSERT_TRUE(parked(ex, 2));
  auto report = std::async(std::launch::async,
                           [&] { return ex.shutdown(octo::ShutdownMode::kCancel, kGenerous); });
  // a1 ends when the shutdown asks it to stop, after which nothing starts: its key's parked tasks
  // are cancelled, not run.
  const auto r = report.get();
  EXPECT_FALSE(r.deadline_hit);
  EXPECT_EQ(r.cancelled, 2u);
  EXPECT_EQ(l.log(), (std::vector<std::string>{"a1"}));
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.waiting_on_key, 0u);
}

TEST(KeyedTasks, AFailedTaskGivesItsKeyBackWhileItWaitsToRetry) {
  std::mutex mu;
  std::vector<std::string> starts;
  std::promise<void> a1_failed;
  auto c = arm("keyed", 2, [&](const Task& t, const octo::Context&) {
    std::lock_guard lock(mu);
    starts.push_back(t.payload + "#" + std::to_string(t.attempt));
    if (t.payload == "a1" && t.attempt == 1) {
      a1_failed.set_value();
      return Outcome::failure("once");
    }
    return Outcome::success();
  });
  c.blocking = true;
  c.max_parallel_per_key = 1;
  c.backoff_base = 200ms;
  c.backoff_max = 200ms;
  Executor ex(config_with({c}));
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "a1", .key = "a"}));
  // Enqueued once a1 has run (else the other thread could take key "a" for a2 first).
  ASSERT_EQ(a1_failed.get_future().wait_for(kGenerous), std::future_status::ready);
  ASSERT_TRUE(ex.enqueue(0, Task{.type = "t", .payload = "a2", .key = "a"}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  // a2 ran during a1's backoff (at least 100 ms of equal jitter), not after its retry.
  EXPECT_EQ(starts, (std::vector<std::string>{"a1#1", "a2#1", "a1#2"}));
}

}  // namespace

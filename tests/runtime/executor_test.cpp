#include "octo/executor.hpp"

#include <gtest/gtest.h>
#include <oneapi/tbb/global_control.h>

#include <atomic>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "test_arms.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::ArmConfig;
using octo::EnqueueError;
using octo::Executor;
using octo::ExecutorConfig;
using octo::Outcome;
using octo::Priority;
using octo::Task;
using octo_test::arm;
using octo_test::config_with;
using octo_test::ok_handler;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation

// Records every terminal event per task id; the accounting tests check "exactly one each".
struct RecordingObserver : octo::Observer {
  std::mutex mu;
  std::map<octo::TaskId, std::vector<octo::TaskEventKind>> events;
  void on_event(const octo::TaskEvent& e) noexcept override {
    std::lock_guard lock(mu);
    events[e.id].push_back(e.kind);
  }
  int count(octo::TaskId id, octo::TaskEventKind k) {
    std::lock_guard lock(mu);
    int n = 0;
    for (auto kind : events[id]) n += kind == k;
    return n;
  }
};

// Occupies one of an arm's drainers until release() (or destruction), so that tasks submitted
// meanwhile wait in the queue. The blocking task holds its own reference to the latch, so the
// hold may be destroyed before that task has returned.
class DrainerHold {
 public:
  DrainerHold(Executor& ex, octo::ArmId arm) : state_(std::make_shared<State>()) {
    auto started = state_->started.get_future();
    const bool submitted = static_cast<bool>(ex.submit(arm, [s = state_] {
      s->started.set_value();
      s->gate.wait();
    }));
    held_ = submitted && started.wait_for(kGenerous) == std::future_status::ready;
  }
  DrainerHold(const DrainerHold&) = delete;
  DrainerHold& operator=(const DrainerHold&) = delete;
  ~DrainerHold() { release(); }

  bool held() const { return held_; }
  void release() {
    if (!released_) state_->gate.count_down();
    released_ = true;
  }

 private:
  struct State {
    std::latch gate{1};
    std::promise<void> started;
  };
  std::shared_ptr<State> state_;
  bool held_ = false;
  bool released_ = false;
};

TEST(DefaultArms, AreTheOriginalEight) {
  const auto arms = octo::default_arms();
  const std::vector<std::pair<std::string, std::uint32_t>> want = {
      {"deploy", 2}, {"batch", 4},    {"streams", 2}, {"secrets", 1},
      {"builds", 2}, {"watchers", 2}, {"cleanup", 2}, {"analytics", 2}};
  ASSERT_EQ(arms.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(arms[i].name, want[i].first);
    EXPECT_EQ(arms[i].max_parallel, want[i].second);
    EXPECT_TRUE(arms[i].enabled);
  }
  Executor ex;  // the defaults form a valid executor with default routes
  EXPECT_EQ(ex.arm_count(), 8u);
  EXPECT_EQ(ex.resolve("agent.revive"), ex.arm_id("deploy"));
}

TEST(Config, InvalidValuesThrowNamingTheValue) {
  auto expect_throw = [](ExecutorConfig cfg, const std::string& needle) {
    try {
      Executor ex(std::move(cfg));
      ADD_FAILURE() << "no exception for " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto zero_parallel = arm("deploy");
  zero_parallel.max_parallel = 0;
  expect_throw(config_with({zero_parallel}), "'deploy': max_parallel must be >= 1 (got 0)");
  auto zero_capacity = arm("batch");
  zero_capacity.capacity = 0;
  expect_throw(config_with({zero_capacity}), "'batch': capacity must be >= 1 (got 0)");
  expect_throw(config_with({arm("x"), arm("x")}), "duplicate arm name 'x'");
  expect_throw(config_with({arm("")}), "arm name must not be empty");
  auto routes_to_nowhere = config_with({arm("x")});
  routes_to_nowhere.routes.add_prefix("a.", "nowhere");
  expect_throw(std::move(routes_to_nowhere), "unknown arm 'nowhere'");

  Executor ex(config_with({arm("x")}));
  EXPECT_THROW(ex.add_arm(arm("x")), std::invalid_argument);
  EXPECT_THROW(ex.set_max_parallel(0, 0), std::invalid_argument);
  EXPECT_THROW(ex.set_max_parallel(7, 1), std::invalid_argument);
  EXPECT_THROW(ExecutorConfig{}.on("nope", ok_handler), std::invalid_argument);
}

struct Deployer {
  std::atomic<int> rollouts{0};
};

TEST(Enqueue, RunsTypedTaskWithContextAndStampsIt) {
  auto deployer = std::make_shared<Deployer>();
  std::promise<Task> seen;
  auto cfg = config_with({arm("deploy", 2, [&](const Task& t, const octo::Context& ctx) {
    ctx.get<Deployer>().rollouts++;
    seen.set_value(t);
    return Outcome::success();
  })});
  cfg.routes.add_prefix("agent.", "deploy");
  cfg.context.provide(deployer);
  Executor ex(std::move(cfg));

  const auto before = std::chrono::system_clock::now() - 1s;
  auto r = ex.enqueue(Task{.type = "agent.revive",
                           .payload = "a-17",
                           .priority = Priority::kCritical,
                           .target_agents = {"dreamops"}});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r.id(), 0u);
  auto fut = seen.get_future();
  ASSERT_EQ(fut.wait_for(kGenerous), std::future_status::ready);
  const Task t = fut.get();
  EXPECT_EQ(t.id, r.id());
  EXPECT_EQ(t.type, "agent.revive");
  EXPECT_EQ(t.payload, "a-17");
  EXPECT_EQ(t.attempt, 1u);
  EXPECT_EQ(t.priority, Priority::kCritical);
  EXPECT_EQ(t.target_agents, std::vector<std::string>{"dreamops"});
  EXPECT_GE(t.created, before);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(deployer->rollouts.load(), 1);
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.accepted, 1u);
  EXPECT_EQ(s.succeeded, 1u);
  EXPECT_EQ(s.processed, 1u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_GT(s.last_run.time_since_epoch().count(), 0);
}

TEST(Enqueue, RefusalsAreTypedAndCounted) {
  auto cfg = config_with({arm("a"), arm("nohandler", 1, nullptr)});
  cfg.routes.add_prefix("a.", "a").add_prefix("n.", "nohandler");
  Executor ex(std::move(cfg));
  EXPECT_EQ(ex.enqueue(Task{}).error(), EnqueueError::kEmptyType);
  EXPECT_EQ(ex.enqueue(Task{.type = "zzz"}).error(), EnqueueError::kUnroutable);
  EXPECT_EQ(ex.enqueue(9, Task{.type = "a.x"}).error(), EnqueueError::kUnknownArm);
  EXPECT_EQ(ex.enqueue(Task{.type = "n.x"}).error(), EnqueueError::kNoHandler);
  ex.set_enabled(0, false);
  EXPECT_EQ(ex.enqueue(Task{.type = "a.x"}).error(), EnqueueError::kDisabled);
  EXPECT_EQ(ex.submit(0, [] {}).error(), EnqueueError::kDisabled);
  ex.set_enabled(0, true);
  EXPECT_TRUE(ex.enqueue(Task{.type = "a.x"}).ok());
  // submit() needs no handler: an arm without one still takes callables.
  EXPECT_TRUE(ex.submit(1, [] {}).ok());
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  ex.shutdown();
  EXPECT_EQ(ex.enqueue(Task{.type = "a.x"}).error(), EnqueueError::kStopped);
  EXPECT_EQ(ex.submit(0, [] {}).error(), EnqueueError::kStopped);

  const auto s = ex.status();
  EXPECT_EQ(s.rejected_unroutable, 3u);  // empty, unroutable, unknown arm
  EXPECT_EQ(s.rejected_stopped, 2u);
  EXPECT_EQ(s.arms[0].rejected, 2u);  // disabled twice
  EXPECT_EQ(s.arms[1].rejected, 1u);  // no handler
  EXPECT_EQ(s.rejected, 8u);
  EXPECT_EQ(s.accepted, 2u);
  EXPECT_EQ(s.succeeded, 2u);
  EXPECT_TRUE(s.stopping);
  for (auto e : {EnqueueError::kEmptyType, EnqueueError::kUnroutable, EnqueueError::kFull,
                 EnqueueError::kStopped, EnqueueError::kJournal}) {
    EXPECT_FALSE(octo::to_string(e).empty());
  }
  // Part of octohalo::runtime, not of the optional journal library.
  EXPECT_EQ(octo::to_string(octo::Durability::kSync), "sync");
}

TEST(Backpressure, FullArmRejectsAndLosesNothing) {
  std::latch release(1);
  std::promise<void> running;
  auto a = arm("a", 1);
  a.capacity = 2;
  Executor ex(config_with({a}));
  std::atomic<int> ran{0};
  ASSERT_TRUE(ex.submit(0, [&] {
    running.set_value();
    release.wait();
    ran++;
  }));
  ASSERT_EQ(running.get_future().wait_for(kGenerous), std::future_status::ready);
  // The first task runs (it no longer counts against capacity); two more fill the queue.
  ASSERT_TRUE(ex.submit(0, [&] { ran++; }));
  ASSERT_TRUE(ex.submit(0, [&] { ran++; }));
  EXPECT_EQ(ex.submit(0, [&] { ran++; }).error(), EnqueueError::kFull);
  EXPECT_EQ(ex.arm_status(0).queued, 2u);
  release.count_down();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), 3);
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.accepted, 3u);
  EXPECT_EQ(s.succeeded, 3u);
  EXPECT_EQ(s.rejected, 1u);
}

TEST(Parallelism, SlowTasksUseTheWholeLimit) {
  // Two tasks that can only finish together: passes only if the arm runs both at once, even
  // though the second one arrives while the first is already running (the stall watchdog).
  Executor ex(config_with({arm("deploy", 2)}));
  std::latch both(2);
  std::atomic<int> done{0};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(ex.submit(0, [&] {
      both.arrive_and_wait();
      done++;
    }));
  }
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(done.load(), 2);
}

TEST(Parallelism, NeverExceedsMaxParallel) {
  Executor ex(config_with({arm("secrets", 1), arm("batch", 3)}, 4));
  std::atomic<int> now[2]{}, peak[2]{};
  for (int i = 0; i < 4000; ++i) {
    const int k = i % 2;
    ASSERT_TRUE(ex.submit(static_cast<octo::ArmId>(k), [&, k] {
      const int n = ++now[k];
      int p = peak[k].load();
      while (n > p && !peak[k].compare_exchange_weak(p, n)) {
      }
      for (int spin = 0; spin < 200; ++spin) {
        std::atomic_signal_fence(std::memory_order_seq_cst);
      }
      --now[k];
    }));
  }
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(peak[0].load(), 1);
  EXPECT_LE(peak[1].load(), 3);
  EXPECT_GE(peak[1].load(), 1);
}

TEST(Parallelism, ReLimitAtRunTime) {
  Executor ex(config_with({arm("a", 1)}));
  ex.set_max_parallel(0, 2);
  EXPECT_EQ(ex.arm_status(0).max_parallel, 2u);
  std::latch both(2);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(ex.submit(0, [&] { both.arrive_and_wait(); }));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const auto id = ex.add_arm(arm("late", 1));
  EXPECT_EQ(ex.arm_id("late"), id);
  std::promise<void> ran;
  ASSERT_TRUE(ex.submit(id, [&] { ran.set_value(); }));
  EXPECT_EQ(ran.get_future().wait_for(kGenerous), std::future_status::ready);
}

TEST(Priorities, HigherDrainFirst) {
  // One drainer: block it, queue low..critical, then release and record the order.
  Executor ex(config_with({arm("a", 1)}));
  DrainerHold hold(ex, 0);
  ASSERT_TRUE(hold.held());
  std::mutex mu;
  std::vector<int> order;
  for (int p : {0, 1, 2, 3, 0, 3}) {
    ASSERT_TRUE(ex.submit(
        0,
        [&, p] {
          std::lock_guard lock(mu);
          order.push_back(p);
        },
        static_cast<Priority>(p)));
  }
  hold.release();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(order, (std::vector<int>{3, 3, 2, 1, 0, 0}));
}

TEST(Priorities, OneThreadsBacklogRunsInOrderAcrossManyQueueBlocks) {
  // A backlog of several thousand tasks fills many of the queue's blocks (512 slots each) and is
  // taken in batches; with one drainer, one producer's tasks of one priority run in its order.
  constexpr int kTasks = 5'000;
  auto a = arm("a", 1);
  a.capacity = kTasks;
  Executor ex(config_with({a}));
  DrainerHold hold(ex, 0);
  ASSERT_TRUE(hold.held());
  std::vector<int> order;  // written by the single drainer only, read after wait_idle
  order.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) ASSERT_TRUE(ex.submit(0, [&order, i] { order.push_back(i); }));
  EXPECT_EQ(ex.arm_status(0).queued, static_cast<std::uint64_t>(kTasks));
  hold.release();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) ASSERT_EQ(order[static_cast<std::size_t>(i)], i) << "at " << i;
  EXPECT_EQ(ex.arm_status(0).succeeded, static_cast<std::uint64_t>(kTasks) + 1);
}

TEST(Priorities, AgingServesLowPriorityUnderCriticalBacklog) {
  auto cfg = config_with({arm("a", 1)});
  cfg.aging_period = 4;
  Executor ex(std::move(cfg));
  DrainerHold hold(ex, 0);
  ASSERT_TRUE(hold.held());
  std::atomic<int> critical_done{0};
  std::atomic<int> critical_before_low{-1};
  ASSERT_TRUE(ex.submit(
      0, [&] { critical_before_low = critical_done.load(); }, Priority::kLow));
  for (int i = 0; i < 5000; ++i) {
    ASSERT_TRUE(ex.submit(
        0, [&] { critical_done++; }, Priority::kCritical));
  }
  hold.release();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  // Without aging the low task would run after all 5000 critical ones.
  EXPECT_GE(critical_before_low.load(), 0);
  EXPECT_LT(critical_before_low.load(), 5000);
}

TEST(Failures, RetriesThenDeadLetters) {
  RecordingObserver obs;
  std::atomic<int> calls{0};
  auto a = arm("a", 1, [&](const Task& t, const octo::Context&) {
    calls++;
    if (t.payload == "throw") throw std::runtime_error("boom");
    return Outcome::failure("nope #" + std::to_string(t.attempt));
  });
  a.max_attempts = 3;
  auto cfg = config_with({a});
  cfg.routes.add_prefix("t.", "a");
  cfg.observers = {&obs};
  Executor ex(std::move(cfg));
  auto r1 = ex.enqueue(Task{.type = "t.fail"});
  auto r2 = ex.enqueue(Task{.type = "t.throw", .payload = "throw", .max_attempts = 2});
  ASSERT_TRUE(r1 && r2);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(calls.load(), 5);
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.processed, 5u);
  EXPECT_EQ(s.failed, 5u);
  EXPECT_EQ(s.retried, 3u);
  EXPECT_EQ(s.dead_lettered, 2u);
  EXPECT_EQ(s.succeeded, 0u);
  const auto dl = ex.dead_letters();
  ASSERT_EQ(dl.size(), 2u);
  std::set<std::string> reasons;
  for (const auto& d : dl) {
    EXPECT_EQ(d.arm, "a");
    ASSERT_TRUE(d.task.has_value());
    EXPECT_EQ(d.task->id, d.id);
    reasons.insert(d.reason);
    EXPECT_EQ(d.attempts, d.id == r1.id() ? 3u : 2u);
  }
  EXPECT_TRUE(reasons.count("nope #3"));
  EXPECT_TRUE(reasons.count("exception: boom"));
  EXPECT_EQ(obs.count(r1.id(), octo::TaskEventKind::kStarted), 3);
  EXPECT_EQ(obs.count(r1.id(), octo::TaskEventKind::kFailed), 2);
  EXPECT_EQ(obs.count(r1.id(), octo::TaskEventKind::kDeadLettered), 1);
}

TEST(Failures, RetrySucceedsAndSubmitCallablesRetryToo) {
  std::atomic<int> tries{0};
  Executor ex(config_with({arm("a", 1)}));
  ASSERT_TRUE(ex.submit(0, [&]() -> Outcome {
    return ++tries < 3 ? Outcome::failure("transient") : Outcome::success();
  }));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(tries.load(), 3);
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.succeeded, 1u);
  EXPECT_EQ(s.retried, 2u);
  EXPECT_EQ(s.dead_lettered, 0u);
}

TEST(Failures, DeadLettersAreBounded) {
  auto a = arm("a", 1, [](const Task&, const octo::Context&) { return Outcome::failure("x"); });
  a.max_attempts = 1;
  auto cfg = config_with({a});
  cfg.routes.add_prefix("t.", "a");
  cfg.dead_letter_capacity = 3;
  Executor ex(std::move(cfg));
  std::vector<octo::TaskId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(ex.enqueue(Task{.type = "t.x"}).id());
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ex.dead_letters().size(), 3u);
  EXPECT_EQ(ex.dead_letters_dropped(), 2u);
  EXPECT_EQ(ex.arm_status(0).dead_lettered, 5u);
}

TEST(Backoff, ExponentialWithEqualJitterAndCap) {
  using octo::backoff_delay;
  EXPECT_EQ(backoff_delay(1, 100ms, 10s, 0.0), 50ms);
  EXPECT_EQ(backoff_delay(1, 100ms, 10s, 1.0), 100ms);
  EXPECT_EQ(backoff_delay(2, 100ms, 10s, 0.0), 100ms);
  EXPECT_EQ(backoff_delay(3, 100ms, 10s, 0.5), 300ms);
  EXPECT_EQ(backoff_delay(30, 100ms, 10s, 1.0), 10s);
  EXPECT_EQ(backoff_delay(1000, 100ms, 10s, 0.0), 5s);  // no overflow at huge attempts
}

TEST(Cancel, QueuedTaskIsCancelledOnceAndNeverRuns) {
  RecordingObserver obs;
  std::atomic<int> ran{0};
  auto cfg = config_with({arm("a", 1, [&](const Task&, const octo::Context&) {
    ran++;
    return Outcome::success();
  })});
  cfg.routes.add_prefix("t.", "a");
  cfg.observers = {&obs};
  Executor ex(std::move(cfg));
  DrainerHold hold(ex, 0);
  ASSERT_TRUE(hold.held());
  auto keep = ex.enqueue(Task{.type = "t.keep"});
  auto drop = ex.enqueue(Task{.type = "t.drop"});
  ASSERT_TRUE(keep && drop);
  EXPECT_TRUE(ex.cancel(drop.id()));
  EXPECT_FALSE(ex.cancel(drop.id()));                 // already cancelled
  EXPECT_FALSE(ex.cancel(drop.id() ^ (1ull << 40)));  // wrong generation
  EXPECT_FALSE(ex.cancel(0));
  hold.release();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), 1);
  EXPECT_FALSE(ex.cancel(keep.id()));  // finished
  EXPECT_EQ(obs.count(drop.id(), octo::TaskEventKind::kCancelled), 1);
  EXPECT_EQ(obs.count(drop.id(), octo::TaskEventKind::kStarted), 0);
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.cancelled, 1u);
  EXPECT_EQ(s.succeeded, 2u);
  EXPECT_EQ(s.accepted, s.succeeded + s.cancelled + s.dead_lettered + s.pending);
}

TEST(Cancel, TaskWaitingForRetryCanBeCancelled) {
  std::promise<void> first_failure;
  std::atomic<int> runs{0};
  auto a = arm("a", 1, [&](const Task&, const octo::Context&) {
    if (runs++ == 0) first_failure.set_value();
    return Outcome::failure("again");
  });
  a.max_attempts = 5;
  a.backoff_base = 1h;  // the retry would wait an hour
  a.backoff_max = 1h;
  auto cfg = config_with({a});
  cfg.routes.add_prefix("t.", "a");
  Executor ex(std::move(cfg));
  auto r = ex.enqueue(Task{.type = "t.x"});
  ASSERT_TRUE(r);
  ASSERT_EQ(first_failure.get_future().wait_for(kGenerous), std::future_status::ready);
  // The drainer marks the task queued again just before handing it to the timer.
  while (ex.arm_status(0).delayed == 0) std::this_thread::yield();
  EXPECT_TRUE(ex.cancel(r.id()));
  const auto rep = ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
  EXPECT_FALSE(rep.deadline_hit);
  EXPECT_EQ(runs.load(), 1);
  const auto s = ex.arm_status(0);
  EXPECT_EQ(s.cancelled, 1u);
  EXPECT_EQ(s.pending, 0u);
}

TEST(Shutdown, DrainRunsEverythingAccepted) {
  Executor ex(config_with({arm("a", 2)}));
  std::atomic<int> ran{0};
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(ex.submit(0, [&] { ran++; }));
  const auto rep = ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
  EXPECT_FALSE(rep.deadline_hit);
  EXPECT_EQ(rep.cancelled, 0u);
  EXPECT_EQ(ran.load(), 10000);
  EXPECT_EQ(ex.shutdown().cancelled, 0u);  // idempotent
}

TEST(Shutdown, CancelDropsQueuedAndWaitsForRunning) {
  Executor ex(config_with({arm("a", 1)}));
  std::latch gate(1);
  std::promise<void> blocked;
  std::atomic<int> ran{0};
  ASSERT_TRUE(ex.submit(0, [&] {
    blocked.set_value();
    gate.wait();
    ran++;
  }));
  ASSERT_EQ(blocked.get_future().wait_for(kGenerous), std::future_status::ready);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ex.submit(0, [&] { ran++; }));
  auto done = std::async(std::launch::async,
                         [&] { return ex.shutdown(octo::ShutdownMode::kCancel, kGenerous); });
  // The running task is not interrupted; shutdown waits for it.
  while (!ex.status().stopping) std::this_thread::yield();
  gate.count_down();
  const auto rep = done.get();
  EXPECT_EQ(rep.cancelled, 100u);
  EXPECT_EQ(rep.still_running, 0u);
  EXPECT_EQ(ran.load(), 1);
  const auto s = ex.status();
  EXPECT_EQ(s.accepted, s.succeeded + s.cancelled + s.dead_lettered + s.pending);
  EXPECT_EQ(s.pending, 0u);
}

TEST(Shutdown, DeadlineReportsStillRunning) {
  auto ex = std::make_unique<Executor>(config_with({arm("a", 1)}));
  DrainerHold hold(*ex, 0);
  ASSERT_TRUE(hold.held());
  const auto rep = ex->shutdown(octo::ShutdownMode::kDrain, 1ms);
  EXPECT_TRUE(rep.deadline_hit);
  EXPECT_EQ(rep.still_running, 1u);
  hold.release();
  ex.reset();  // the destructor waits for the running task
}

// Counts the terminal events it sees, and whether the executor said it was going away.
struct Terminals : octo::Observer {
  std::atomic<int> terminal{0};
  std::atomic<int> destroyed{0};
  const Executor* destroyed_by = nullptr;
  void on_event(const octo::TaskEvent& e) noexcept override {
    terminal += e.kind == octo::TaskEventKind::kSucceeded;
  }
  void on_executor_destroyed(const Executor& ex) noexcept override {
    ++destroyed;
    destroyed_by = &ex;
  }
};

TEST(Observers, ListedAddedAndRemovedOnesSeeWhatTheyShould) {
  Terminals listed, added, never;
  auto cfg = config_with({arm("a", 2)});
  cfg.observers = {&listed, nullptr};
  auto ex = std::make_unique<Executor>(std::move(cfg));
  auto run_one = [&] {
    ASSERT_TRUE(ex->submit(0, [] {}));
    ASSERT_TRUE(ex->wait_idle(kGenerous));
  };
  run_one();
  ex->add_observer(added);
  ex->add_observer(added);  // once only
  run_one();
  EXPECT_TRUE(ex->remove_observer(listed));
  EXPECT_FALSE(ex->remove_observer(listed));
  EXPECT_FALSE(ex->remove_observer(never));
  run_one();
  EXPECT_EQ(listed.terminal.load(), 2);
  EXPECT_EQ(added.terminal.load(), 2);
  // Told once, only while still registered, with the executor going away.
  const Executor* addr = ex.get();
  ex.reset();
  EXPECT_EQ(added.destroyed.load(), 1);
  EXPECT_EQ(added.destroyed_by, addr);
  EXPECT_EQ(listed.destroyed.load(), 0);
  EXPECT_EQ(never.destroyed.load(), 0);
}

// Events emitted outside the arena reach observers too: a shutdown cancels the queued tasks
// from its own thread while the arm's only drainer is held.
TEST(Observers, EventsFromTheShuttingDownThreadAreObserved) {
  RecordingObserver rec;
  auto cfg = config_with({arm("a", 1)});
  cfg.observers = {&rec};
  Executor ex(std::move(cfg));
  DrainerHold hold(ex, 0);
  ASSERT_TRUE(hold.held());
  auto r = ex.enqueue(0, Task{.type = "x"});
  ASSERT_TRUE(r);
  auto report = std::async(std::launch::async,
                           [&] { return ex.shutdown(octo::ShutdownMode::kCancel, kGenerous); });
  const auto deadline = std::chrono::steady_clock::now() + kGenerous;
  while (rec.count(r.id(), octo::TaskEventKind::kCancelled) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(rec.count(r.id(), octo::TaskEventKind::kCancelled), 1);
  EXPECT_TRUE(hold.held());  // not a drainer: the only one is still held
  hold.release();
  EXPECT_EQ(report.get().cancelled, 1u);
  EXPECT_TRUE(ex.remove_observer(rec));
}

TEST(Status, HistogramsAndTotals) {
  Executor ex(config_with({arm("a", 2)}));
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(ex.submit(0, [] {}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const auto s = ex.status();
  ASSERT_EQ(s.arms.size(), 1u);
  EXPECT_EQ(s.accepted, 2000u);
  EXPECT_EQ(s.succeeded, 2000u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_LE(s.arms[0].active, 2u);  // drainers retire just after the last task
  // Every task was recorded, once in each histogram; percentiles are ordered.
  for (const octo::DurationSummary& d : {s.arms[0].queue_wait, s.arms[0].run_time}) {
    EXPECT_EQ(d.count, 2000u);
    EXPECT_LE(d.p50, d.p90);
    EXPECT_LE(d.p90, d.p99);
    EXPECT_LE(d.p99, d.p999);
    EXPECT_LE(d.p999, d.max);
  }
  EXPECT_GT(s.arms[0].queue_wait.max.count(), 0);
  const auto all = ex.arm_latency(0);
  EXPECT_EQ(all.queue_wait.count, 2000u);
  EXPECT_EQ(all.run_time.count, 2000u);
}

TEST(Status, SampledTimingRecordsOneTaskInN) {
  auto cfg = config_with({arm("a", 2)});
  cfg.time_one_in = 16;
  Executor ex(std::move(cfg));
  // One enqueueing thread: its 1,600 tasks have every 16th timed.
  for (int i = 0; i < 1600; ++i) ASSERT_TRUE(ex.submit(0, [] {}));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  const auto all = ex.arm_latency(0);
  EXPECT_EQ(all.queue_wait.count, 100u);
  EXPECT_EQ(all.run_time.count, 100u);
  EXPECT_EQ(ex.arm_status(0).succeeded, 1600u);
  auto bad = config_with({arm("a")});
  bad.time_one_in = 0;
  EXPECT_THROW(Executor{std::move(bad)}, std::invalid_argument);
  auto window = config_with({arm("a")});
  window.latency_window = 0s;
  EXPECT_THROW(Executor{std::move(window)}, std::invalid_argument);
}

TEST(Config, NeverLowersTheProcessTbbLimit) {
  using tbb::global_control;
  // The embedding service allows 8 TBB threads; TBB applies the smallest live limit process-wide.
  global_control service(global_control::max_allowed_parallelism, 8);
  {
    Executor ex(config_with({arm("a")}, 2));
    EXPECT_EQ(global_control::active_value(global_control::max_allowed_parallelism), 8u);
    std::promise<void> ran;
    ASSERT_TRUE(ex.submit(0, [&] { ran.set_value(); }));
    EXPECT_EQ(ran.get_future().wait_for(kGenerous), std::future_status::ready);
  }
  EXPECT_EQ(global_control::active_value(global_control::max_allowed_parallelism), 8u);
}

TEST(Context, MissingServiceThrowsNamingIt) {
  octo::Context ctx;
  EXPECT_FALSE(ctx.has<Deployer>());
  EXPECT_THROW(ctx.get<Deployer>(), std::logic_error);
  ctx.provide(std::make_shared<Deployer>());
  EXPECT_TRUE(ctx.has<Deployer>());
  EXPECT_EQ(ctx.get<Deployer>().rollouts.load(), 0);
}

TEST(Submit, LargeCallablesAndMoveOnlyCaptures) {
  Executor ex(config_with({arm("a", 1)}));
  std::array<char, 200> big{};
  big[199] = 7;
  std::atomic<int> sum{0};
  auto owned = std::make_unique<int>(35);
  ASSERT_TRUE(ex.submit(0, [&sum, big] { sum += big[199]; }));
  ASSERT_TRUE(ex.submit(0, [&sum, p = std::move(owned)] { sum += *p; }));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(sum.load(), 42);
}

}  // namespace

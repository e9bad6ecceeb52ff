// Stress tests (CTest label "stress"): accounting under load with failures and cancellation, the
// hard parallel limit, lost wake-ups, and shutdown racing producers.
#include "octo/executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <future>
#include <latch>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "counting_observer.hpp"  // tests/support
#include "octo/detail/thread_index.hpp"
#include "octo/this_task.hpp"

namespace {

using namespace std::chrono_literals;
using octo::Outcome;
using octo::Task;

constexpr auto kGenerous = 120s;

std::uint32_t index_of(const Task& t) {
  std::uint32_t i = 0;
  std::from_chars(t.payload.data(), t.payload.data() + t.payload.size(), i);
  return i;
}

// Deterministic "random" failure: about 1 attempt in 16 fails.
bool should_fail(std::uint32_t index, std::uint32_t attempt) {
  std::uint64_t x = (std::uint64_t{index} << 8) ^ attempt;  // splitmix64 finaliser
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return (x >> 60) == 0;
}

struct TerminalCounter : octo::Observer {
  explicit TerminalCounter(std::size_t n) : terminal(n) {}
  std::vector<std::atomic<std::uint8_t>> terminal;
  void on_event(const octo::TaskEvent& e) noexcept override {
    const bool is_terminal = e.kind == octo::TaskEventKind::kSucceeded ||
                             e.kind == octo::TaskEventKind::kDeadLettered ||
                             e.kind == octo::TaskEventKind::kCancelled;
    if (is_terminal && e.task) terminal[index_of(*e.task)].fetch_add(1, std::memory_order_relaxed);
  }
};

struct Peak {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  void enter() {
    const int n = now.fetch_add(1) + 1;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
  }
  void leave() { now.fetch_sub(1); }
};

TEST(ExecutorStress, AccountingInvariantAndParallelLimitUnderLoad) {
  constexpr int kProducers = 4;
  constexpr std::uint32_t kPerProducer = 250'000;
  constexpr std::uint32_t kTotal = kProducers * kPerProducer;
  const auto arms = octo::default_arms();
  const char* kTypes[] = {"deploy.x", "batch.x",    "streams.x", "secrets.x",
                          "builds.x", "watchers.x", "cleanup.x", "analytics.x"};

  TerminalCounter obs(kTotal);
  std::vector<std::atomic<std::uint8_t>> succeeded_runs(kTotal);
  std::unique_ptr<Peak[]> peaks(new Peak[arms.size()]);

  octo::ExecutorConfig cfg;
  cfg.observers = {&obs};
  for (std::size_t a = 0; a < cfg.arms.size(); ++a) {
    cfg.arms[a].backoff_base = 0ms;
    cfg.arms[a].backoff_max = 1ms;
    cfg.arms[a].handler = [&, a](const Task& t, const octo::Context&) {
      peaks[a].enter();
      const std::uint32_t i = index_of(t);
      const bool fail = should_fail(i, t.attempt);
      if (!fail) succeeded_runs[i].fetch_add(1, std::memory_order_relaxed);
      peaks[a].leave();
      return fail ? Outcome::failure("injected") : Outcome::success();
    };
  }
  octo::Executor ex(std::move(cfg));

  std::atomic<std::uint64_t> accepted{0}, cancelled_ok{0}, cancel_refused{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::minstd_rand rng(static_cast<unsigned>(p + 1));
      for (std::uint32_t j = 0; j < kPerProducer; ++j) {
        const std::uint32_t i = static_cast<std::uint32_t>(p) * kPerProducer + j;
        Task t{.type = kTypes[rng() % 8],
               .payload = std::to_string(i),
               .priority = static_cast<octo::Priority>(rng() % 4)};
        auto r = ex.enqueue(std::move(t));
        while (!r && r.error() == octo::EnqueueError::kFull) {
          std::this_thread::yield();  // backpressure: try again, never drop
          r = ex.enqueue(Task{.type = kTypes[i % 8], .payload = std::to_string(i)});
        }
        ASSERT_TRUE(r.ok()) << octo::to_string(r.error());
        accepted.fetch_add(1, std::memory_order_relaxed);
        if (j % 101 == 0) (ex.cancel(r.id()) ? cancelled_ok : cancel_refused).fetch_add(1);
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(ex.wait_idle(kGenerous));

  const auto s = ex.status();
  EXPECT_EQ(s.accepted, accepted.load());
  EXPECT_EQ(s.accepted, std::uint64_t{kTotal});
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.accepted, s.succeeded + s.dead_lettered + s.cancelled + s.pending);
  // A refused cancel() of a running task still asks it to stop: if that run then fails, the task
  // ends cancelled instead of retrying. So the cancelled are those cancel() took off the queue,
  // plus at most the refused ones.
  EXPECT_GE(s.cancelled, cancelled_ok.load());
  EXPECT_LE(s.cancelled, cancelled_ok.load() + cancel_refused.load());
  EXPECT_GT(s.retried, 0u);
  EXPECT_GT(s.dead_lettered, 0u);  // three failures in a row do happen at this rate and size

  // Every task ended exactly once, and succeeded exactly when a handler run succeeded.
  std::uint64_t success_runs = 0;
  for (std::uint32_t i = 0; i < kTotal; ++i) {
    ASSERT_EQ(obs.terminal[i].load(), 1) << "task " << i;
    ASSERT_LE(succeeded_runs[i].load(), 1) << "task " << i;
    success_runs += succeeded_runs[i].load();
  }
  EXPECT_EQ(success_runs, s.succeeded);
  for (std::size_t a = 0; a < arms.size(); ++a) {
    EXPECT_LE(peaks[a].peak.load(), static_cast<int>(arms[a].max_parallel)) << arms[a].name;
    EXPECT_LE(s.arms[a].active, arms[a].max_parallel);
  }
}

TEST(ExecutorStress, NoLostWakeUpWhenEnqueueRacesRetirement) {
  // Without the watchdog, a lost wake-up leaves a task queued forever: wait_for() would expire.
  octo::ExecutorConfig cfg;
  cfg.arms = {octo::default_arms()[3], octo::default_arms()[0]};  // secrets (1), deploy (2)
  cfg.routes = {};
  cfg.stall_check = std::chrono::nanoseconds(0);
  octo::Executor ex(std::move(cfg));
  constexpr int kRounds = 20'000;
  auto producer = [&](octo::ArmId arm) {
    for (int i = 0; i < kRounds; ++i) {
      std::promise<void> ran;
      auto fut = ran.get_future();
      ASSERT_TRUE(ex.submit(arm, [&ran] { ran.set_value(); }));
      ASSERT_EQ(fut.wait_for(kGenerous), std::future_status::ready) << "round " << i;
    }
  };
  std::thread a(producer, 0), b(producer, 1), c(producer, 1);
  a.join();
  b.join();
  c.join();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ex.status().succeeded, 3u * kRounds);
}

void shutdown_while_producing(octo::ShutdownMode mode) {
  octo::ExecutorConfig cfg;
  std::atomic<std::uint64_t> runs{0};
  for (auto& a : cfg.arms) {
    a.handler = [&](const Task&, const octo::Context&) {
      runs.fetch_add(1, std::memory_order_relaxed);
      return Outcome::success();
    };
  }
  octo::Executor ex(std::move(cfg));
  constexpr int kProducers = 4;
  std::latch started(kProducers);
  std::atomic<std::uint64_t> accepted{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      bool counted = false;
      for (std::uint64_t i = 0;; ++i) {
        auto r = ex.enqueue(Task{.type = i % 2 ? "agent.x" : "batch.x"});
        if (r) {
          accepted.fetch_add(1, std::memory_order_relaxed);
        } else if (r.error() == octo::EnqueueError::kStopped) {
          break;
        }
        if (i == 1000 && !counted) {
          counted = true;
          started.count_down();
        }
      }
    });
  }
  started.wait();
  const auto rep = ex.shutdown(mode, kGenerous);
  for (auto& t : producers) t.join();
  EXPECT_FALSE(rep.deadline_hit);
  EXPECT_EQ(rep.still_running, 0u);
  const auto s = ex.status();
  EXPECT_EQ(s.accepted, accepted.load());
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.accepted, s.succeeded + s.cancelled + s.dead_lettered);
  EXPECT_EQ(s.succeeded, runs.load());
  EXPECT_EQ(s.rejected_stopped, std::uint64_t{kProducers});
  EXPECT_EQ(rep.cancelled, s.cancelled);
}

TEST(ExecutorStress, ShutdownDrainWhileProducersEnqueue) {
  shutdown_while_producing(octo::ShutdownMode::kDrain);
}

TEST(ExecutorStress, ShutdownCancelWhileProducersEnqueue) {
  shutdown_while_producing(octo::ShutdownMode::kCancel);
}

// Observers come and go while two producers keep every arm's drainers busy; a removed observer
// is freed at once, so a late call is caught (by its flag here, and by ASan as a use after free).
TEST(ExecutorStress, ObserversAddedAndRemovedWhileTasksRun) {
  octo::ExecutorConfig cfg;
  cfg.threads = 2;
  for (auto& a : cfg.arms)
    a.handler = [](const Task&, const octo::Context&) { return Outcome::success(); };
  octo::Executor ex(std::move(cfg));
  std::atomic<bool> stop{false};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (!ex.enqueue(Task{.type = "run-batch-job"})) std::this_thread::yield();
      }
    });
  }
  int seen = 0;
  for (int round = 0; round < 200; ++round) {
    auto w = std::make_unique<octo_test::CountingObserver>();
    ex.add_observer(*w);
    for (int spins = 0; w->calls.load() == 0 && spins < 1'000'000; ++spins) {
      std::this_thread::yield();
    }
    ASSERT_TRUE(ex.remove_observer(*w));
    w->gone.store(true);
    ASSERT_EQ(w->after_gone.load(), 0) << "round " << round;
    seen += w->calls.load() > 0;
  }
  stop = true;
  for (auto& t : producers) t.join();
  ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
  EXPECT_GT(seen, 100);
}

// Deadlines that pass while tasks wait, or just as they start, and cancel(id) racing the start,
// over 1,000,000 tasks from 4 producers on a CPU arm and a blocking arm: every task ends exactly
// once and the counters add up.
TEST(ExecutorStress, ExpiryAndCancellationRacingStartKeepTheAccounting) {
  constexpr int kProducers = 4;
  constexpr std::uint32_t kPerProducer = 250'000;
  constexpr std::uint32_t kTotal = kProducers * kPerProducer;
  constexpr std::size_t kRing = 4096;
  std::atomic<std::uint64_t> runs{0}, stops_seen{0};
  const auto handler = [&](const Task&, const octo::Context&) {
    runs.fetch_add(1, std::memory_order_relaxed);
    if (octo::this_task::stop_requested()) stops_seen.fetch_add(1, std::memory_order_relaxed);
    return Outcome::success();
  };
  octo::ExecutorConfig cfg;
  octo::ArmConfig cpu{.name = "cpu", .max_parallel = 2, .handler = handler};
  octo::ArmConfig io{.name = "io", .max_parallel = 2, .blocking = true, .handler = handler};
  cfg.arms = {cpu, io};
  cfg.routes = {};
  cfg.threads = 2;
  octo::Executor ex(std::move(cfg));
  TerminalCounter terminal(kTotal);
  ex.add_observer(terminal);

  std::vector<std::atomic<octo::TaskId>> recent(kRing);
  std::atomic<int> producing{kProducers};
  std::atomic<std::uint64_t> cancelled_by_us{0};
  // Refused cancels include running tasks asked to stop: one that then fails counts as
  // cancelled (cancel()'s contract), so they bound the status's count from above.
  std::atomic<std::uint64_t> refused{0};
  std::latch start(kProducers + 1);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      start.arrive_and_wait();
      for (std::uint32_t i = 0; i < kPerProducer; ++i) {
        const std::uint32_t index = static_cast<std::uint32_t>(p) * kPerProducer + i;
        Task t{.type = "t", .payload = std::to_string(index)};
        const auto now = std::chrono::system_clock::now();
        if (index % 16 == 1) {
          t.deadline = now - 1ms;  // expires in enqueue
        } else if (index % 4 == 0) {
          t.deadline = now + std::chrono::microseconds(index % 64);  // may expire while queued
        }
        const auto r = ex.enqueue(index % 2, std::move(t));
        ASSERT_TRUE(r) << octo::to_string(r.error());
        recent[index % kRing].store(r.id(), std::memory_order_relaxed);
      }
      producing.fetch_sub(1);
    });
  }
  std::thread canceller([&] {
    std::minstd_rand rng(7);
    start.arrive_and_wait();
    while (producing.load() > 0) {
      const octo::TaskId id = recent[rng() % kRing].load(std::memory_order_relaxed);
      if (id != 0) {
        if (ex.cancel(id)) {
          cancelled_by_us.fetch_add(1, std::memory_order_relaxed);
        } else {
          refused.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  });
  for (auto& t : producers) t.join();
  canceller.join();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  ASSERT_TRUE(ex.remove_observer(terminal));

  const auto s = ex.status();
  EXPECT_EQ(s.accepted, kTotal);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.succeeded + s.dead_lettered + s.cancelled, s.accepted);
  EXPECT_EQ(s.dead_lettered, s.expired);  // nothing fails here: every dead letter expired
  EXPECT_GE(s.expired, kTotal / 16);      // at least those whose deadline had passed
  EXPECT_GE(s.cancelled, cancelled_by_us.load());
  EXPECT_LE(s.cancelled, cancelled_by_us.load() + refused.load());
  EXPECT_EQ(runs.load(), s.succeeded);  // handlers always succeed; every run counted once
  std::uint32_t not_once = 0;
  for (auto& n : terminal.terminal) not_once += n.load() != 1;
  EXPECT_EQ(not_once, 0u);
  std::uint64_t waits = 0;
  for (std::uint32_t a = 0; a < 2; ++a) waits += ex.arm_latency(a).queue_wait.count;
  EXPECT_EQ(waits, s.succeeded);  // every started task's wait was recorded
}

// pause() and resume() toggled while producers enqueue: no wake-up is lost, everything runs once
// the arm is resumed.
TEST(ExecutorStress, PauseAndResumeRacingProducersLoseNoWork) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 50'000;
  octo::ExecutorConfig cfg;
  octo::ArmConfig a;
  a.name = "a";
  a.max_parallel = 2;
  cfg.arms = {a};
  cfg.routes = {};
  cfg.threads = 2;
  octo::Executor ex(std::move(cfg));
  std::atomic<int> ran{0};
  std::atomic<int> producing{kProducers};
  std::latch start(kProducers + 1);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerProducer; ++i) {
        ASSERT_TRUE(ex.submit(0, [&ran] { ran.fetch_add(1, std::memory_order_relaxed); }));
      }
      producing.fetch_sub(1);
    });
  }
  std::thread toggler([&] {
    start.arrive_and_wait();
    for (bool pause = true; producing.load() > 0; pause = !pause) {
      if (pause) {
        ex.pause(0);
      } else {
        ex.resume(0);
      }
      std::this_thread::yield();
    }
  });
  for (auto& t : producers) t.join();
  toggler.join();
  ex.resume(0);
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), kProducers * kPerProducer);
}

// Producers push through per-thread-number queue tokens: more threads alive at once than there are
// numbers (the rest push without a token), then threads that come and go and inherit the numbers
// (and tokens) of exited ones. Every task runs once at each priority.
TEST(ExecutorStress, ProducersPastTheThreadNumbersAndReusingThemLoseNoWork) {
  constexpr int kAtOnce = static_cast<int>(octo::detail::kMaxThreadIndex) + 9;
  constexpr int kPerThread = 50;
  constexpr int kSequential = 64;
  constexpr int kPerSequential = 2'000;
  octo::ExecutorConfig cfg;
  octo::ArmConfig a;
  a.name = "a";
  a.max_parallel = 2;
  a.handler = [](const Task&, const octo::Context&) { return Outcome::success(); };
  cfg.arms = {a};
  cfg.routes = {};
  cfg.routes.add_exact("t", "a");
  cfg.threads = 2;
  octo::Executor ex(std::move(cfg));
  std::atomic<int> ran{0};
  {
    std::latch alive(kAtOnce);
    std::vector<std::thread> threads;
    for (int t = 0; t < kAtOnce; ++t) {
      threads.emplace_back([&, t] {
        alive.arrive_and_wait();  // all alive before any pushes: numbers run out
        const auto prio = t % 2 == 0 ? octo::Priority::kNormal : octo::Priority::kHigh;
        for (int i = 0; i < kPerThread; ++i) {
          ASSERT_TRUE(ex.submit(
              0, [&ran] { ran.fetch_add(1, std::memory_order_relaxed); }, prio));
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  for (int t = 0; t < kSequential; ++t) {
    std::thread([&] {
      for (int i = 0; i < kPerSequential; ++i) {
        ASSERT_TRUE(ex.enqueue(Task{.type = "t"}));
        ASSERT_TRUE(ex.submit(0, [&ran] { ran.fetch_add(1, std::memory_order_relaxed); }));
      }
    }).join();
  }
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), kAtOnce * kPerThread + kSequential * kPerSequential);
  const auto s = ex.status().arms.at(0);
  EXPECT_EQ(s.succeeded,
            static_cast<std::uint64_t>(kAtOnce * kPerThread + 2 * kSequential * kPerSequential));
}

// A task whose deadline has passed expires inside enqueue(); that enqueue racing shutdown() must
// follow the same handshake as a queued one: once shutdown() has returned, nothing more is
// accepted (every later enqueue is refused with kStopped and the accepted count stays put).
TEST(ExecutorStress, ExpiryAtEnqueueRacingShutdownAcceptsNothingAfterIt) {
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    octo::ExecutorConfig cfg;
    octo::ArmConfig a;
    a.name = "a";
    a.handler = [](const Task&, const octo::Context&) { return Outcome::success(); };
    cfg.arms = {a};
    cfg.routes = {};
    cfg.threads = 2;
    octo::Executor ex(std::move(cfg));
    std::atomic<bool> run{true};
    std::atomic<std::uint64_t> attempts{0};
    std::atomic<std::uint64_t> accepted_late{0};
    std::atomic<bool> returned{false};
    std::thread producer([&] {
      const Task past{.type = "t", .deadline = std::chrono::system_clock::now() - 1s};
      while (run.load()) {
        // Read before the call: a refusal seen only after shutdown() returned says nothing.
        const bool after = returned.load();
        const auto r = ex.enqueue(0, past);
        if (after && r) accepted_late.fetch_add(1);  // accepted after shutdown returned
        attempts.fetch_add(1);
      }
    });
    while (attempts.load() < static_cast<std::uint64_t>(round % 8)) std::this_thread::yield();
    ex.shutdown(octo::ShutdownMode::kDrain);
    const std::uint64_t accepted = ex.status().accepted;
    returned.store(true);
    // Let the producer make 50 more attempts, all after shutdown() returned.
    const std::uint64_t seen = attempts.load();
    while (attempts.load() < seen + 50) std::this_thread::yield();
    run.store(false);
    producer.join();
    const auto s = ex.status();
    ASSERT_EQ(accepted_late.load(), 0u) << "round " << round;
    ASSERT_EQ(s.accepted, accepted) << "round " << round;
    ASSERT_EQ(s.accepted, s.dead_lettered) << "round " << round;
    ASSERT_EQ(s.expired, s.dead_lettered) << "round " << round;
  }
}

// Per-key limits over 1,000,000 tasks on 1,000 keys from 4 producers: a CPU arm (limit 1 per key)
// and a blocking arm (limit 2), with failures retried, and cancels racing parking and hand-overs.
// No key ever runs past its limit, every task ends exactly once, the accounting adds up.
TEST(ExecutorStress, PerKeyLimitsHoldOverAMillionTasks) {
  constexpr int kProducers = 4;
  constexpr std::uint32_t kPerProducer = 250'000;
  constexpr std::uint32_t kTotal = kProducers * kPerProducer;
  constexpr std::uint32_t kKeys = 1000;
  constexpr std::size_t kRing = 4096;
  constexpr std::uint32_t kLimit[2] = {1, 2};
  std::vector<std::atomic<int>> running(2 * kKeys);
  std::atomic<std::uint64_t> over{0}, runs{0}, parked_seen{0};
  std::atomic<int> peak[2] = {0, 0};
  auto handler_for = [&](std::uint32_t arm) {
    return [&, arm](const Task& t, const octo::Context&) {
      const std::uint32_t index = index_of(t);
      std::atomic<int>& r = running[arm * kKeys + index % kKeys];
      const int now = r.fetch_add(1, std::memory_order_acq_rel) + 1;
      if (now > static_cast<int>(kLimit[arm])) over.fetch_add(1, std::memory_order_relaxed);
      int p = peak[arm].load(std::memory_order_relaxed);
      while (now > p && !peak[arm].compare_exchange_weak(p, now, std::memory_order_relaxed)) {
      }
      // Some runs last a scheduling quantum: long enough for another thread to reach the key.
      if (index % 64 == 0) std::this_thread::yield();
      runs.fetch_add(1, std::memory_order_relaxed);
      r.fetch_sub(1, std::memory_order_acq_rel);
      return should_fail(index, t.attempt) ? Outcome::failure("flaky") : Outcome::success();
    };
  };
  octo::ExecutorConfig cfg;
  octo::ArmConfig cpu{.name = "cpu",
                      .max_parallel = 2,
                      .max_parallel_per_key = kLimit[0],
                      .max_attempts = 3,
                      .backoff_base = 0ms,
                      .backoff_max = 0ms,
                      .handler = handler_for(0)};
  octo::ArmConfig io{.name = "io",
                     .max_parallel = 4,
                     .max_parallel_per_key = kLimit[1],
                     .blocking = true,
                     .max_attempts = 3,
                     .backoff_base = 0ms,
                     .backoff_max = 0ms,
                     .handler = handler_for(1)};
  cfg.arms = {cpu, io};
  cfg.routes = {};
  cfg.threads = 2;
  octo::Executor ex(std::move(cfg));
  TerminalCounter terminal(kTotal);
  ex.add_observer(terminal);

  std::vector<std::atomic<octo::TaskId>> recent(kRing);
  std::atomic<int> producing{kProducers};
  std::atomic<std::uint64_t> cancelled_by_us{0};
  // Refused cancels include running tasks asked to stop: one that then fails counts as
  // cancelled (cancel()'s contract), so they bound the status's count from above.
  std::atomic<std::uint64_t> refused{0};
  std::latch start(kProducers + 1);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      start.arrive_and_wait();
      for (std::uint32_t i = 0; i < kPerProducer; ++i) {
        const std::uint32_t index = static_cast<std::uint32_t>(p) * kPerProducer + i;
        const auto r = ex.enqueue(index % 2, Task{.type = "t",
                                                  .payload = std::to_string(index),
                                                  .key = "k" + std::to_string(index % kKeys)});
        ASSERT_TRUE(r) << octo::to_string(r.error());
        recent[index % kRing].store(r.id(), std::memory_order_relaxed);
      }
      producing.fetch_sub(1);
    });
  }
  std::thread canceller([&] {
    std::minstd_rand rng(11);
    start.arrive_and_wait();
    while (producing.load() > 0) {
      const octo::TaskId id = recent[rng() % kRing].load(std::memory_order_relaxed);
      if (id != 0) {
        if (ex.cancel(id)) {
          cancelled_by_us.fetch_add(1, std::memory_order_relaxed);
        } else {
          refused.fetch_add(1, std::memory_order_relaxed);
        }
      }
      for (std::uint32_t a = 0; a < 2; ++a) {
        if (ex.arm_status(a).waiting_on_key != 0) parked_seen.fetch_add(1);
      }
    }
  });
  for (auto& t : producers) t.join();
  canceller.join();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  ASSERT_TRUE(ex.remove_observer(terminal));

  EXPECT_EQ(over.load(), 0u) << "a key ran past its limit";
  EXPECT_LE(peak[0].load(), 1);
  EXPECT_LE(peak[1].load(), 2);
  const auto s = ex.status();
  EXPECT_EQ(s.accepted, kTotal);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.succeeded + s.dead_lettered + s.cancelled, s.accepted);
  EXPECT_GE(s.cancelled, cancelled_by_us.load());
  EXPECT_LE(s.cancelled, cancelled_by_us.load() + refused.load());
  EXPECT_EQ(runs.load(), s.succeeded + s.failed);
  for (std::uint32_t a = 0; a < 2; ++a) EXPECT_EQ(ex.arm_status(a).waiting_on_key, 0u);
  std::uint32_t not_once = 0;
  for (auto& n : terminal.terminal) not_once += n.load() != 1;
  EXPECT_EQ(not_once, 0u);
  std::printf("keyed stress: %llu status reads saw parked tasks, peaks %d and %d\n",
              static_cast<unsigned long long>(parked_seen.load()), peak[0].load(), peak[1].load());
}

}  // namespace

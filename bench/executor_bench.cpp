// bench_executor: the Octopus executor beside the pools a user would pick instead, same run.
//
// Every benchmark submits kTasks tasks from one producer thread and waits until all have run.
// Peers at their best on this machine (see docs/benchmarks.md): tbb::task_arena(2, 0) with
// global_control allowing 2 workers; tbb::task_group on the calling thread plus one worker;
// boost::asio::thread_pool(2); a mutex + condition_variable pool with 2 threads. The executor gets
// one arm with max_parallel 2 on a 2-thread arena.
#include <benchmark/benchmark.h>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "octo/executor.hpp"
#include "octo/windowed_histogram.hpp"

namespace {

constexpr std::int64_t kTasks = 1'000'000;
constexpr int kWorkers = 2;

// Completion count without a shared hot line: each worker bumps its own padded slot.
struct alignas(64) Slot {
  std::atomic<std::uint64_t> n{0};
};
Slot g_slots[128];
std::atomic<int> g_next_slot{0};

inline void task_done() noexcept {
  thread_local Slot* slot = &g_slots[g_next_slot.fetch_add(1) % 128];
  // Relaxed load + store: only this thread writes its slot.
  slot->n.store(slot->n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

std::uint64_t completed() noexcept {
  std::uint64_t sum = 0;
  for (auto& s : g_slots) sum += s.n.load(std::memory_order_relaxed);
  return sum;
}

void wait_for_count(std::uint64_t target) {
  while (completed() < target) std::this_thread::yield();
}

inline void spin_for(std::chrono::nanoseconds d) noexcept {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

struct Noop {
  void operator()() const noexcept { task_done(); }
};
struct OneMicro {
  void operator()() const noexcept {
    spin_for(std::chrono::microseconds(1));
    task_done();
  }
};

// --- the pools -----------------------------------------------------------------------------

// time_one_in: 1 times every task (the default); the *_Sampled benchmarks time one in 16.
octo::ExecutorConfig octo_config(std::uint32_t time_one_in = 1) {
  octo::ExecutorConfig cfg;
  cfg.time_one_in = time_one_in;
  octo::ArmConfig arm;
  arm.name = "bench";
  arm.max_parallel = kWorkers;
  arm.capacity = 4 * kTasks;
  cfg.arms = {arm};
  cfg.routes = octo::RoutingTable().add_prefix("bench.", "bench");
  cfg.threads = kWorkers;
  return cfg;
}

class MutexPool {
 public:
  explicit MutexPool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
  }
  ~MutexPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      auto f = std::move(q_.front());
      q_.pop_front();
      lock.unlock();
      f();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// --- throughput: kTasks from one producer, then wait ------------------------------------------

template <class Body, std::uint32_t kTimeOneIn = 1>
void BM_Octopus_Submit(benchmark::State& state) {
  octo::Executor ex(octo_config(kTimeOneIn));
  for (auto _ : state) {
    const auto target = completed() + kTasks;
    for (std::int64_t i = 0; i < kTasks; ++i) {
      while (!ex.submit(0, Body{})) {
      }
    }
    wait_for_count(target);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

template <class Body, std::uint32_t kTimeOneIn = 1>
void BM_Octopus_Enqueue(benchmark::State& state) {
  auto cfg = octo_config(kTimeOneIn);
  cfg.arms[0].handler = [](const octo::Task&, const octo::Context&) {
    Body{}();
    return octo::Outcome::success();
  };
  octo::Executor ex(std::move(cfg));
  for (auto _ : state) {
    const auto target = completed() + kTasks;
    for (std::int64_t i = 0; i < kTasks; ++i) {
      while (!ex.enqueue(octo::Task{.type = "bench.noop"})) {
      }
    }
    wait_for_count(target);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

// Typed no-op tasks over 1,000 keys, round the keys in turn: on an arm with a per-key limit of 1
// (kLimited) and, as the baseline of the same run, on the same arm without one (the tasks carry
// the same keys, so the difference is the limiter alone).
template <bool kLimited>
void BM_Octopus_Enqueue_Keyed(benchmark::State& state) {
  auto cfg = octo_config();
  cfg.arms[0].handler = [](const octo::Task&, const octo::Context&) {
    task_done();
    return octo::Outcome::success();
  };
  if (kLimited) cfg.arms[0].max_parallel_per_key = 1;
  octo::Executor ex(std::move(cfg));
  std::vector<std::string> keys;
  for (int k = 0; k < 1000; ++k) keys.push_back("agent-" + std::to_string(k));
  for (auto _ : state) {
    const auto target = completed() + kTasks;
    for (std::int64_t i = 0; i < kTasks; ++i) {
      while (!ex.enqueue(octo::Task{.type = "bench.noop", .key = keys[i % 1000]})) {
      }
    }
    wait_for_count(target);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}
BENCHMARK_TEMPLATE(BM_Octopus_Enqueue_Keyed, true)
    ->Name("BM_Octopus_Enqueue_KeyedNoop")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Octopus_Enqueue_Keyed, false)
    ->Name("BM_Octopus_Enqueue_KeyedNoopUnlimited")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Typed no-op tasks, each with its own key: unique (kUnique, every claim succeeds and is replaced
// once its task has finished) and, as the baseline of the same run, the same key string carried
// as the payload instead, so the difference is the claim alone.
template <bool kUnique>
void BM_Octopus_Enqueue_Unique(benchmark::State& state) {
  auto cfg = octo_config();
  cfg.arms[0].handler = [](const octo::Task&, const octo::Context&) {
    task_done();
    return octo::Outcome::success();
  };
  octo::Executor ex(std::move(cfg));
  std::vector<std::string> keys;
  keys.reserve(kTasks);
  for (std::int64_t k = 0; k < kTasks; ++k) keys.push_back("deploy:svc-" + std::to_string(k));
  for (auto _ : state) {
    const auto target = completed() + kTasks;
    for (std::int64_t i = 0; i < kTasks; ++i) {
      const std::string& key = keys[static_cast<std::size_t>(i)];
      auto task = [&key] {
        octo::Task t{.type = "bench.noop"};
        if constexpr (kUnique) {
          t.unique = octo::Unique{.key = key, .ttl = std::chrono::hours(1)};
        } else {
          t.payload = key;
        }
        return t;
      };
      while (!ex.enqueue(task())) {  // a refused task is gone: a new one for each try
      }
    }
    wait_for_count(target);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}
BENCHMARK_TEMPLATE(BM_Octopus_Enqueue_Unique, true)
    ->Name("BM_Octopus_Enqueue_UniqueNoop")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Octopus_Enqueue_Unique, false)
    ->Name("BM_Octopus_Enqueue_UniqueNoopBaseline")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

template <class Body>
void BM_TbbArena_Enqueue(benchmark::State& state) {
  tbb::global_control workers(tbb::global_control::max_allowed_parallelism, kWorkers + 1);
  tbb::task_arena arena(kWorkers, 0);
  for (auto _ : state) {
    const auto target = completed() + kTasks;
    for (std::int64_t i = 0; i < kTasks; ++i) arena.enqueue(Body{});
    wait_for_count(target);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

template <class Body>
void BM_TbbTaskGroup(benchmark::State& state) {
  tbb::global_control workers(tbb::global_control::max_allowed_parallelism, kWorkers);
  for (auto _ : state) {
    tbb::task_group tg;
    for (std::int64_t i = 0; i < kTasks; ++i) tg.run(Body{});
    tg.wait();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

template <class Body>
void BM_AsioThreadPool(benchmark::State& state) {
  boost::asio::thread_pool pool(kWorkers);
  for (auto _ : state) {
    const auto target = completed() + kTasks;
    for (std::int64_t i = 0; i < kTasks; ++i) boost::asio::post(pool, Body{});
    wait_for_count(target);
  }
  pool.join();
  state.SetItemsProcessed(state.iterations() * kTasks);
}

template <class Body>
void BM_MutexPool(benchmark::State& state) {
  MutexPool pool(kWorkers);
  for (auto _ : state) {
    const auto target = completed() + kTasks;
    for (std::int64_t i = 0; i < kTasks; ++i) pool.post(Body{});
    wait_for_count(target);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

#define OCTO_THROUGHPUT(fn)            \
  BENCHMARK_TEMPLATE(fn, Noop)         \
      ->Name(#fn "_Noop")              \
      ->Iterations(5)                  \
      ->UseRealTime()                  \
      ->Unit(benchmark::kMillisecond); \
  BENCHMARK_TEMPLATE(fn, OneMicro)     \
      ->Name(#fn "_1us")               \
      ->Iterations(3)                  \
      ->UseRealTime()                  \
      ->Unit(benchmark::kMillisecond)

// Names as the project documents them: BM_Octopus_Submit_Noop, BM_TbbArena_Enqueue_Noop, ...
OCTO_THROUGHPUT(BM_Octopus_Submit);
OCTO_THROUGHPUT(BM_Octopus_Enqueue);
// The same with time_one_in = 16 (what the executor timed before every task was).
BENCHMARK_TEMPLATE(BM_Octopus_Submit, Noop, 16)
    ->Name("BM_Octopus_Submit_NoopSampled")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Octopus_Enqueue, Noop, 16)
    ->Name("BM_Octopus_Enqueue_NoopSampled")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
// And with timing all but off (one task in 2^31): beside the two above, what the clock reads of
// every-task timing cost a no-op task in the same binary.
BENCHMARK_TEMPLATE(BM_Octopus_Submit, Noop, 1u << 31)
    ->Name("BM_Octopus_Submit_NoopUntimed")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Octopus_Enqueue, Noop, 1u << 31)
    ->Name("BM_Octopus_Enqueue_NoopUntimed")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
OCTO_THROUGHPUT(BM_TbbArena_Enqueue);
OCTO_THROUGHPUT(BM_TbbTaskGroup);
OCTO_THROUGHPUT(BM_AsioThreadPool);
OCTO_THROUGHPUT(BM_MutexPool);

// --- latency: every sample kept -------------------------------------------------------------
// Each task writes its own enqueue-to-start time into a preallocated slot (no shared line, no
// histogram bucket); after the run the samples are sorted and p50 / p99 / p99.9 read off at
// their exact ranks (reported to 3 significant digits in microseconds).

struct Samples {
  std::vector<std::int64_t> ns;
  explicit Samples(std::size_t n) : ns(n, -1) {}
  // The q-quantile in microseconds (rank ceil(q * n), as a sorted list has it).
  static double quantile_us(const std::vector<std::int64_t>& sorted, double q) {
    if (sorted.empty()) return 0;
    const auto rank = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))));
    return static_cast<double>(sorted[std::min(rank, sorted.size()) - 1]) / 1e3;
  }
  static double three_digits(double v) {
    if (v <= 0) return v;
    const double scale = std::pow(10.0, 2 - static_cast<int>(std::floor(std::log10(v))));
    return std::round(v * scale) / scale;
  }
  void report(benchmark::State& state) const {
    std::vector<std::int64_t> sorted;
    sorted.reserve(ns.size());
    for (const std::int64_t v : ns)
      if (v >= 0) sorted.push_back(v);
    std::sort(sorted.begin(), sorted.end());
    state.counters["p50_us"] = three_digits(quantile_us(sorted, 0.50));
    state.counters["p99_us"] = three_digits(quantile_us(sorted, 0.99));
    state.counters["p999_us"] = three_digits(quantile_us(sorted, 0.999));
    state.counters["max_us"] = three_digits(sorted.empty() ? 0 : sorted.back() / 1e3);
    state.counters["samples"] = static_cast<double>(sorted.size());
  }
};

// CPU time of the whole process (every thread) or of the calling thread.
double cpu_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Posts one 1 us task that writes its enqueue-to-start time to `slot`.
template <class Post>
void post_timed(Post& post, std::int64_t* slot) {
  const auto t0 = std::chrono::steady_clock::now();
  post([t0, slot] {
    *slot = (std::chrono::steady_clock::now() - t0).count();
    spin_for(std::chrono::microseconds(1));
    task_done();
  });
}

// Below saturation: 1 us tasks paced at about half of what the workers can run. The pacing
// producer spins on one of the two cores, leaving about one core (~1 M/s of 1 us tasks) to the
// workers; one task every 2 us offers about half of that.
constexpr std::int64_t kPacedTasks = 200'000;
constexpr auto kPacedGap = std::chrono::nanoseconds(2'000);

template <class Post>
void paced_latency(benchmark::State& state, Post post) {
  Samples samples(static_cast<std::size_t>(kPacedTasks * state.max_iterations));
  std::size_t at = 0;
  for (auto _ : state) {
    const auto target = completed() + kPacedTasks;
    auto next = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < kPacedTasks; ++i) {
      while (std::chrono::steady_clock::now() < next) {
      }
      post_timed(post, &samples.ns[at++]);
      next += kPacedGap;
    }
    wait_for_count(target);
  }
  samples.report(state);
  state.SetItemsProcessed(state.iterations() * kPacedTasks);
}

// Low load: one 1 us task every 50 us, so the workers go idle between tasks (and a pool that
// parks its threads must wake one for each); sparse load: one every 500 us, longer than a spin
// before sleeping usually lasts. The producer sleeps between tasks (absolute deadlines, 1 ns
// timer slack); the CPU time per task reported is the process's less the producer's own, so the
// pool's cost of waiting and waking: spinning workers show up there.
template <class Post>
void gapped_latency(benchmark::State& state, Post post, std::chrono::nanoseconds gap,
                    std::int64_t tasks) {
  Samples samples(static_cast<std::size_t>(tasks * state.max_iterations));
  std::size_t at = 0;
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  double cpu = 0, producer = 0;
  for (auto _ : state) {
    const auto target = completed() + tasks;
    const double cpu0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    const double producer0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    timespec next{};
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (std::int64_t i = 0; i < tasks; ++i) {
      next.tv_nsec += gap.count();
      while (next.tv_nsec >= 1'000'000'000) {
        next.tv_nsec -= 1'000'000'000;
        ++next.tv_sec;
      }
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr) == EINTR) {
      }
      post_timed(post, &samples.ns[at++]);
    }
    wait_for_count(target);
    producer += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - producer0;
    cpu += cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  }
  samples.report(state);
  const auto n = static_cast<double>(state.iterations() * tasks);
  state.counters["cpu_us_per_task"] = Samples::three_digits((cpu - producer) * 1e6 / n);
  state.counters["producer_cpu_us_per_task"] = Samples::three_digits(producer * 1e6 / n);
  state.SetItemsProcessed(state.iterations() * tasks);
}

// The pools, for both latency loads.
template <class Load>
void octopus_latency(benchmark::State& state, Load load) {
  octo::Executor ex(octo_config());
  load(state, [&](auto&& f) {
    while (!ex.submit(0, f)) {
    }
  });
}
template <class Load>
void arena_latency(benchmark::State& state, Load load) {
  tbb::global_control workers(tbb::global_control::max_allowed_parallelism, kWorkers + 1);
  tbb::task_arena arena(kWorkers, 0);
  load(state, [&](auto&& f) { arena.enqueue(f); });
}
template <class Load>
void asio_latency(benchmark::State& state, Load load) {
  boost::asio::thread_pool pool(kWorkers);
  load(state, [&](auto&& f) { boost::asio::post(pool, f); });
  pool.join();
}
template <class Load>
void mutex_latency(benchmark::State& state, Load load) {
  MutexPool pool(kWorkers);
  load(state, [&](auto&& f) { pool.post(f); });
}

struct Paced {
  template <class Post>
  void operator()(benchmark::State& state, Post post) const {
    paced_latency(state, post);
  }
};
struct Idle {
  template <class Post>
  void operator()(benchmark::State& state, Post post) const {
    gapped_latency(state, post, std::chrono::microseconds(50), 20'000);
  }
};
struct Sparse {
  template <class Post>
  void operator()(benchmark::State& state, Post post) const {
    gapped_latency(state, post, std::chrono::microseconds(500), 2'000);
  }
};

void BM_Octopus_Latency(benchmark::State& s) { octopus_latency(s, Paced{}); }
void BM_TbbArena_Latency(benchmark::State& s) { arena_latency(s, Paced{}); }
void BM_AsioThreadPool_Latency(benchmark::State& s) { asio_latency(s, Paced{}); }
void BM_MutexPool_Latency(benchmark::State& s) { mutex_latency(s, Paced{}); }
void BM_Octopus_IdleLatency(benchmark::State& s) { octopus_latency(s, Idle{}); }
void BM_TbbArena_IdleLatency(benchmark::State& s) { arena_latency(s, Idle{}); }
void BM_AsioThreadPool_IdleLatency(benchmark::State& s) { asio_latency(s, Idle{}); }
void BM_MutexPool_IdleLatency(benchmark::State& s) { mutex_latency(s, Idle{}); }
void BM_Octopus_SparseLatency(benchmark::State& s) { octopus_latency(s, Sparse{}); }
void BM_TbbArena_SparseLatency(benchmark::State& s) { arena_latency(s, Sparse{}); }
void BM_AsioThreadPool_SparseLatency(benchmark::State& s) { asio_latency(s, Sparse{}); }
void BM_MutexPool_SparseLatency(benchmark::State& s) { mutex_latency(s, Sparse{}); }
#define OCTO_LATENCY(fn) BENCHMARK(fn)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond)
OCTO_LATENCY(BM_Octopus_Latency);
OCTO_LATENCY(BM_TbbArena_Latency);
OCTO_LATENCY(BM_AsioThreadPool_Latency);
OCTO_LATENCY(BM_MutexPool_Latency);
OCTO_LATENCY(BM_Octopus_IdleLatency);
OCTO_LATENCY(BM_TbbArena_IdleLatency);
OCTO_LATENCY(BM_AsioThreadPool_IdleLatency);
OCTO_LATENCY(BM_MutexPool_IdleLatency);
OCTO_LATENCY(BM_Octopus_SparseLatency);
OCTO_LATENCY(BM_TbbArena_SparseLatency);
OCTO_LATENCY(BM_AsioThreadPool_SparseLatency);
OCTO_LATENCY(BM_MutexPool_SparseLatency);

// --- the producer's own cost: each enqueue / submit call timed on the calling thread ----------
// The workers are kept busy by the very tasks being submitted (1 us each, faster than they run),
// so the queue grows and the call never finds an idle worker to hand to. Each call is timed with
// two clock reads (~20 ns of the figure is the reads: the same for every pool).
constexpr std::int64_t kTimedCalls = 200'000;

template <class Post>
void producer_cost(benchmark::State& state, Post post) {
  Samples samples(static_cast<std::size_t>(kTimedCalls * state.max_iterations));
  std::size_t at = 0;
  for (auto _ : state) {
    const auto target = completed() + kTimedCalls;
    for (std::int64_t i = 0; i < kTimedCalls; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      post(OneMicro{});
      samples.ns[at++] = (std::chrono::steady_clock::now() - t0).count();
    }
    wait_for_count(target);
  }
  samples.report(state);
  state.SetItemsProcessed(state.iterations() * kTimedCalls);
}

void BM_Octopus_SubmitCost(benchmark::State& state) {
  octo::Executor ex(octo_config());
  producer_cost(state, [&](auto&& f) {
    while (!ex.submit(0, f)) {
    }
  });
}
void BM_Octopus_EnqueueCost(benchmark::State& state) {
  auto cfg = octo_config();
  cfg.arms[0].handler = [](const octo::Task&, const octo::Context&) {
    OneMicro{}();
    return octo::Outcome::success();
  };
  octo::Executor ex(std::move(cfg));
  producer_cost(state, [&](auto&&) {
    while (!ex.enqueue(octo::Task{.type = "bench.noop"})) {
    }
  });
}
void BM_TbbArena_EnqueueCost(benchmark::State& state) {
  tbb::global_control workers(tbb::global_control::max_allowed_parallelism, kWorkers + 1);
  tbb::task_arena arena(kWorkers, 0);
  producer_cost(state, [&](auto&& f) { arena.enqueue(f); });
}
void BM_AsioThreadPool_PostCost(benchmark::State& state) {
  boost::asio::thread_pool pool(kWorkers);
  producer_cost(state, [&](auto&& f) { boost::asio::post(pool, f); });
  pool.join();
}
OCTO_LATENCY(BM_Octopus_SubmitCost);
OCTO_LATENCY(BM_Octopus_EnqueueCost);
OCTO_LATENCY(BM_TbbArena_EnqueueCost);
OCTO_LATENCY(BM_AsioThreadPool_PostCost);

// --- blocking isolation: how long a batch task waits to start while two deploy handlers block ---
// The default ExecutorConfig (the machine's cores, the default arms). Arg 1: both of deploy's
// slots are held by handlers blocked on a latch for the whole run; arg 0: nothing is blocked.
// Each iteration times one submit to the batch arm until its callable starts.
void BM_Blocking_StartDelay(benchmark::State& state) {
  octo::Executor ex;
  const bool blocked = state.range(0) != 0;
  std::atomic<bool> release{false};
  std::atomic<int> holding{0};
  if (blocked) {
    for (int i = 0; i < 2; ++i) {
      static_cast<void>(ex.submit(*ex.arm_id("deploy"), [&] {
        holding.fetch_add(1);
        while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }));
    }
    while (holding.load() < 2) std::this_thread::yield();
  }
  const octo::ArmId batch = *ex.arm_id("batch");
  octo::WindowedHistogram delay({.window = std::chrono::hours(1)});
  for (auto _ : state) {
    std::atomic<std::int64_t> started{0};
    const auto t0 = std::chrono::steady_clock::now();
    while (!ex.submit(batch, [&started] {
      started.store(std::chrono::steady_clock::now().time_since_epoch().count());
    })) {
    }
    while (started.load() == 0) std::this_thread::yield();
    const auto ns = started.load() - t0.time_since_epoch().count();
    delay.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, ns)));
    state.SetIterationTime(static_cast<double>(ns) / 1e9);
  }
  release.store(true);
  const auto s = delay.total();
  state.counters["p50_us"] = static_cast<double>(s.quantile(0.50)) / 1e3;
  state.counters["p99_us"] = static_cast<double>(s.quantile(0.99)) / 1e3;
  state.counters["max_us"] = static_cast<double>(s.max()) / 1e3;
}
BENCHMARK(BM_Blocking_StartDelay)
    ->Arg(0)
    ->Arg(1)
    ->Iterations(2'000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

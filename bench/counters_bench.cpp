// bench_counters: what record_request() costs, beside the counters a user would write instead.
//
// Every recording benchmark runs with 1 and 2 threads; the figure to read is CPU time per
// operation per thread. Baselines in the same binary: one shared relaxed fetch_add, a padded
// per-thread slot with fetch_add, tbb::enumerable_thread_specific, a mutex, and a shared ring of
// atomic buckets that reads steady_clock on every call (the usual sliding-window design).
//
// The latency histogram (octo::WindowedHistogram) beside the same bucket layout guarded by a
// mutex and kept in shared atomics, and the clocks that time tasks: octo::CycleClock against
// steady_clock.
#include <benchmark/benchmark.h>

#include <oneapi/tbb/enumerable_thread_specific.h>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "counting_loop.hpp"
#include "halo/triggers.hpp"
#include "octo/cycle_clock.hpp"
#include "octo/window_counter.hpp"
#include "octo/windowed_histogram.hpp"

namespace {

octo::WindowCounter& bench_counter() {
  static octo::WindowCounter* const c = new octo::WindowCounter(octo::Ticker::shared());
  return *c;
}

void BM_WindowCounter_Record(benchmark::State& state) {
  auto& c = bench_counter();
  for (auto _ : state) c.record();
}
BENCHMARK(BM_WindowCounter_Record)->Threads(1)->Threads(2);

// The public free function, with a loop registered so that it really counts.
void BM_RecordRequest(benchmark::State& state) {
  halo_bench::register_counting_loop();
  for (auto _ : state) halo::record_request();
}
BENCHMARK(BM_RecordRequest)->Threads(1)->Threads(2);

// The floor: a thread-local, non-atomic increment kept in memory.
void BM_ThreadLocal_Increment(benchmark::State& state) {
  thread_local std::uint64_t n = 0;
  for (auto _ : state) {
    ++n;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_ThreadLocal_Increment)->Threads(1)->Threads(2);

std::atomic<std::uint64_t> g_shared{0};
void BM_SharedAtomic_FetchAdd(benchmark::State& state) {
  for (auto _ : state) g_shared.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_SharedAtomic_FetchAdd)->Threads(1)->Threads(2);

struct alignas(64) PaddedSlot {
  std::atomic<std::uint64_t> n{0};
};
std::array<PaddedSlot, 64> g_padded;
void BM_PaddedAtomic_FetchAdd(benchmark::State& state) {
  auto& slot = g_padded[static_cast<std::size_t>(state.thread_index())].n;
  for (auto _ : state) slot.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_PaddedAtomic_FetchAdd)->Threads(1)->Threads(2);

tbb::enumerable_thread_specific<std::uint64_t> g_ets(0);
void BM_TbbEts_Increment(benchmark::State& state) {
  for (auto _ : state) {
    ++g_ets.local();
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_TbbEts_Increment)->Threads(1)->Threads(2);

std::mutex g_mu;
std::uint64_t g_locked = 0;
void BM_Mutex_Increment(benchmark::State& state) {
  for (auto _ : state) {
    std::lock_guard lock(g_mu);
    ++g_locked;
  }
}
BENCHMARK(BM_Mutex_Increment)->Threads(1)->Threads(2);

// The common sliding window: one ring of (stamp, count) buckets shared by all threads, with the
// bucket chosen from steady_clock on every call.
struct SharedRing {
  static constexpr std::int64_t kBucketNs = 100'000'000;
  static constexpr std::size_t kBuckets = 128;
  struct alignas(16) Bucket {
    std::atomic<std::int64_t> stamp{0};
    std::atomic<std::uint64_t> count{0};
  };
  std::array<Bucket, kBuckets> ring;
  void record() noexcept {
    const std::int64_t b = std::chrono::steady_clock::now().time_since_epoch().count() / kBucketNs;
    Bucket& bucket = ring[static_cast<std::size_t>(b) % kBuckets];
    std::int64_t s = bucket.stamp.load(std::memory_order_relaxed);
    if (s != b && bucket.stamp.compare_exchange_strong(s, b, std::memory_order_relaxed)) {
      bucket.count.store(0, std::memory_order_relaxed);
    }
    bucket.count.fetch_add(1, std::memory_order_relaxed);
  }
};
SharedRing g_ring;
void BM_SharedRing_SteadyClock(benchmark::State& state) {
  for (auto _ : state) g_ring.record();
}
BENCHMARK(BM_SharedRing_SteadyClock)->Threads(1)->Threads(2);

// Reading: sum() over a counter that `shards` threads have recorded into (they have exited; their
// shards stay counted).
void BM_WindowCounter_Sum(benchmark::State& state) {
  octo::WindowCounter c(octo::Ticker::shared());
  const auto shards = static_cast<int>(state.range(0));
  // Threads that record one after another would each adopt the previous one's shard: keep them
  // all alive until every one has recorded, so the counter really holds `shards` shards.
  std::vector<std::thread> threads;
  std::atomic<int> arrived{0};
  for (int i = 0; i < shards; ++i) {
    threads.emplace_back([&] {
      c.record();
      arrived.fetch_add(1);
      while (arrived.load() < shards) std::this_thread::yield();
    });
  }
  for (auto& t : threads) t.join();
  for (auto _ : state) benchmark::DoNotOptimize(c.sum());
  state.counters["shards"] = static_cast<double>(c.shard_count());
}
BENCHMARK(BM_WindowCounter_Sum)->Arg(2)->Arg(16)->Arg(64);

// --- latency histograms: every thread records values spread over a few decades -------------

// 64 values from 1 us to about 10 ms (task-like durations in ns), cycled so records hit several
// buckets as real ones do.
const std::array<std::uint64_t, 64>& sample_values() {
  static const auto v = [] {
    std::array<std::uint64_t, 64> a{};
    double x = 1'000;
    for (auto& e : a) {
      e = static_cast<std::uint64_t>(x);
      x *= 1.155;
    }
    return a;
  }();
  return v;
}

void BM_WindowedHistogram_Record(benchmark::State& state) {
  static octo::WindowedHistogram* const h = new octo::WindowedHistogram();
  const auto& v = sample_values();
  std::size_t i = 0;
  for (auto _ : state) h->record(v[i++ & 63]);
}
BENCHMARK(BM_WindowedHistogram_Record)->Threads(1)->Threads(2);

// The same through a Writer taken once (the executor's drainers take one per batch).
void BM_WindowedHistogram_Writer(benchmark::State& state) {
  static octo::WindowedHistogram* const h = new octo::WindowedHistogram();
  const auto& v = sample_values();
  auto w = h->writer();
  std::size_t i = 0;
  for (auto _ : state) w.record(v[i++ & 63]);
}
BENCHMARK(BM_WindowedHistogram_Writer)->Threads(1)->Threads(2);

// The same layout, one shared array: a relaxed fetch_add on the bucket and on the sum.
struct SharedAtomicHistogram {
  std::array<std::atomic<std::uint64_t>, octo::HistogramBuckets::kCount> counts{};
  std::atomic<std::uint64_t> sum{0};
  void record(std::uint64_t v) noexcept {
    counts[static_cast<std::size_t>(octo::HistogramBuckets::bucket_of(v))].fetch_add(
        1, std::memory_order_relaxed);
    sum.fetch_add(v, std::memory_order_relaxed);
  }
};
void BM_SharedAtomicHistogram_Record(benchmark::State& state) {
  static auto* const h = new SharedAtomicHistogram();
  const auto& v = sample_values();
  std::size_t i = 0;
  for (auto _ : state) h->record(v[i++ & 63]);
}
BENCHMARK(BM_SharedAtomicHistogram_Record)->Threads(1)->Threads(2);

// The same layout behind one mutex.
struct MutexHistogram {
  std::mutex mu;
  std::array<std::uint64_t, octo::HistogramBuckets::kCount> counts{};
  std::uint64_t sum = 0;
  void record(std::uint64_t v) {
    std::lock_guard lock(mu);
    ++counts[static_cast<std::size_t>(octo::HistogramBuckets::bucket_of(v))];
    sum += v;
  }
};
void BM_MutexHistogram_Record(benchmark::State& state) {
  static auto* const h = new MutexHistogram();
  const auto& v = sample_values();
  std::size_t i = 0;
  for (auto _ : state) h->record(v[i++ & 63]);
}
BENCHMARK(BM_MutexHistogram_Record)->Threads(1)->Threads(2);

// --- the clocks -------------------------------------------------------------------------------

void BM_CycleClock_Now(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(octo::CycleClock::now());
  state.SetLabel(std::string(octo::CycleClock::source()));
}
BENCHMARK(BM_CycleClock_Now)->Threads(1)->Threads(2);

void BM_SteadyClock_Now(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(std::chrono::steady_clock::now());
}
BENCHMARK(BM_SteadyClock_Now)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();

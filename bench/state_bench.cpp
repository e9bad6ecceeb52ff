// bench_state: what a service pays on its request path to feed HALO, per request, beside the
// counters it could write instead. 20 endpoints, taken in turn; 1 and 2 threads; the figure to
// read is CPU time per call per thread.
//
//   BM_Endpoint_ByPath       state.endpoint(path).record(latency_ms, failed): the form state.hpp's
//                            example shows (a lookup by path on every call)
//   BM_Endpoint_Cached       the same through an EndpointCounters& taken once
//   BM_RecordRequest         halo::record_request() with a loop registered (the floor HALO sets)
//   BM_MutexSummary          a per-endpoint histogram behind a mutex (a Prometheus Summary's
//                            observe() locks likewise)
//   BM_SharedAtomicHistogram a per-endpoint histogram in shared atomics
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "counting_loop.hpp"
#include "halo/state.hpp"
#include "halo/triggers.hpp"
#include "octo/windowed_histogram.hpp"

namespace {

constexpr std::size_t kEndpoints = 20;

const std::vector<std::string>& paths() {
  static const auto* const p = [] {
    auto* v = new std::vector<std::string>;
    for (std::size_t i = 0; i < kEndpoints; ++i)
      v->push_back("/api/v1/resource-" + std::to_string(i));
    return v;
  }();
  return *p;
}

halo::SystemState& bench_state() {
  static halo::SystemState* const s = new halo::SystemState();
  return *s;
}

// Latencies cycling through a few buckets, as a service's would.
double latency_of(std::size_t i) noexcept { return 0.5 + static_cast<double>(i % 7) * 3.25; }

void BM_Endpoint_ByPath(benchmark::State& state) {
  auto& s = bench_state();
  const auto& p = paths();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    s.endpoint(p[i % kEndpoints]).record(latency_of(i), (i & 63) == 0);
    ++i;
  }
}
BENCHMARK(BM_Endpoint_ByPath)->Threads(1)->Threads(2);

void BM_Endpoint_Cached(benchmark::State& state) {
  auto& s = bench_state();
  std::array<halo::EndpointCounters*, kEndpoints> c{};
  for (std::size_t k = 0; k < kEndpoints; ++k) c[k] = &s.endpoint(paths()[k]);
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    c[i % kEndpoints]->record(latency_of(i), (i & 63) == 0);
    ++i;
  }
}
BENCHMARK(BM_Endpoint_Cached)->Threads(1)->Threads(2);

void BM_RecordRequest(benchmark::State& state) {
  halo_bench::register_counting_loop();
  for (auto _ : state) halo::record_request();
}
BENCHMARK(BM_RecordRequest)->Threads(1)->Threads(2);

std::uint64_t micros(double ms) noexcept { return static_cast<std::uint64_t>(ms * 1000.0); }

struct MutexSummary {
  std::mutex mu;
  std::array<std::uint64_t, octo::HistogramBuckets::kCount> counts{};
  std::uint64_t n = 0, errors = 0, sum = 0;
  void observe(double ms, bool error) {
    std::lock_guard lock(mu);
    ++counts[static_cast<std::size_t>(octo::HistogramBuckets::bucket_of(micros(ms)))];
    ++n;
    errors += error ? 1 : 0;
    sum += micros(ms);
  }
};
void BM_MutexSummary(benchmark::State& state) {
  static auto* const h = new std::array<MutexSummary, kEndpoints>();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    (*h)[i % kEndpoints].observe(latency_of(i), (i & 63) == 0);
    ++i;
  }
}
BENCHMARK(BM_MutexSummary)->Threads(1)->Threads(2);

struct SharedAtomicHistogram {
  std::array<std::atomic<std::uint64_t>, octo::HistogramBuckets::kCount> counts{};
  std::atomic<std::uint64_t> n{0}, errors{0}, sum{0};
  void observe(double ms, bool error) noexcept {
    counts[static_cast<std::size_t>(octo::HistogramBuckets::bucket_of(micros(ms)))].fetch_add(
        1, std::memory_order_relaxed);
    n.fetch_add(1, std::memory_order_relaxed);
    if (error) errors.fetch_add(1, std::memory_order_relaxed);
    sum.fetch_add(micros(ms), std::memory_order_relaxed);
  }
};
void BM_SharedAtomicHistogram(benchmark::State& state) {
  static auto* const h = new std::array<SharedAtomicHistogram, kEndpoints>();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    (*h)[i % kEndpoints].observe(latency_of(i), (i & 63) == 0);
    ++i;
  }
}
BENCHMARK(BM_SharedAtomicHistogram)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();

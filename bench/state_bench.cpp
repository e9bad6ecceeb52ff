// bench_state: what a service pays on its request path to feed HALO, per request, beside the
// counters it could write instead. 20 endpoints, taken in turn; 1 and 2 threads; the figure to
// read is CPU time per call per thread. Every form reads its arguments (endpoint, latency,
// failed) from one precomputed table, so the loop adds the same few loads to each.
//
//   BM_Endpoint_ByPath       state.endpoint(path).record(latency_ms, failed): a lookup by path
//                            on every call
//   BM_Endpoint_Cached       the same through the handle, an EndpointCounters& taken once
//   BM_Endpoint_Duration     the handle's record(std::chrono::nanoseconds, failed)
//   BM_RecordRequest         halo::record_request() with a loop registered (the floor HALO sets)
//   BM_MutexSummary          a per-endpoint histogram behind a mutex (a Prometheus Summary's
//                            observe() locks likewise)
//   BM_SharedAtomicHistogram a per-endpoint histogram in shared atomics
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
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

// The calls' arguments: latencies cycling through a few buckets, as a service's would, one
// request in 64 failed. kCalls is a power of two so the index wraps with a mask.
constexpr std::size_t kCalls = 4096;
struct Call {
  std::size_t endpoint;
  double latency_ms;
  std::chrono::nanoseconds latency;
  bool failed;
};
const std::array<Call, kCalls>& calls() {
  static const auto* const c = [] {
    auto* v = new std::array<Call, kCalls>;
    for (std::size_t i = 0; i < kCalls; ++i) {
      const double ms = 0.5 + static_cast<double>(i % 7) * 3.25;
      (*v)[i] = {i % kEndpoints, ms, std::chrono::nanoseconds(static_cast<std::int64_t>(ms * 1e6)),
                 (i & 63) == 0};
    }
    return v;
  }();
  return *c;
}

void BM_Endpoint_ByPath(benchmark::State& state) {
  auto& s = bench_state();
  const auto& p = paths();
  const auto& c = calls();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    const Call& k = c[i++ & (kCalls - 1)];
    s.endpoint(p[k.endpoint]).record(k.latency_ms, k.failed);
  }
}
BENCHMARK(BM_Endpoint_ByPath)->Threads(1)->Threads(2);

std::array<halo::EndpointCounters*, kEndpoints> handles() {
  std::array<halo::EndpointCounters*, kEndpoints> h{};
  for (std::size_t k = 0; k < kEndpoints; ++k) h[k] = &bench_state().endpoint(paths()[k]);
  return h;
}

void BM_Endpoint_Cached(benchmark::State& state) {
  const auto h = handles();
  const auto& c = calls();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    const Call& k = c[i++ & (kCalls - 1)];
    h[k.endpoint]->record(k.latency_ms, k.failed);
  }
}
BENCHMARK(BM_Endpoint_Cached)->Threads(1)->Threads(2);

void BM_Endpoint_Duration(benchmark::State& state) {
  const auto h = handles();
  const auto& c = calls();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    const Call& k = c[i++ & (kCalls - 1)];
    h[k.endpoint]->record(k.latency, k.failed);
  }
}
BENCHMARK(BM_Endpoint_Duration)->Threads(1)->Threads(2);

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
  const auto& c = calls();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    const Call& k = c[i++ & (kCalls - 1)];
    (*h)[k.endpoint].observe(k.latency_ms, k.failed);
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
  const auto& c = calls();
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    const Call& k = c[i++ & (kCalls - 1)];
    (*h)[k.endpoint].observe(k.latency_ms, k.failed);
  }
}
BENCHMARK(BM_SharedAtomicHistogram)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();

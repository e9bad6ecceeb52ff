// Stress tests (CTest label "stress") of the system state: writers racing snapshots.
#include "halo/state.hpp"

#include <gtest/gtest.h>

#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "manual_state.hpp"  // tests/support

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// The sanitizer runtimes' allocator statistics (GCC ships no header for them).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace {

using namespace std::chrono_literals;

// Bytes the process has allocated and not freed (the sanitizers' allocator replaces malloc's).
std::size_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks + mallinfo2().hblkhd;
#endif
}

using StateRig = octo_test::ManualState;

// Writers keep going while snapshots are taken; every snapshot is internally consistent: each
// agent's heartbeat equals the value its writer set together with its name.
TEST(SystemStateStress, ConcurrentWritersAndSnapshots) {
  StateRig rig;
  constexpr int kAgents = 4096;
  for (int i = 0; i < kAgents; ++i) rig.state.upsert_agent({.id = std::to_string(i)});
  std::atomic<bool> done{false};
  std::latch start(3);
  auto writer = [&](int parity) {
    start.arrive_and_wait();
    for (std::int64_t round = 1; round <= 200; ++round)
      for (int i = parity; i < kAgents; i += 2)
        rig.state.upsert_agent({.id = std::to_string(i),
                                .name = std::to_string(round),
                                .last_heartbeat = std::chrono::nanoseconds(round)});
  };
  std::thread w1(writer, 0), w2(writer, 1);
  start.arrive_and_wait();
  std::size_t snapshots = 0;
  std::vector<std::int64_t> last(kAgents, 0);
  while (!done.load()) {
    auto s = rig.state.snapshot();
    ++snapshots;
    ASSERT_EQ(s->agents.size(), static_cast<std::size_t>(kAgents));
    bool finished = true;
    for (int i = 0; i < kAgents; ++i) {
      const auto& a = s->agents[static_cast<std::size_t>(i)];
      const auto hb = a.last_heartbeat.count();
      if (hb != 0) {
        ASSERT_EQ(a.name, std::to_string(hb));
      }
      ASSERT_GE(hb, last[static_cast<std::size_t>(i)]);  // never goes back
      last[static_cast<std::size_t>(i)] = hb;
      finished = finished && hb == 200;
    }
    if (finished) done = true;
  }
  w1.join();
  w2.join();
  EXPECT_GT(snapshots, 0u);
}

}  // namespace

namespace {

// Exact totals under churn: 4 threads x 1,000,000 records over 100 endpoints, each thread
// exiting after every 250,000 records and a new one taking over (its shards pass on).
TEST(SystemStateStress, EndpointCountsAndHistogramsStayExactAcrossThreadChurn) {
  StateRig rig;
  constexpr int kEndpoints = 100;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1'000'000;
  constexpr int kStints = 4;
  std::vector<halo::EndpointCounters*> eps;
  for (int e = 0; e < kEndpoints; ++e)
    eps.push_back(&rig.state.endpoint("/api/" + std::to_string(e)));
  for (int stint = 0; stint < kStints; ++stint) {
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        for (int k = 0; k < kPerThread / kStints; ++k) {
          const int e = (k + i) % kEndpoints;
          // Every tenth through the by-path form, the rest through the handle.
          auto& ep = k % 10 == 0 ? rig.state.endpoint("/api/" + std::to_string(e)) : *eps[e];
          ep.record(static_cast<double>(k % 500), k % 7 == 0);
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  std::uint64_t requests = 0, errors = 0, histogram = 0;
  for (auto* ep : eps) {
    requests += ep->requests();
    errors += ep->errors();
    histogram += ep->latency().count;
  }
  constexpr std::uint64_t kAll = std::uint64_t{kThreads} * kPerThread;
  EXPECT_EQ(requests, kAll);
  EXPECT_EQ(histogram, kAll);
  std::uint64_t want_errors = 0;
  for (int k = 0; k < kPerThread / kStints; ++k) want_errors += k % 7 == 0 ? 1 : 0;
  EXPECT_EQ(errors, want_errors * kThreads * kStints);
}

// The memory the endpoint issue bounds: 10,000 endpoints recorded from 8 threads alive at once
// (this one and 7 more), every histogram snapshot taken and every endpoint's all-time histogram
// asked for (a /metrics that exported them all): at most 256 MiB.
TEST(SystemStateStress, TenThousandEndpointsFromEightThreadsStayUnder256MiB) {
  constexpr int kEndpoints = 10'000, kThreads = 8;
  constexpr std::uint32_t kSlots = halo::EndpointCounters::kLatencySlots + 2;
  const std::size_t before = heap_in_use();
  {
    StateRig rig;
    std::vector<halo::EndpointCounters*> eps;
    for (int i = 0; i < kEndpoints; ++i)
      eps.push_back(&rig.state.endpoint("/api/v1/resource/" + std::to_string(i)));
    // Every slot of the window: its snapshot on each endpoint, taken by the slot's first record.
    for (std::uint32_t slot = 0; slot < kSlots; ++slot) {
      for (auto* ep : eps) ep->record(12.5, false);
      rig.advance(eps[0]->latency_slot());
    }
    std::latch recorded(kThreads), measured(1);
    std::vector<std::thread> threads;
    for (int t = 1; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (auto* ep : eps) ep->record(1.0 + t, t == 1);
        recorded.count_down();
        measured.wait();  // all alive at once: 8 shards per endpoint
      });
    }
    recorded.arrive_and_wait();
    std::size_t wrong = 0;
    for (auto* ep : eps) wrong += ep->latency_total().count == kSlots + kThreads - 1 ? 0 : 1;
    EXPECT_EQ(wrong, 0u);
    const std::size_t used = heap_in_use() - before;
    measured.count_down();
    for (auto& t : threads) t.join();
    std::printf("10,000 endpoints x 8 threads: %.1f MiB (%.0f bytes per endpoint)\n",
                static_cast<double>(used) / (1 << 20), static_cast<double>(used) / kEndpoints);
    RecordProperty("bytes", std::to_string(used));
    EXPECT_LE(used, std::size_t{256} << 20);
  }
  // And it is all given back.
  EXPECT_LT(heap_in_use(), before + (std::size_t{1} << 20));
}

}  // namespace

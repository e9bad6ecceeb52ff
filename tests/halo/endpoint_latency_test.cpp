// An endpoint's latency percentiles: accuracy against a sorted reference, the window, mark().
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "halo/state.hpp"
#include "manual_state.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using halo::LatencyWindow;

// The value at 1-based rank ceil(q * n) of the sorted samples, as LatencyWindow defines it.
double reference(const std::vector<double>& sorted, double q) {
  const auto rank = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))));
  return sorted[rank - 1];
}

TEST(EndpointLatency, PercentilesMatchASortedReferenceWithinTheDocumentedError) {
  octo_test::ManualState rig;
  auto& ep = rig.state.endpoint("/api/orders");
  std::mt19937_64 rng(7);
  // Latencies from 0.05 ms to ~20 s: a body near 20 ms and a long tail.
  std::lognormal_distribution<double> body(std::log(20.0), 1.2);
  std::vector<double> samples;
  for (int i = 0; i < 20'000; ++i) {
    // Whole microseconds, as the endpoint keeps them.
    const double ms = std::round(std::min(body(rng), 20'000.0) * 1000.0) / 1000.0;
    samples.push_back(std::max(ms, 0.05));
    ep.record(samples.back(), false);
  }
  std::sort(samples.begin(), samples.end());
  const LatencyWindow w = ep.latency();
  ASSERT_EQ(w.count, samples.size());
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    const double want = reference(samples, q);
    // One microsecond of slack for the integer midpoint of the narrowest buckets.
    EXPECT_NEAR(w.quantile_ms(q), want, want * LatencyWindow::Buckets::kRelativeError + 0.001)
        << "q=" << q;
  }
  EXPECT_NEAR(w.max_ms(), samples.back(),
              samples.back() * LatencyWindow::Buckets::kRelativeError + 0.001);
  EXPECT_EQ(w.count_at_most(1e9), samples.size());
  EXPECT_EQ(w.count_at_most(0.0), 0u);
}

TEST(EndpointLatency, OneSlowRequestInAHundredIsTheP99) {
  octo_test::ManualState rig;
  auto& ep = rig.state.endpoint("/api/pay");
  for (int i = 0; i < 99; ++i) ep.record(10.0, false);
  ep.record(3'000.0, false);
  const LatencyWindow w = ep.latency();
  EXPECT_NEAR(w.quantile_ms(0.99), 10.0, 10.0 * LatencyWindow::Buckets::kRelativeError);
  EXPECT_NEAR(w.max_ms(), 3'000.0, 3'000.0 * LatencyWindow::Buckets::kRelativeError);
  ep.record(3'000.0, false);  // now 2 in 101: past the 99th percentile's rank
  EXPECT_NEAR(ep.latency().quantile_ms(0.99), 3'000.0,
              3'000.0 * LatencyWindow::Buckets::kRelativeError);
  EXPECT_LT(ep.mean_latency_ms(), 100.0) << "the mean hides the tail";
}

TEST(EndpointLatency, BadLatenciesCountAsZeroOrTheCap) {
  octo_test::ManualState rig;
  auto& ep = rig.state.endpoint("/api/x");
  ep.record(-5.0, false);
  ep.record(std::nan(""), false);
  ep.record(1e300, false);
  const LatencyWindow w = ep.latency();
  ASSERT_EQ(w.count, 3u);
  EXPECT_EQ(w.quantile_ms(0.5), 0.0);
  // Past the histogram's top (2^32 us): in its last bucket.
  EXPECT_GT(w.max_ms(), 4.0e6);
  EXPECT_EQ(w.counts.size(), static_cast<std::size_t>(LatencyWindow::Buckets::kCount));
  EXPECT_EQ(w.counts.back(), 1u);
}

TEST(EndpointLatency, TheDurationFormRoundsToMicrosecondsAndClampsLikeTheDoubleForm) {
  octo_test::ManualState rig;
  auto& by_duration = rig.state.endpoint("/api/d");
  auto& by_ms = rig.state.endpoint("/api/ms");
  using std::chrono::nanoseconds;
  const std::int64_t ns[] = {-7, 0, 499, 500, 1'499, 1'500, 2'750'000, 9'000'000'000'000'000'000};
  for (const std::int64_t v : ns) {
    by_duration.record(nanoseconds(v), false);
    by_ms.record(static_cast<double>(v) / 1e6, false);
  }
  const LatencyWindow a = by_duration.latency(), b = by_ms.latency();
  ASSERT_EQ(a.count, std::size(ns));
  EXPECT_EQ(a.counts, b.counts);
  // -7, 0 and 499 ns are 0 us; 500 and 1,499 ns 1 us; 1,500 ns 2 us.
  EXPECT_EQ(a.counts[0], 3u);
  EXPECT_EQ(a.counts[1], 2u);
  EXPECT_EQ(a.counts[2], 1u);
  EXPECT_EQ(a.counts.back(), 1u) << "past the top: the last bucket";
  EXPECT_EQ(by_duration.requests(), std::size(ns));
  EXPECT_DOUBLE_EQ(by_duration.mean_latency_ms(), by_ms.mean_latency_ms());
}

TEST(EndpointLatency, TheWindowKeepsItsLatenciesAndThenForgetsThem) {
  octo_test::ManualState rig;  // a 10 s window (10.24 s in whole buckets)
  auto& ep = rig.state.endpoint("/api/orders");
  const auto window = ep.window();
  const auto span = ep.latency_slot() * (halo::EndpointCounters::kLatencySlots + 1);
  ASSERT_GE(span - ep.latency_slot(), window);
  ep.record(900.0, false);
  rig.advance(window - 1s);  // still inside the window
  ep.record(5.0, false);
  LatencyWindow w = ep.latency();
  ASSERT_EQ(w.count, 2u);
  EXPECT_NEAR(w.max_ms(), 900.0, 900.0 * LatencyWindow::Buckets::kRelativeError);
  // kLatencySlots + 1 slots after it, the slow request is gone; the fast one is not.
  rig.advance(span - (window - 1s));
  w = ep.latency();
  ASSERT_EQ(w.count, 1u);
  EXPECT_NEAR(w.max_ms(), 5.0, 5.0 * LatencyWindow::Buckets::kRelativeError);
  rig.advance(2 * window);
  EXPECT_EQ(ep.latency().count, 0u);
  EXPECT_TRUE(ep.latency().counts.empty());
}

TEST(EndpointLatency, ReadsWithoutRecordsStillMoveTheWindow) {
  octo_test::ManualState rig;
  auto& ep = rig.state.endpoint("/api/orders");
  const auto window = ep.window();
  const auto span = ep.latency_slot() * (halo::EndpointCounters::kLatencySlots + 1);
  ep.record(700.0, false);
  // Only reads for several windows: the ring turns over many times and the record ages out.
  for (auto t = 250ms; t < 4 * window; t += 250ms) {
    rig.advance(250ms);
    const auto n = ep.latency().count;
    if (t < window) {
      EXPECT_EQ(n, 1u) << "after " << t.count() << " ms";
    } else if (t >= span) {
      EXPECT_EQ(n, 0u) << "after " << t.count() << " ms";
    }
  }
}

TEST(EndpointLatency, MarkLeavesOutTheLatenciesBeforeIt) {
  octo_test::ManualState rig;
  auto& ep = rig.state.endpoint("/api/orders");
  for (int i = 0; i < 10; ++i) ep.record(4'000.0, true);
  ep.mark();
  EXPECT_EQ(ep.latency().count, 0u);
  for (int i = 0; i < 10; ++i) ep.record(20.0, false);
  LatencyWindow w = ep.latency();
  ASSERT_EQ(w.count, 10u) << "exact at the mark, not bucket-exact";
  EXPECT_NEAR(w.quantile_ms(0.99), 20.0, 20.0 * LatencyWindow::Buckets::kRelativeError);
  // Once the mark has aged out of the window, the window alone decides.
  rig.advance(ep.latency_slot() * (halo::EndpointCounters::kLatencySlots + 1));
  ep.record(30.0, false);
  EXPECT_EQ(ep.latency().count, 1u);
}

TEST(EndpointLatency, ARecreatedEndpointStartsWithAnEmptyHistogram) {
  octo_test::ManualState rig;
  auto& ep = rig.state.endpoint("/api/gone");
  ep.record(5'000.0, true);
  ASSERT_TRUE(rig.state.remove_endpoint("/api/gone"));
  auto& again = rig.state.endpoint("/api/gone");
  EXPECT_EQ(again.latency().count, 0u);
  again.record(8.0, false);
  EXPECT_NEAR(again.latency().max_ms(), 8.0, 8.0 * LatencyWindow::Buckets::kRelativeError);
}

}  // namespace

#include "octo/windowed_histogram.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <latch>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "octo/clock.hpp"

namespace {

using octo::HistogramBuckets;

TEST(HistogramBuckets, CoverEveryValueContiguouslyWithinTheStatedError) {
  EXPECT_EQ(HistogramBuckets::kCount, 2368);
  EXPECT_LT(HistogramBuckets::kRelativeError, 0.01);
  for (int b = 0; b + 1 < HistogramBuckets::kCount; ++b) {
    ASSERT_LE(HistogramBuckets::lower(b), HistogramBuckets::upper(b));
    ASSERT_EQ(HistogramBuckets::upper(b) + 1, HistogramBuckets::lower(b + 1)) << b;
    ASSERT_EQ(HistogramBuckets::bucket_of(HistogramBuckets::lower(b)), b);
    ASSERT_EQ(HistogramBuckets::bucket_of(HistogramBuckets::upper(b)), b);
    // Every value of the bucket is within the error of its midpoint.
    const double mid = static_cast<double>(HistogramBuckets::midpoint(b));
    const double lo = static_cast<double>(HistogramBuckets::lower(b));
    const double hi = static_cast<double>(HistogramBuckets::upper(b));
    ASSERT_LE(std::max(mid - lo, hi - mid), lo * HistogramBuckets::kRelativeError + 0.5) << b;
  }
  // One hour in nanoseconds is inside the range; beyond the top, values share the last bucket.
  EXPECT_LT(HistogramBuckets::bucket_of(3'600'000'000'000ULL), HistogramBuckets::kCount - 1);
  EXPECT_EQ(HistogramBuckets::bucket_of(~0ULL), HistogramBuckets::kCount - 1);
  EXPECT_EQ(HistogramBuckets::bucket_of(0), 0);
}

// The reference quantile: the sample at 1-based rank ceil(q * n) of the sorted samples.
std::uint64_t reference(const std::vector<std::uint64_t>& sorted, double q) {
  const auto rank = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))));
  return sorted[rank - 1];
}

TEST(WindowedHistogram, QuantilesAreWithinOnePercentOfASortedReference) {
  octo::WindowedHistogram h({.window = std::chrono::hours(1)});
  std::mt19937_64 rng(42);
  // Log-uniform over the stated range, 100 ns to 1 h.
  std::uniform_real_distribution<double> exponent(std::log(100.0), std::log(3.6e12));
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::exp(exponent(rng)));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (const auto& snap : {h.window(), h.total()}) {
    ASSERT_EQ(snap.count, values.size());
    std::uint64_t sum = 0;
    for (auto v : values) sum += v;
    EXPECT_EQ(snap.sum, sum);
    for (double q : {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
      const double want = static_cast<double>(reference(values, q));
      const double got = static_cast<double>(snap.quantile(q));
      EXPECT_LE(std::abs(got - want), want * 0.01) << "q=" << q;
    }
    const double top = static_cast<double>(values.back());
    EXPECT_LE(std::abs(static_cast<double>(snap.max()) - top), top * 0.01);
  }
}

TEST(WindowedHistogram, EmptyHasNoQuantiles) {
  octo::WindowedHistogram h;
  const auto s = h.window();
  EXPECT_EQ(s.count, 0U);
  EXPECT_EQ(s.quantile(0.99), 0U);
  EXPECT_EQ(s.max(), 0U);
  EXPECT_EQ(s.count_at_most(1'000'000), 0U);
}

TEST(WindowedHistogram, CountAtMostFollowsBucketEdges) {
  octo::WindowedHistogram h;
  for (std::uint64_t v : {50ULL, 100ULL, 1'000ULL, 1'000'000ULL}) h.record(v);
  const auto s = h.total();
  EXPECT_EQ(s.count_at_most(49), 0U);
  EXPECT_EQ(s.count_at_most(100), 2U);
  EXPECT_EQ(s.count_at_most(999'999), 3U);
  EXPECT_EQ(s.count_at_most(~0ULL), 4U);
}

TEST(WindowedHistogram, TheWindowForgetsWhatIsOlderAndTheTotalKeepsIt) {
  octo::ManualClock clock;
  octo::WindowedHistogram h({.window = std::chrono::seconds(60), .slots = 6, .clock = &clock});
  for (int i = 0; i < 1'000; ++i) h.record(10'000);
  clock.advance(std::chrono::seconds(30));
  h.roll();
  for (int i = 0; i < 10; ++i) h.record(1'000'000);
  // Both are inside the window.
  EXPECT_EQ(h.window().count, 1'010U);
  // 61 s after the first batch: its snapshot at 0 s is the newest a window old; the first values
  // are older than the window but the snapshot at 30 s is not yet a window old.
  clock.advance(std::chrono::seconds(31));
  EXPECT_EQ(h.window().count, 1'010U);
  // 91 s: the reading taken at 30 s is a window old, so only what came after it counts.
  clock.advance(std::chrono::seconds(30));
  const auto w = h.window();
  EXPECT_EQ(w.count, 10U);
  EXPECT_NEAR(static_cast<double>(w.quantile(0.5)), 1e6, 1e4);
  EXPECT_EQ(w.sum, 10'000'000U);
  const auto t = h.total();
  EXPECT_EQ(t.count, 1'010U);
  EXPECT_EQ(t.sum, 1'000U * 10'000U + 10'000'000U);
  // Long after, with rolls, the window is empty and the total stays.
  for (int i = 0; i < 10; ++i) {
    clock.advance(std::chrono::seconds(10));
    h.roll();
  }
  EXPECT_EQ(h.window().count, 0U);
  EXPECT_EQ(h.total().count, 1'010U);
}

TEST(WindowedHistogram, ShardsOfExitedThreadsStayCountedAndAreReused) {
  octo::WindowedHistogram h;
  for (int round = 0; round < 8; ++round) {
    std::thread([&h] {
      for (int i = 0; i < 1'000; ++i) h.record(static_cast<std::uint64_t>(i));
    }).join();
  }
  const auto s = h.total();
  EXPECT_EQ(s.count, 8'000U);
  EXPECT_EQ(s.sum, 8U * (999U * 1'000U / 2U));
  // One thread alive at a time: each took the number (and the shard) the previous one left.
  EXPECT_EQ(h.shard_count(), 1U);
  EXPECT_EQ(h.dropped(), 0U);
}

TEST(WindowedHistogram, ConcurrentWritersAndReadersCountEverything) {
  octo::WindowedHistogram h({.window = std::chrono::milliseconds(10), .slots = 2});
  constexpr int kWriters = 4;
  constexpr int kEach = 100'000;
  std::latch start(kWriters + 1);
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) h.record(static_cast<std::uint64_t>(t * 1'000 + i % 1'000));
    });
  }
  std::thread reader([&] {
    start.arrive_and_wait();
    std::uint64_t last = 0;
    while (!done.load(std::memory_order_acquire)) {
      const auto total = h.total().count;
      EXPECT_GE(total, last);  // all-time counts never go back
      last = total;
      static_cast<void>(h.window());
    }
  });
  for (auto& w : writers) w.join();
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(h.total().count, static_cast<std::uint64_t>(kWriters) * kEach);
  EXPECT_LE(h.shard_count(), static_cast<std::size_t>(kWriters));
}

TEST(WindowedHistogram, SnapshotsMerge) {
  octo::WindowedHistogram a, b;
  a.record(100);
  b.record(1'000);
  b.record(10'000);
  auto s = a.total();
  s.merge(b.total());
  EXPECT_EQ(s.count, 3U);
  EXPECT_EQ(s.sum, 11'100U);
  EXPECT_NEAR(static_cast<double>(s.quantile(1.0)), 10'000.0, 100.0);
}

TEST(WindowedHistogram, BadOptionsAreRefused) {
  EXPECT_THROW(octo::WindowedHistogram({.window = std::chrono::nanoseconds(0)}),
               std::invalid_argument);
  EXPECT_THROW(octo::WindowedHistogram({.slots = 0}), std::invalid_argument);
  EXPECT_THROW(octo::WindowedHistogram({.slots = 1'001}), std::invalid_argument);
  EXPECT_THROW(octo::WindowedHistogram({.window = std::chrono::nanoseconds(5), .slots = 6}),
               std::invalid_argument);
}

}  // namespace

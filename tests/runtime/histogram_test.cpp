#include "octo/histogram.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace {

TEST(Histogram, BucketsAreMonotoneAndTight) {
  int prev = -1;
  for (std::uint64_t v : {0ull, 1ull, 15ull, 16ull, 18ull, 100ull, 1000ull, 123456789ull, ~0ull}) {
    const int b = octo::Histogram::bucket_of(v);
    EXPECT_GT(b, prev);
    prev = b;
    ASSERT_LT(b, octo::Histogram::kBuckets);
    const auto edge = octo::Histogram::upper_edge(b);
    EXPECT_GE(edge, v);
    // At most 12.5% above the value (exact below 16).
    EXPECT_LE(static_cast<double>(edge), static_cast<double>(v) * 1.125 + 1) << v;
  }
  for (int b = 0; b + 1 < octo::Histogram::kBuckets; ++b) {
    EXPECT_EQ(octo::Histogram::bucket_of(octo::Histogram::upper_edge(b)), b);
    EXPECT_EQ(octo::Histogram::bucket_of(octo::Histogram::upper_edge(b) + 1), b + 1);
  }
}

TEST(Histogram, QuantilesOfAKnownDistribution) {
  octo::Histogram h;
  EXPECT_EQ(h.snapshot().quantile(0.5), 0u);
  for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 1000u);
  EXPECT_EQ(s.sum, 500500u);
  EXPECT_GE(s.quantile(0.5), 500u);
  EXPECT_LE(s.quantile(0.5), 563u);
  EXPECT_GE(s.quantile(0.99), 990u);
  EXPECT_LE(s.quantile(0.99), 1114u);
  EXPECT_EQ(s.quantile(0.0), 1u);
}

TEST(Histogram, ConcurrentRecordsAreAllCounted) {
  octo::Histogram h;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&h, t] {
      for (int i = 0; i < 50000; ++i) h.record(static_cast<std::uint64_t>(i * (t + 1)));
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(h.snapshot().count, 200000u);
}

}  // namespace

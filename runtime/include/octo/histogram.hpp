// octo/histogram.hpp — a lock-free log-linear histogram of durations (or any non-negative values).
//
// 8 sub-buckets per power of two: a quantile is reported as the upper edge of its bucket, at most
// 12.5% above the true value. record() is one relaxed fetch_add on the bucket and one on the sum;
// readers take a consistent-enough snapshot without stopping writers.
//
//   octo::Histogram h;  h.record(1'250);  auto p99 = h.snapshot().quantile(0.99);
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <vector>

namespace octo {

class Histogram {
 public:
  static constexpr int kSubBits = 3;
  static constexpr int kSub = 1 << kSubBits;  // sub-buckets per octave
  static constexpr int kLinear = 2 * kSub;    // values below are exact
  static constexpr int kBuckets = kLinear + (64 - (kSubBits + 1)) * kSub;

  static constexpr int bucket_of(std::uint64_t v) noexcept {
    if (v < kLinear) return static_cast<int>(v);
    const int e = std::bit_width(v) - 1;  // >= kSubBits + 1
    const int sub = static_cast<int>((v >> (e - kSubBits)) & (kSub - 1));
    return kLinear + (e - (kSubBits + 1)) * kSub + sub;
  }
  // Largest value that falls in bucket b.
  static constexpr std::uint64_t upper_edge(int b) noexcept {
    if (b < kLinear) return static_cast<std::uint64_t>(b);
    const int e = (b - kLinear) / kSub + kSubBits + 1;
    const std::uint64_t sub = static_cast<std::uint64_t>((b - kLinear) % kSub);
    const std::uint64_t lo = (std::uint64_t{1} << e) | (sub << (e - kSubBits));
    return lo + (std::uint64_t{1} << (e - kSubBits)) - 1;
  }

  // Relaxed: each counter is independent; readers tolerate seeing a record in count_ before sum_.
  void record(std::uint64_t v) noexcept {
    buckets_[bucket_of(v)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<std::uint64_t> buckets;  // kBuckets entries
    std::uint64_t count = 0;
    std::uint64_t sum = 0;
    // Upper edge of the bucket holding the q-quantile (0 when empty). q in [0, 1].
    std::uint64_t quantile(double q) const noexcept;
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> sum_{0};
};

}  // namespace octo

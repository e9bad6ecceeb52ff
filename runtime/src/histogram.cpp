#include "octo/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace octo {

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.buckets.resize(kBuckets);
  for (int i = 0; i < kBuckets; ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::uint64_t Histogram::Snapshot::quantile(double q) const noexcept {
  if (count == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the quantile, 1-based: the smallest bucket whose cumulative count reaches it.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * count)));
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) return upper_edge(i);
  }
  return upper_edge(kBuckets - 1);
}

}  // namespace octo

// octo/windowed_histogram.hpp — every-sample latency histograms over a sliding window.
//
// Log-linear buckets in the manner of HdrHistogram: values below 128 are exact, and every power of
// two above is split into 64 equal buckets up to 2^42 (73 minutes in nanoseconds; larger values
// count in the last bucket). A value is reported as its bucket's midpoint, within 1/128 (0.78%)
// of every value in that bucket, over the whole range from 100 ns to 1 h.
//
// record() writes one shard per thread: a load of the thread's number (octo/detail/
// thread_index.hpp), a load of its shard, and a relaxed load and store of one bucket and of the
// sum, memory no other thread writes. No lock prefix, no allocation after the thread's first
// record. A shard is kShardBytes (9.3 KiB: 32-bit counts, which may wrap; see below); a thread
// that exits leaves its shard to the next thread given its number, so shards grow with the number
// of threads alive at once, never with thread churn, and exited threads' counts stay counted.
//
// Readers merge the shards (cold, under a mutex). The window is kept as a ring of merged snapshots
// taken every window / slots by roll(), which every read also calls: a read subtracts the newest
// snapshot at least `window` old from the shards now, so it covers between `window` and
// `window + window / slots`, provided roll() runs at least once per slot while values arrive (the
// executor's timer does so for its histograms). Counts are 32-bit and wrap; differences are taken
// modulo 2^32, exact while fewer than 2^32 values fall in one bucket between two rolls.
//
//   octo::WindowedHistogram wait({.window = std::chrono::seconds(60)});
//   wait.record(1'250);                                 // any thread
//   auto w = wait.window();  auto p99 = w.quantile(0.99);  auto all = wait.total();
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "octo/clock.hpp"
#include "octo/detail/thread_index.hpp"

namespace octo {

// Log-linear bucket layouts: values below 2 * 2^SubBits are their own bucket, and every power of
// two above is split into 2^SubBits equal buckets up to 2^TopBit (larger values count in the last
// bucket). A bucket's midpoint is within 1 / 2^(SubBits + 1) of every value in it.
template <int SubBits, int TopBit>
struct LogLinearBuckets {
  static_assert(SubBits >= 1 && TopBit > SubBits + 1 && TopBit < 64);
  static constexpr int kSubBits = SubBits;
  static constexpr int kSub = 1 << kSubBits;  // buckets per power of two
  static constexpr int kLinear = 2 * kSub;    // values below are their own bucket
  static constexpr int kTopBit = TopBit;
  static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << kTopBit) - 1;
  static constexpr int kCount = kLinear + (kTopBit - kSubBits - 1) * kSub;
  // Relative distance from any value of a bucket to its midpoint, at most.
  static constexpr double kRelativeError = 1.0 / (2.0 * kSub);

  // shift = bit_width(v) - (SubBits + 1) for v >= kLinear, else 0; bucket = shift * kSub +
  // (v >> shift). `v | kSub` makes the width at least SubBits + 1 without a max (and never zero,
  // so bsr needs no check).
  static constexpr int bucket_of(std::uint64_t v) noexcept {
    if (v > kMaxValue) [[unlikely]]
      v = kMaxValue;
    return bucket_of_unclamped(v);
  }
  // bucket_of() for v <= kMaxValue, which the caller has made sure of.
  static constexpr int bucket_of_unclamped(std::uint64_t v) noexcept {
    const int shift = std::bit_width(v | kSub) - (kSubBits + 1);
    return (shift << kSubBits) + static_cast<int>(v >> shift);
  }
  static constexpr std::uint64_t lower(int b) noexcept {
    if (b < kLinear) return static_cast<std::uint64_t>(b);
    const int shift = (b >> kSubBits) - 1;
    return static_cast<std::uint64_t>((b & (kSub - 1)) + kSub) << shift;
  }
  static constexpr std::uint64_t upper(int b) noexcept {  // inclusive
    if (b < kLinear) return static_cast<std::uint64_t>(b);
    return lower(b) + (std::uint64_t{1} << ((b >> kSubBits) - 1)) - 1;
  }
  static constexpr std::uint64_t midpoint(int b) noexcept {
    return lower(b) + (upper(b) - lower(b)) / 2;
  }

  // Readings over counts per bucket (kCount entries, or empty for no values); -1 for no bucket.
  // The bucket holding the q-quantile of `total` values (q clamped to [0, 1]; the rank is
  // ceil(q * total), the 1-based position in a sorted list of the values, at least 1).
  static int quantile_bucket(std::span<const std::uint64_t> counts, std::uint64_t total,
                             double q) noexcept {
    if (total == 0 || counts.empty()) return -1;
    q = std::clamp(q, 0.0, 1.0);
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total))));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < counts.size(); ++b) {
      seen += counts[b];
      if (seen >= rank) return static_cast<int>(b);
    }
    return top_bucket(counts);
  }
  // The highest non-empty bucket.
  static int top_bucket(std::span<const std::uint64_t> counts) noexcept {
    for (std::size_t b = counts.size(); b-- > 0;) {
      if (counts[b] != 0) return static_cast<int>(b);
    }
    return -1;
  }
  // Values in buckets whose upper edge is at most `bound` (a Prometheus `le`).
  static std::uint64_t count_at_most(std::span<const std::uint64_t> counts,
                                     std::uint64_t bound) noexcept {
    std::uint64_t n = 0;
    for (std::size_t b = 0; b < counts.size() && upper(static_cast<int>(b)) <= bound; ++b)
      n += counts[b];
    return n;
  }
};

// The layout of every WindowedHistogram (so snapshots merge by adding counts): 64 buckets per
// power of two up to 2^42, 2,368 buckets.
using HistogramBuckets = LogLinearBuckets<6, 42>;
static_assert(HistogramBuckets::kCount == 2368);

// Counts per bucket over some span (a window, or all time), merged from every shard.
struct HistogramSnapshot {
  std::vector<std::uint64_t> counts;  // HistogramBuckets::kCount entries, or empty when count == 0
  std::uint64_t count = 0;
  std::uint64_t sum = 0;  // of the recorded values (exact, not bucketed)

  // The q-quantile (q in [0, 1], clamped), as its bucket's midpoint; 0 when empty. The rank is
  // ceil(q * count): the value a sorted list of the samples has at that 1-based position, within
  // HistogramBuckets::kRelativeError.
  std::uint64_t quantile(double q) const noexcept;
  // The largest value seen, within the same error (the top non-empty bucket's midpoint).
  std::uint64_t max() const noexcept;
  // Values at most `bound`: every bucket whose upper edge is <= bound (a Prometheus `le`; exact
  // for bounds on bucket edges, otherwise within one bucket).
  std::uint64_t count_at_most(std::uint64_t bound) const noexcept;
  // Adds another snapshot's counts (the layout is the same everywhere).
  void merge(const HistogramSnapshot& other);
};

class WindowedHistogram {
  struct Shard;

 public:
  struct Options {
    std::chrono::nanoseconds window = std::chrono::seconds(60);
    std::uint32_t slots = 6;
    // Time for the window; nullptr = a steady clock. Must outlive the histogram.
    const Clock* clock = nullptr;
  };
  // Bytes of one thread's shard.
  static constexpr std::size_t kShardBytes =
      64 + sizeof(std::uint32_t) * static_cast<std::size_t>(HistogramBuckets::kCount);

  // Throws std::invalid_argument for a window or slot count of zero, or more than 1,000 slots.
  explicit WindowedHistogram(Options options);
  WindowedHistogram() : WindowedHistogram(Options{}) {}
  ~WindowedHistogram();
  WindowedHistogram(const WindowedHistogram&) = delete;
  WindowedHistogram& operator=(const WindowedHistogram&) = delete;

  // Counts one value. Any thread; see the file comment for the cost.
  void record(std::uint64_t value) noexcept {
    if (Shard* s = own_shard()) [[likely]] {
      add(*s, value);
    } else {
      record_slow(value);
    }
  }

  // This thread's shard, looked up once for many records (the executor's drainers take one per
  // batch). Valid on the calling thread only, while it lives; a null writer records through
  // record().
  class Writer {
   public:
    void record(std::uint64_t value) noexcept {
      if (shard_ != nullptr) [[likely]] {
        add(*shard_, value);
      } else {
        owner_->record(value);
      }
    }

   private:
    friend class WindowedHistogram;
    Writer(WindowedHistogram* owner, Shard* shard) noexcept : owner_(owner), shard_(shard) {}
    WindowedHistogram* owner_;
    Shard* shard_;
  };
  Writer writer() noexcept { return Writer(this, own_shard()); }

  // The values of the last window (see the file comment for its exact span).
  HistogramSnapshot window() const;
  // Every value ever recorded.
  HistogramSnapshot total() const;
  // Takes a window snapshot when a slot has passed since the last one. Cheap otherwise (a clock
  // read and an atomic compare, no lock); a snapshot merges every shard (~2,400 adds each).
  void roll() const;

  std::chrono::nanoseconds window_length() const noexcept { return window_; }
  // Shards allocated (threads that recorded, at most the number alive at once, plus one shared
  // shard for threads without a number).
  std::size_t shard_count() const;
  // Values dropped because a shard could not be allocated.
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) Shard {
    std::atomic<std::uint64_t> sum{0};
    std::atomic<std::uint32_t> counts[HistogramBuckets::kCount]{};
  };
  static_assert(sizeof(Shard) <= kShardBytes);
  // A merged reading of every shard: 32-bit counts modulo 2^32, the sum modulo 2^64.
  struct Reading {
    std::int64_t at_ns = 0;
    std::vector<std::uint32_t> counts;  // empty = all zero
    std::uint64_t sum = 0;
  };

  Shard* own_shard() const noexcept {
    // Acquire: the shard's construction (by record_slow on this thread, or by an earlier owner of
    // this thread number) is visible before its counts are touched; a plain load on x86. A thread
    // without a number reads slot 0, which stays empty.
    return shards_[detail::thread_index()].load(std::memory_order_acquire);
  }
  static void add(Shard& s, std::uint64_t value) noexcept {
    std::atomic<std::uint32_t>& c = s.counts[HistogramBuckets::bucket_of(value)];
    // Relaxed load + store: this thread is the shard's only writer; readers need each word whole.
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    s.sum.store(s.sum.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
  }
  void record_slow(std::uint64_t value) noexcept;
  Reading read_shards(std::int64_t at_ns) const;  // under mu_
  void roll_locked(std::int64_t now_ns) const;    // under mu_
  std::int64_t now_ns() const noexcept { return clock_->now().count(); }

  const std::chrono::nanoseconds window_;
  const std::chrono::nanoseconds slot_;
  const std::uint32_t slots_;
  const Clock* const clock_;
  // By thread number (1..kMaxThreadIndex; 0, "none", stays null): inline, one load from `this`.
  std::atomic<Shard*> shards_[detail::kMaxThreadIndex + 1]{};
  std::atomic<std::uint64_t> dropped_{0};

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Shard>> owned_;  // every allocated shard, for reads
  // Threads without a number share one shard through atomic read-modify-writes.
  std::unique_ptr<Shard> shared_;
  mutable std::vector<Reading> ring_;          // oldest first; at most slots_ + 1
  mutable std::vector<std::uint64_t> totals_;  // 64-bit all-time counts, updated on each roll
  mutable Reading last_;                       // the reading totals_ is up to date with
  // When the next roll is due (ring_.back().at_ns + slot_): roll() skips the mutex before it.
  // Relaxed: a stale value only sends a caller on to the mutex, where the due time is checked
  // again.
  mutable std::atomic<std::int64_t> next_roll_ns_{0};
};

}  // namespace octo

// octo/window_counter.hpp — a sliding-window event counter for the hottest paths.
//
// record() costs a thread-local lookup, one relaxed load of the ticker's epoch and a relaxed load
// and store on memory only the calling thread writes: no lock prefix, no clock read, and no
// allocation after the thread's first record() on this counter. Readers (sum, rate) add up the
// live buckets of every thread's ring; counts of threads that exited stay counted, in the window
// until they age out and in total() forever.
//
// Accuracy: the window is `buckets` buckets of `bucket_width()`, the newest one still filling.
// Buckets age out whole, so sum() may leave out up to one bucket's worth of the window's oldest
// events (those in the bucket that just left), and never counts an event older than `window`.
// Bucket width is the ticker's resolution times a power of two (the largest not above
// window / buckets); the bucket count is then adjusted so the window keeps its length.
//
//   octo::WindowCounter requests(octo::Ticker::shared(), {.window = std::chrono::seconds(10)});
//   requests.record();                                  // any thread, millions of times a second
//   auto last_10s = requests.sum();  auto per_sec = requests.rate();
//
// Lanes: a counter of several counts that move together (an endpoint's requests, errors and
// latency sum) keeps them side by side in each bucket (`Options::lanes`), so one record writes
// one thread-owned row: one slot lookup and one epoch compare for all of them (see row()).
//
//   octo::WindowCounter ep(ticker, {.window = std::chrono::seconds(10), .lanes = 2});
//   if (auto* r = ep.row()) {                           // this thread's row of this bucket
//     octo::WindowCounter::add(r[0], 1);                // requests
//     octo::WindowCounter::add(r[1], failed ? 1 : 0);   // errors
//   }
//   auto errors = ep.sum(1);
//
// Tallies: per-thread all-time 32-bit counts beside the windowed lanes (`Options::tallies`), for
// counts too many to keep per bucket, such as a latency histogram's buckets. They are not
// windowed: a caller windows them by differences of read_tallies() (modulo 2^32), and reaches
// them through the same lookup as the row (rows()).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "octo/ticker.hpp"

namespace octo {

namespace detail {

// One thread's ring of buckets for one counter: per bucket a row of `lanes` 64-bit counts
// (counts do not wrap in practice: 2^64 events) and, beside it, the bucket's number (its stamp).
// Only the owning thread writes. The hot path adds to the current bucket's count alone; a bucket is
// restamped only when the thread moves to a new one (roll), under a seqlock on the stamp (kRolling
// while it changes), so a reader never adds a count to the wrong bucket.
struct alignas(64) CounterShard {
  static constexpr std::uint64_t kRolling = ~std::uint64_t{0};
  CounterShard(std::uint32_t ring_size, std::uint32_t lanes, std::uint32_t tallies);
  ~CounterShard();
  CounterShard(const CounterShard&) = delete;
  CounterShard& operator=(const CounterShard&) = delete;

  std::atomic<std::uint64_t>* const counts;  // ring_size rows of `lanes`
  std::atomic<std::uint64_t>* const stamps;
  std::atomic<std::uint64_t>* const expired;  // per lane: counts of buckets that left the ring
  std::atomic<std::uint32_t>* const tallies;  // nullptr when the counter has none
  const std::uint64_t mask;
  const std::uint32_t lanes;
  bool orphaned = false;  // guarded by the counter's mutex
};

// A thread's handle on one counter, in that thread's own memory: the counter it belongs to
// (by generation), the bucket being filled and that bucket's word. record() touches nothing else.
struct TlsSlot {
  std::uint64_t generation;  // the counter's; a mismatch means another (or a dead) counter
  std::uint64_t epoch_end;   // first epoch past the bucket being filled (0: none yet)
  std::atomic<std::uint64_t>* current;  // the bucket's row (lane 0's count first)
  CounterShard* shard;
};
// Counter ids below kInlineSlots index a fixed thread-local array (one TLS-relative load);
// higher ids use a per-thread heap table. Both are constant-initialised and trivially
// destructible, so access needs no TLS init guard.
inline constexpr std::uint32_t kInlineSlots = 32;
struct TlsShards {
  TlsSlot* slots;  // ids >= kInlineSlots, offset by kInlineSlots
  std::uint32_t size;
};
extern constinit thread_local TlsSlot tls_inline[kInlineSlots];
extern constinit thread_local TlsShards tls_shards;

// This thread's inline slots. Under the sanitizers the base is made an opaque, real pointer:
// GCC's UBSan otherwise null-checks the %fs-relative offset of tls_inline[0] instead of its
// address and reports a null member access that is not there.
inline TlsSlot* tls_slots() noexcept {
  TlsSlot* base = tls_inline;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  asm("" : "+r"(base));
#endif
  return base;
}

// Moves `slot` to the bucket holding `epoch` (a new bucket, or the first record), then adds n.
// Cold: once per bucket width per thread.
// Adds n to lane 0 (n = 0 only moves the slot).
void roll(TlsSlot& slot, std::uint64_t epoch, std::uint32_t shift, std::uint64_t n) noexcept;

}  // namespace detail

class WindowCounter {
 public:
  struct Options {
    std::chrono::nanoseconds window = std::chrono::seconds(10);
    std::uint32_t buckets = 100;
    // Counts per bucket (see the file comment); each costs 8 bytes per bucket per thread.
    std::uint32_t lanes = 1;
    // All-time 32-bit counts per thread (see the file comment); each costs 4 bytes per thread.
    std::uint32_t tallies = 0;
  };
  static constexpr std::uint32_t kMaxLanes = 64;
  static constexpr std::uint32_t kMaxTallies = 65536;

  // Throws std::invalid_argument for a window or bucket count of zero, a window shorter than
  // the ticker's resolution, lanes outside [1, kMaxLanes] or more than kMaxTallies tallies. The
  // ticker must outlive the counter.
  WindowCounter(const Ticker& ticker, Options options);

  // A pinned counter holds one of kPinnedSlots fixed thread slots, so record_pinned() reaches
  // this thread's bucket without looking the counter up (halo's default request and error
  // counters use them). Pinned slots are permanent: each can be taken once per process, and
  // stays taken when its counter is destroyed (no later counter inherits threads' handles on
  // the old one). Throws std::invalid_argument if the slot is out of range or was taken before.
  static constexpr std::uint32_t kPinnedSlots = 2;
  WindowCounter(const Ticker& ticker, Options options, std::uint32_t pinned_slot);
  explicit WindowCounter(const Ticker& ticker) : WindowCounter(ticker, Options{}) {}
  ~WindowCounter();
  WindowCounter(const WindowCounter&) = delete;
  WindowCounter& operator=(const WindowCounter&) = delete;

  // Adds n events now. Safe from any number of threads; see the file comment for the cost.
  void record(std::uint64_t n = 1) noexcept {
    detail::TlsSlot* s = own_slot();
    if (s == nullptr) [[unlikely]]
      return record_slow(n);
    const std::uint64_t epoch = epoch_->load(std::memory_order_relaxed);
    // Epochs only grow, so "still in my bucket" is one compare against its end.
    if (epoch < s->epoch_end) [[likely]] {
      // Relaxed load + store: this thread is the word's only writer; readers need only see it
      // whole. The word's address is at hand, so the epoch compare stays off the data path.
      s->current->store(s->current->load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    } else {
      roll(*s, n);
    }
  }

  // This thread's row in the bucket being filled (`lanes` counts, lane 0 first), for adding to
  // several lanes with one lookup: add() to each. nullptr only when memory for this thread's
  // first record ran out (the record is then dropped). The row is valid until this thread's next
  // call on this counter; only this thread writes it.
  std::atomic<std::uint64_t>* row() noexcept {
    detail::TlsSlot* s = own_slot();
    if (s == nullptr) [[unlikely]]
      return row_slow();
    if (epoch_->load(std::memory_order_relaxed) >= s->epoch_end) [[unlikely]]
      roll(*s, 0);
    return s->current;
  }
  // row() and this thread's tallies (nullptr when the counter has none), with one lookup. Both
  // are nullptr when row() would be.
  struct Rows {
    std::atomic<std::uint64_t>* row;
    std::atomic<std::uint32_t>* tallies;
  };
  Rows rows() noexcept {
    detail::TlsSlot* s = own_slot();
    if (s == nullptr) [[unlikely]]
      return rows_slow();
    if (epoch_->load(std::memory_order_relaxed) >= s->epoch_end) [[unlikely]]
      roll(*s, 0);
    return {s->current, s->shard->tallies};
  }
  // rows() for a caller that has read the ticker's epoch itself and handles the cold path: this
  // thread's rows when `epoch` is inside the bucket it is filling, else {nullptr, nullptr} (the
  // thread's first record here, or a new bucket: call rows()). Once per bucket width per
  // thread it is null, so a caller can hang per-bucket work on that branch.
  Rows current_rows(std::uint64_t epoch) noexcept {
    detail::TlsSlot* s = own_slot();
    if (s == nullptr || epoch >= s->epoch_end) [[unlikely]]
      return {nullptr, nullptr};
    return {s->current, s->shard->tallies};
  }
  // Adds n to a count of a row from row() or rows(): a relaxed load and store, the calling
  // thread being the count's only writer. A tally wraps modulo 2^32.
  static void add(std::atomic<std::uint64_t>& count, std::uint64_t n) noexcept {
    count.store(count.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void add(std::atomic<std::uint32_t>& tally, std::uint32_t n) noexcept {
    tally.store(tally.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Every thread's tallies added up (modulo 2^32), exited threads' included: out[i] is tally i,
  // for i < min(out.size(), tallies()); the rest of `out` is left alone. Cold: takes the
  // counter's mutex and reads every thread's tallies.
  void read_tallies(std::span<std::uint32_t> out) const;
  std::uint32_t tallies() const noexcept { return tallies_; }

  // Events (of `lane`; a lane past the counter's reads 0) in the whole window.
  std::uint64_t sum(std::uint32_t lane = 0) const { return sum_buckets(buckets_, 0, lane); }
  // Events in the last `window` (rounded up to whole buckets, at most the whole window).
  std::uint64_t sum(std::chrono::nanoseconds window, std::uint32_t lane = 0) const;
  // The number of the bucket being filled now (a value for sum_after).
  std::uint64_t current_bucket() const noexcept {
    return epoch_->load(std::memory_order_relaxed) >> shift_;
  }
  // Events in the window's buckets after bucket `bucket` (the one filling when it was read).
  std::uint64_t sum_after(std::uint64_t bucket, std::uint32_t lane = 0) const;
  // sum() and sum_after() of lanes 0 .. out.size() - 1 in one pass over the threads' rings
  // (one lock, each bucket's stamp checked once): out[l] is lane l's. The lanes are read
  // together, so their counts come from the same buckets. Throws std::invalid_argument when
  // out is larger than lanes().
  void sums(std::span<std::uint64_t> out) const;
  void sums_after(std::uint64_t bucket, std::span<std::uint64_t> out) const;
  // Events per second over the whole window.
  double rate() const;
  // Every event ever recorded, including those of threads that have exited.
  std::uint64_t total(std::uint32_t lane = 0) const;
  std::uint32_t lanes() const noexcept { return lanes_; }

  std::chrono::nanoseconds window() const noexcept { return bucket_width_ * buckets_; }
  std::chrono::nanoseconds bucket_width() const noexcept { return bucket_width_; }
  std::uint32_t buckets() const noexcept { return buckets_; }
  // Threads that have recorded into this counter (live or exited).
  std::size_t shard_count() const;

  // The fast path of the counter pinned at `pinned_slot`, for a caller that reads the ticker's
  // epoch itself (halo::record_request reads it through one pointer that also says whether
  // counting is on): adds n to this thread's bucket and returns true when `epoch` is still
  // inside it; false when the caller must call record() on the counter (the thread's first
  // record, or a new bucket). Only for a live pinned counter; since pinned slots are never
  // reused, a thread's handle at that slot can only be this counter's.
  static bool record_pinned(std::uint32_t pinned_slot, std::uint64_t epoch,
                            std::uint64_t n = 1) noexcept {
    detail::TlsSlot& s = detail::tls_slots()[pinned_slot];
    if (epoch >= s.epoch_end) [[unlikely]]
      return false;
    // This thread is the word's only writer (see record()).
    s.current->store(s.current->load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return true;
  }

 private:
  friend struct CounterRegistry;
  static constexpr std::uint32_t kNotPinned = ~std::uint32_t{0};
  // This thread's slot for this counter, or nullptr when it has none (yet).
  detail::TlsSlot* own_slot() const noexcept {
    detail::TlsSlot* s;
    if (id_ < detail::kInlineSlots) [[likely]] {
      s = detail::tls_slots() + id_;
    } else if (id_ - detail::kInlineSlots < detail::tls_shards.size) {
      s = &detail::tls_shards.slots[id_ - detail::kInlineSlots];
    } else {
      return nullptr;
    }
    return s->generation == generation_ ? s : nullptr;
  }
  void record_slow(std::uint64_t n) noexcept;
  // The thread's first record: its slot and shard; nullptr when memory ran out.
  detail::TlsSlot* attach() noexcept;
  std::atomic<std::uint64_t>* row_slow() noexcept;
  Rows rows_slow() noexcept;
  // This thread's next bucket, on the ticker's active epoch (which wakes an idle ticker).
  void roll(detail::TlsSlot& s, std::uint64_t n) noexcept;
  // Events in the newest n buckets whose number is at least `min_bucket`.
  std::uint64_t sum_buckets(std::uint32_t n, std::uint64_t min_bucket, std::uint32_t lane) const;
  // Lanes first .. first + out.size() - 1 of the newest n buckets numbered at least min_bucket.
  void sum_lanes(std::uint32_t n, std::uint64_t min_bucket, std::uint32_t first,
                 std::span<std::uint64_t> out) const;
  [[noreturn]] void throw_too_many_lanes(std::size_t asked) const;
  detail::CounterShard* take_shard();  // under mu_

  const Ticker* ticker_;
  const std::atomic<std::uint64_t>* epoch_;
  std::uint32_t shift_ = 0;
  std::uint32_t buckets_ = 0;
  std::uint32_t ring_size_ = 0;
  std::uint32_t lanes_ = 1;
  std::uint32_t tallies_ = 0;
  std::chrono::nanoseconds bucket_width_{0};
  std::uint32_t id_ = 0;
  std::uint64_t generation_ = 0;
  mutable std::mutex mu_;  // shards_
  std::vector<std::unique_ptr<detail::CounterShard>> shards_;
};

}  // namespace octo

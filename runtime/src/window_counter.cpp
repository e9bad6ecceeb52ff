#include "octo/window_counter.hpp"

#include <algorithm>
#include <bit>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace octo {

namespace detail {

constinit thread_local TlsSlot tls_inline[kInlineSlots]{};
constinit thread_local TlsShards tls_shards{nullptr, 0};

namespace {

// One cache-line-aligned block for a shard's arrays, in this order: counts, stamps, expired (all
// 64-bit), then the 32-bit tallies. One allocation, not four: a counter with many endpoints and
// threads has one shard per pair, and each allocation's header and alignment padding add up.
std::size_t shard_bytes(std::uint32_t ring_size, std::uint32_t lanes, std::uint32_t tallies) {
  return sizeof(std::uint64_t) * (std::size_t{ring_size} * lanes + ring_size + lanes) +
         sizeof(std::uint32_t) * tallies;
}

std::atomic<std::uint64_t>* shard_block(std::uint32_t ring_size, std::uint32_t lanes,
                                        std::uint32_t tallies) {
  const std::size_t words = std::size_t{ring_size} * lanes + ring_size + lanes;
  void* p = ::operator new(shard_bytes(ring_size, lanes, tallies), std::align_val_t(64));
  // Element by element: an array placement-new may ask for more room than the elements.
  auto* w = static_cast<std::atomic<std::uint64_t>*>(p);
  for (std::size_t i = 0; i < words; ++i) new (w + i) std::atomic<std::uint64_t>(0);
  auto* t = reinterpret_cast<std::atomic<std::uint32_t>*>(w + words);
  for (std::uint32_t i = 0; i < tallies; ++i) new (t + i) std::atomic<std::uint32_t>(0);
  return w;
}

}  // namespace

CounterShard::CounterShard(std::uint32_t ring_size, std::uint32_t lanes, std::uint32_t tallies)
    : counts(shard_block(ring_size, lanes, tallies)),
      stamps(counts + std::size_t{ring_size} * lanes),
      expired(stamps + ring_size),
      tallies(tallies == 0
                  ? nullptr
                  : std::launder(reinterpret_cast<std::atomic<std::uint32_t>*>(expired + lanes))),
      mask(ring_size - 1),
      lanes(lanes) {}

CounterShard::~CounterShard() {
  // The atomics are trivially destructible: the block is only given back.
  ::operator delete(counts, std::align_val_t(64));
}

void roll(TlsSlot& slot, std::uint64_t epoch, std::uint32_t shift, std::uint64_t n) noexcept {
  const std::uint64_t bucket = epoch >> shift;
  CounterShard& s = *slot.shard;
  const std::uint64_t i = bucket & s.mask;
  std::atomic<std::uint64_t>* row = s.counts + i * s.lanes;
  std::atomic<std::uint64_t>& stamp = s.stamps[i];
  if (stamp.load(std::memory_order_relaxed) == bucket) {
    row[0].store(row[0].load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  } else {
    // The slot held a bucket that left the window: keep its counts in the all-time totals.
    for (std::uint32_t l = 0; l < s.lanes; ++l) {
      s.expired[l].store(
          s.expired[l].load(std::memory_order_relaxed) + row[l].load(std::memory_order_relaxed),
          std::memory_order_relaxed);
    }
    // Seqlock writer: marked, then (release fence) the counts, then the stamp with release; a
    // reader that sees the same stamp before and after its count read has a matching pair.
    stamp.store(CounterShard::kRolling, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    row[0].store(n, std::memory_order_relaxed);
    for (std::uint32_t l = 1; l < s.lanes; ++l) row[l].store(0, std::memory_order_relaxed);
    stamp.store(bucket, std::memory_order_release);
  }
  slot.epoch_end = (bucket + 1) << shift;
  slot.current = row;
}

}  // namespace detail

// Ids index the thread-local slot tables, so they are dense and reused; generations are never
// reused, so a slot left behind by a destroyed counter can never be mistaken for a new one.
struct CounterRegistry {
  std::mutex mu;
  std::vector<std::uint32_t> free_ids;
  std::uint32_t next_id = WindowCounter::kPinnedSlots;
  bool pinned_taken[WindowCounter::kPinnedSlots] = {};
  std::uint64_t next_generation = 1;
  std::unordered_map<std::uint64_t, WindowCounter*> live;

  static CounterRegistry& get() {
    static CounterRegistry* const r = new CounterRegistry;  // outlives every thread's exit hook
    return *r;
  }

  // A thread is exiting: its shards stay with their counters (so no count is lost) and become
  // free for the next thread that records.
  static void thread_exit() noexcept {
    detail::TlsShards& t = detail::tls_shards;
    CounterRegistry& r = get();
    auto release = [&r](detail::TlsSlot& s) {
      if (s.shard == nullptr) return;
      auto it = r.live.find(s.generation);
      if (it != r.live.end()) {  // else the counter is gone, and its shards with it
        std::lock_guard counter_lock(it->second->mu_);
        s.shard->orphaned = true;
      }
      s = {};
    };
    {
      std::lock_guard lock(r.mu);
      for (auto& s : detail::tls_inline) release(s);
      for (std::uint32_t i = 0; i < t.size; ++i) release(t.slots[i]);
    }
    delete[] t.slots;
    t = {nullptr, 0};
  }
};

namespace {

struct ThreadExitHook {
  bool armed = false;
  ~ThreadExitHook() {
    if (armed) CounterRegistry::thread_exit();
  }
};
thread_local ThreadExitHook tls_exit_hook;

}  // namespace

WindowCounter::WindowCounter(const Ticker& ticker, Options options, std::uint32_t pinned_slot)
    : ticker_(&ticker), epoch_(&ticker.epoch_word()) {
  const auto res = ticker.resolution();
  if (options.buckets == 0 || options.buckets > 65536) {
    throw std::invalid_argument("octo::WindowCounter: buckets must be in [1, 65536] (got " +
                                std::to_string(options.buckets) + ")");
  }
  if (options.lanes == 0 || options.lanes > kMaxLanes) {
    throw std::invalid_argument("octo::WindowCounter: lanes must be in [1, " +
                                std::to_string(kMaxLanes) + "] (got " +
                                std::to_string(options.lanes) + ")");
  }
  lanes_ = options.lanes;
  if (options.tallies > kMaxTallies) {
    throw std::invalid_argument("octo::WindowCounter: tallies must be at most " +
                                std::to_string(kMaxTallies) + " (got " +
                                std::to_string(options.tallies) + ")");
  }
  tallies_ = options.tallies;
  if (options.window < res) {
    throw std::invalid_argument(
        "octo::WindowCounter: window (" + std::to_string(options.window.count()) +
        " ns) must be at least the ticker's resolution (" + std::to_string(res.count()) + " ns)");
  }
  const auto ticks_per_bucket = std::max<std::int64_t>(1, (options.window / options.buckets) / res);
  shift_ =
      static_cast<std::uint32_t>(std::bit_width(static_cast<std::uint64_t>(ticks_per_bucket)) - 1);
  bucket_width_ = res * (std::int64_t{1} << shift_);
  buckets_ = static_cast<std::uint32_t>(std::clamp<std::int64_t>(
      (options.window.count() + bucket_width_.count() - 1) / bucket_width_.count(), 1, 65536));
  // One more slot than the window so the current bucket never overwrites one still inside it.
  ring_size_ = std::bit_ceil(buckets_ + 1);

  CounterRegistry& r = CounterRegistry::get();
  std::lock_guard lock(r.mu);
  if (pinned_slot != kNotPinned) {
    if (pinned_slot >= kPinnedSlots || r.pinned_taken[pinned_slot]) {
      throw std::invalid_argument(
          "octo::WindowCounter: pinned slot " + std::to_string(pinned_slot) +
          " is out of range or was taken before (pinned slots are permanent)");
    }
    r.pinned_taken[pinned_slot] = true;
    id_ = pinned_slot;
  } else if (!r.free_ids.empty()) {
    id_ = r.free_ids.back();
    r.free_ids.pop_back();
  } else {
    id_ = r.next_id++;
  }
  generation_ = r.next_generation++;
  r.live.emplace(generation_, this);
}

WindowCounter::WindowCounter(const Ticker& ticker, Options options)
    : WindowCounter(ticker, options, kNotPinned) {}

WindowCounter::~WindowCounter() {
  CounterRegistry& r = CounterRegistry::get();
  std::lock_guard lock(r.mu);
  r.live.erase(generation_);
  // A pinned slot is never given out again (threads' handles at it still name this counter).
  if (id_ >= kPinnedSlots) r.free_ids.push_back(id_);
}

detail::CounterShard* WindowCounter::take_shard() {
  for (auto& s : shards_) {
    if (s->orphaned) {
      s->orphaned = false;
      return s.get();
    }
  }
  shards_.push_back(std::make_unique<detail::CounterShard>(ring_size_, lanes_, tallies_));
  return shards_.back().get();
}

void WindowCounter::roll(detail::TlsSlot& s, std::uint64_t n) noexcept {
  detail::roll(s, ticker_->active_epoch(), shift_, n);
}

void WindowCounter::record_slow(std::uint64_t n) noexcept {
  if (detail::TlsSlot* slot = attach()) detail::roll(*slot, ticker_->active_epoch(), shift_, n);
}

std::atomic<std::uint64_t>* WindowCounter::row_slow() noexcept {
  detail::TlsSlot* slot = attach();
  if (slot == nullptr) return nullptr;
  detail::roll(*slot, ticker_->active_epoch(), shift_, 0);
  return slot->current;
}

WindowCounter::Rows WindowCounter::rows_slow() noexcept {
  detail::TlsSlot* slot = attach();
  if (slot == nullptr) return {nullptr, nullptr};
  detail::roll(*slot, ticker_->active_epoch(), shift_, 0);
  return {slot->current, slot->shard->tallies};
}

detail::TlsSlot* WindowCounter::attach() noexcept {
  try {
    tls_exit_hook.armed = true;
    detail::CounterShard* shard;
    {
      std::lock_guard lock(mu_);
      shard = take_shard();
    }
    detail::TlsSlot* slot;
    if (id_ < detail::kInlineSlots) {
      slot = detail::tls_slots() + id_;
    } else {
      detail::TlsShards& t = detail::tls_shards;
      const std::uint32_t index = id_ - detail::kInlineSlots;
      if (index >= t.size) {
        const std::uint32_t size = std::max<std::uint32_t>(index + 1, 2 * t.size);
        auto* slots = new detail::TlsSlot[size]();
        std::copy(t.slots, t.slots + t.size, slots);
        delete[] t.slots;
        t = {slots, size};
      }
      slot = &t.slots[index];
    }
    *slot = {generation_, 0, nullptr, shard};
    return slot;
  } catch (...) {
    // Out of memory for a first record on this thread: the event is dropped, nothing else breaks.
    return nullptr;
  }
}

std::uint64_t WindowCounter::sum_buckets(std::uint32_t n, std::uint64_t min_bucket,
                                         std::uint32_t lane) const {
  if (lane >= lanes_) return 0;
  std::uint64_t sum = 0;
  sum_lanes(n, min_bucket, lane, {&sum, 1});
  return sum;
}

void WindowCounter::sum_lanes(std::uint32_t n, std::uint64_t min_bucket, std::uint32_t first,
                              std::span<std::uint64_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  const std::uint64_t now = epoch_->load(std::memory_order_relaxed) >> shift_;
  std::lock_guard lock(mu_);
  for (const auto& s : shards_) {
    for (std::uint64_t i = 0; i <= s->mask; ++i) {
      // Seqlock reader (see roll). A bucket being restamped is skipped: what it held has left
      // the window, and what it gets is at most the one record() in progress.
      const std::uint64_t stamp = s->stamps[i].load(std::memory_order_acquire);
      // Signed age: a writer may stamp the next bucket just before this reader's epoch moves on.
      const auto age = static_cast<std::int64_t>(now - stamp);
      if (stamp == detail::CounterShard::kRolling || age < -1 ||
          age >= static_cast<std::int64_t>(n) || stamp < min_bucket)
        continue;
      const std::atomic<std::uint64_t>* row = s->counts + i * lanes_ + first;
      std::uint64_t counts[kMaxLanes];
      for (std::size_t l = 0; l < out.size(); ++l)
        counts[l] = row[l].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s->stamps[i].load(std::memory_order_relaxed) != stamp) continue;
      for (std::size_t l = 0; l < out.size(); ++l) out[l] += counts[l];
    }
  }
}

void WindowCounter::sums(std::span<std::uint64_t> out) const {
  if (out.size() > lanes_) throw_too_many_lanes(out.size());
  sum_lanes(buckets_, 0, 0, out);
}

void WindowCounter::sums_after(std::uint64_t bucket, std::span<std::uint64_t> out) const {
  if (out.size() > lanes_) throw_too_many_lanes(out.size());
  sum_lanes(buckets_, bucket + 1, 0, out);
}

void WindowCounter::throw_too_many_lanes(std::size_t asked) const {
  throw std::invalid_argument("octo::WindowCounter: " + std::to_string(asked) +
                              " lanes asked for, the counter has " + std::to_string(lanes_));
}

std::uint64_t WindowCounter::sum(std::chrono::nanoseconds window, std::uint32_t lane) const {
  const auto n = (window.count() + bucket_width_.count() - 1) / bucket_width_.count();
  return sum_buckets(static_cast<std::uint32_t>(std::clamp<std::int64_t>(n, 1, buckets_)), 0, lane);
}

std::uint64_t WindowCounter::sum_after(std::uint64_t bucket, std::uint32_t lane) const {
  return sum_buckets(buckets_, bucket + 1, lane);
}

double WindowCounter::rate() const {
  return static_cast<double>(sum()) / std::chrono::duration<double>(window()).count();
}

std::uint64_t WindowCounter::total(std::uint32_t lane) const {
  if (lane >= lanes_) return 0;
  std::uint64_t sum = 0;
  std::lock_guard lock(mu_);
  for (const auto& s : shards_) {
    sum += s->expired[lane].load(std::memory_order_relaxed);
    for (std::uint64_t i = 0; i <= s->mask; ++i) {
      sum += s->counts[i * lanes_ + lane].load(std::memory_order_relaxed);
    }
  }
  return sum;
}

void WindowCounter::read_tallies(std::span<std::uint32_t> out) const {
  const std::size_t n = std::min<std::size_t>(out.size(), tallies_);
  std::fill_n(out.begin(), n, 0U);
  std::lock_guard lock(mu_);
  for (const auto& s : shards_) {
    for (std::size_t i = 0; i < n; ++i) out[i] += s->tallies[i].load(std::memory_order_relaxed);
  }
}

std::size_t WindowCounter::shard_count() const {
  std::lock_guard lock(mu_);
  return shards_.size();
}

}  // namespace octo

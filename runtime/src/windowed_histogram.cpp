#include "octo/windowed_histogram.hpp"

#include <cmath>
#include <new>
#include <stdexcept>
#include <string>

namespace octo {

namespace {

const SteadyClock kSteady;

}  // namespace

std::uint64_t HistogramSnapshot::quantile(double q) const noexcept {
  const int b = HistogramBuckets::quantile_bucket(counts, count, q);
  return b < 0 ? 0 : HistogramBuckets::midpoint(b);
}

std::uint64_t HistogramSnapshot::max() const noexcept {
  const int b = HistogramBuckets::top_bucket(counts);
  return b < 0 ? 0 : HistogramBuckets::midpoint(b);
}

std::uint64_t HistogramSnapshot::count_at_most(std::uint64_t bound) const noexcept {
  return HistogramBuckets::count_at_most(counts, bound);
}

void HistogramSnapshot::merge(const HistogramSnapshot& other) {
  if (other.counts.empty()) return;
  if (counts.empty()) counts.assign(HistogramBuckets::kCount, 0);
  for (std::size_t b = 0; b < counts.size(); ++b) counts[b] += other.counts[b];
  count += other.count;
  sum += other.sum;
}

WindowedHistogram::WindowedHistogram(Options options)
    : window_(options.window),
      slot_(options.slots == 0 ? options.window : options.window / options.slots),
      slots_(options.slots),
      clock_(options.clock != nullptr ? options.clock : &kSteady) {
  if (options.window.count() <= 0) {
    throw std::invalid_argument("octo::WindowedHistogram: window must be > 0 (got " +
                                std::to_string(options.window.count()) + " ns)");
  }
  if (options.slots == 0 || options.slots > 1000) {
    throw std::invalid_argument("octo::WindowedHistogram: slots must be in [1, 1000] (got " +
                                std::to_string(options.slots) + ")");
  }
  if (slot_.count() == 0) {
    throw std::invalid_argument("octo::WindowedHistogram: window / slots must be >= 1 ns");
  }
  Reading start;
  start.at_ns = now_ns();
  last_ = start;
  next_roll_ns_.store(start.at_ns + slot_.count(), std::memory_order_relaxed);
  ring_.push_back(std::move(start));
}

WindowedHistogram::~WindowedHistogram() = default;

void WindowedHistogram::record_slow(std::uint64_t value) noexcept {
  const std::uint32_t t = detail::acquire_thread_index();
  std::lock_guard lock(mu_);
  if (t == detail::kNoThreadIndex) {
    if (!shared_) shared_.reset(new (std::nothrow) Shard);
    if (!shared_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    shared_->counts[HistogramBuckets::bucket_of(value)].fetch_add(1, std::memory_order_relaxed);
    shared_->sum.fetch_add(value, std::memory_order_relaxed);
    return;
  }
  Shard* s = shards_[t].load(std::memory_order_relaxed);
  if (s == nullptr) {
    try {
      owned_.push_back(std::make_unique<Shard>());
    } catch (const std::bad_alloc&) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    s = owned_.back().get();
    // Release: pairs with record()'s acquire on a thread that later holds this number.
    shards_[t].store(s, std::memory_order_release);
  }
  // This thread owns number t, so it is the shard's only writer (see record()).
  auto& c = s->counts[HistogramBuckets::bucket_of(value)];
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  s->sum.store(s->sum.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
}

WindowedHistogram::Reading WindowedHistogram::read_shards(std::int64_t at_ns) const {
  Reading r;
  r.at_ns = at_ns;
  const auto add = [&r](const Shard& s) {
    if (r.counts.empty()) r.counts.assign(HistogramBuckets::kCount, 0);
    for (std::size_t b = 0; b < r.counts.size(); ++b)
      r.counts[b] += s.counts[b].load(std::memory_order_relaxed);
    r.sum += s.sum.load(std::memory_order_relaxed);
  };
  for (const auto& s : owned_) add(*s);
  if (shared_) add(*shared_);
  return r;
}

namespace {

// counts (modulo 2^32) of `now` minus `then`, as 64-bit counts.
void difference(const std::vector<std::uint32_t>& now, const std::vector<std::uint32_t>& then,
                HistogramSnapshot& out) {
  if (now.empty()) return;
  out.counts.assign(HistogramBuckets::kCount, 0);
  for (std::size_t b = 0; b < now.size(); ++b) {
    const std::uint32_t d = then.empty() ? now[b] : now[b] - then[b];
    out.counts[b] = d;
    out.count += d;
  }
  if (out.count == 0) out.counts.clear();
}

}  // namespace

void WindowedHistogram::roll_locked(std::int64_t now) const {
  if (now - ring_.back().at_ns < slot_.count()) return;
  Reading r = read_shards(now);
  // The all-time counts advance by what arrived since the last roll.
  HistogramSnapshot d;
  difference(r.counts, last_.counts, d);
  if (!d.counts.empty()) {
    if (totals_.empty()) totals_.assign(HistogramBuckets::kCount, 0);
    for (std::size_t b = 0; b < totals_.size(); ++b) totals_[b] += d.counts[b];
  }
  last_ = r;
  if (ring_.size() == static_cast<std::size_t>(slots_) + 1) ring_.erase(ring_.begin());
  ring_.push_back(std::move(r));
  next_roll_ns_.store(now + slot_.count(), std::memory_order_relaxed);
}

void WindowedHistogram::roll() const {
  const std::int64_t now = now_ns();
  if (now < next_roll_ns_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(mu_);
  roll_locked(now);
}

HistogramSnapshot WindowedHistogram::window() const {
  std::lock_guard lock(mu_);
  const std::int64_t now = now_ns();
  roll_locked(now);
  // The newest reading at least a window old, else the oldest kept (the histogram is younger
  // than its window, and that reading is its first).
  const Reading* base = &ring_.front();
  for (const Reading& r : ring_) {
    if (now - r.at_ns >= window_.count()) base = &r;
  }
  const Reading cur = read_shards(now);
  HistogramSnapshot s;
  difference(cur.counts, base->counts, s);
  s.sum = cur.sum - base->sum;
  return s;
}

HistogramSnapshot WindowedHistogram::total() const {
  std::lock_guard lock(mu_);
  const Reading cur = read_shards(now_ns());
  HistogramSnapshot s;
  difference(cur.counts, last_.counts, s);
  if (!totals_.empty()) {
    if (s.counts.empty()) s.counts.assign(HistogramBuckets::kCount, 0);
    for (std::size_t b = 0; b < totals_.size(); ++b) {
      s.counts[b] += totals_[b];
      s.count += totals_[b];
    }
  }
  s.sum = cur.sum;
  return s;
}

std::size_t WindowedHistogram::shard_count() const {
  std::lock_guard lock(mu_);
  return owned_.size() + (shared_ ? 1 : 0);
}

}  // namespace octo

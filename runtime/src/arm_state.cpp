#include "detail/arm_state.hpp"

namespace octo::detail {

namespace {

DurationSummary summarize(const HistogramSnapshot& h) {
  DurationSummary d;
  d.count = h.count;
  d.p50 = std::chrono::nanoseconds(h.quantile(0.50));
  d.p90 = std::chrono::nanoseconds(h.quantile(0.90));
  d.p99 = std::chrono::nanoseconds(h.quantile(0.99));
  d.p999 = std::chrono::nanoseconds(h.quantile(0.999));
  d.max = std::chrono::nanoseconds(h.max());
  return d;
}

}  // namespace

ArmStatus ArmState::status() const {
  ArmStatus s;
  s.name = name;
  s.enabled = enabled.load(std::memory_order_relaxed);
  s.paused = paused.load(std::memory_order_relaxed);
  s.blocking = blocking;
  s.threads = pool ? pool->thread_count() : 0;
  s.max_parallel = max_parallel.load(std::memory_order_relaxed);
  s.active = active.load(std::memory_order_relaxed);
  s.pending = pending();
  s.queued = static_cast<std::uint64_t>(std::max<std::int64_t>(0, queued()));
  s.delayed = delayed.load(std::memory_order_relaxed);
  s.waiting_on_key = keys ? keys->parked() : 0;
  s.max_parallel_per_key = keys ? keys->limit() : 0;
  s.accepted = accepted.load(std::memory_order_relaxed);
  s.processed = processed.load(std::memory_order_relaxed);
  s.succeeded = succeeded.load(std::memory_order_relaxed);
  s.failed = failed.load(std::memory_order_relaxed);
  s.retried = retried.load(std::memory_order_relaxed);
  s.dead_lettered = dead_lettered.load(std::memory_order_relaxed);
  s.cancelled = cancelled.load(std::memory_order_relaxed);
  s.rejected = rejected.load(std::memory_order_relaxed);
  s.expired = expired.load(std::memory_order_relaxed);
  s.overran = overran.load(std::memory_order_relaxed);
  s.last_run = std::chrono::system_clock::time_point(
      std::chrono::system_clock::duration(last_run_ns.load(std::memory_order_relaxed)));
  s.queue_wait = summarize(queue_wait.window());
  s.run_time = summarize(run_time.window());
  return s;
}

}  // namespace octo::detail

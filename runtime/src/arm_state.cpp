#include "detail/arm_state.hpp"

namespace octo::detail {

ArmStatus ArmState::status() const {
  ArmStatus s;
  s.name = name;
  s.enabled = enabled.load(std::memory_order_relaxed);
  s.max_parallel = max_parallel.load(std::memory_order_relaxed);
  s.active = active.load(std::memory_order_relaxed);
  s.pending = pending();
  s.queued = static_cast<std::uint64_t>(std::max<std::int64_t>(0, queued()));
  s.delayed = delayed.load(std::memory_order_relaxed);
  s.accepted = accepted.load(std::memory_order_relaxed);
  s.processed = processed.load(std::memory_order_relaxed);
  s.succeeded = succeeded.load(std::memory_order_relaxed);
  s.failed = failed.load(std::memory_order_relaxed);
  s.retried = retried.load(std::memory_order_relaxed);
  s.dead_lettered = dead_lettered.load(std::memory_order_relaxed);
  s.cancelled = cancelled.load(std::memory_order_relaxed);
  s.rejected = rejected.load(std::memory_order_relaxed);
  s.last_run = std::chrono::system_clock::time_point(
      std::chrono::system_clock::duration(last_run_ns.load(std::memory_order_relaxed)));
  const auto wait = queue_wait.snapshot();
  const auto run = run_time.snapshot();
  s.queue_wait_p50 = std::chrono::nanoseconds(wait.quantile(0.50));
  s.queue_wait_p99 = std::chrono::nanoseconds(wait.quantile(0.99));
  s.run_time_p50 = std::chrono::nanoseconds(run.quantile(0.50));
  s.run_time_p99 = std::chrono::nanoseconds(run.quantile(0.99));
  return s;
}

}  // namespace octo::detail

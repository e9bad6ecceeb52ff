// One arm's state inside the executor: its configuration, its four priority queues and the
// counters that producers, drainers and the timer update (grouped by writer so that they do not
// share cache lines). The lock-free handshake that uses them lives in executor.cpp; this header
// holds the data and the slot type the queues carry.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>

#include <memory>

#include <concurrentqueue/concurrentqueue.h>

#include "detail/blocking_pool.hpp"
#include "detail/key_limiter.hpp"
#include "detail/producer_tokens.hpp"
#include "detail/task_slab.hpp"
#include "detail/work.hpp"
#include "octo/arm.hpp"
#include "octo/cycle_clock.hpp"
#include "octo/detail/job.hpp"
#include "octo/status.hpp"
#include "octo/windowed_histogram.hpp"

namespace octo::detail {

// Queue blocks of 512 slots (12 KiB) instead of moodycamel's 32: each block boundary costs the
// producer a block from the free list and an index update, and the consumers a block return, all
// on lines the other side touches. Measured: no-op submit() ~1.4x faster (docs/benchmarks.md).
struct QueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static constexpr std::size_t BLOCK_SIZE = 512;
};
using WorkQueue = moodycamel::ConcurrentQueue<Work, QueueTraits>;

// Counters are grouped by writer so that producers and drainers do not share cache lines.
struct alignas(64) ArmState {
  ArmState(const ArmConfig& c, ArmId arm_id, std::chrono::nanoseconds latency_window)
      : name(c.name),
        id(arm_id),
        capacity(static_cast<std::int64_t>(std::min<std::size_t>(c.capacity, INT64_MAX))),
        max_attempts(c.max_attempts),
        backoff_base(c.backoff_base),
        backoff_max(c.backoff_max),
        handler(c.handler),
        blocking(c.blocking),
        timeout_ticks(c.timeout ? std::max<std::uint64_t>(1, CycleClock::from_ns(*c.timeout)) : 0),
        max_parallel(c.max_parallel),
        enabled(c.enabled),
        queue_wait({.window = latency_window}),
        run_time({.window = latency_window}) {}

  const std::string name;
  const ArmId id;
  const std::int64_t capacity;
  const std::uint32_t max_attempts;
  const std::chrono::milliseconds backoff_base, backoff_max;
  const Handler handler;
  const bool blocking;
  const std::uint64_t timeout_ticks;  // ArmConfig::timeout in CycleClock ticks; 0 = none
  // A blocking arm's threads (set once by the executor, before the arm is visible).
  std::unique_ptr<BlockingPool> pool;
  std::atomic<std::uint32_t> max_parallel;
  std::atomic<bool> enabled;
  // pause(): drainers stop taking work and wake() spawns none. seq_cst where it pairs with
  // `active` (see Executor::Impl::retire and resume).
  std::atomic<bool> paused{false};

  static_assert(kPriorityCount == 4, "one initializer per priority");
  // One block ready per priority (moodycamel's default is six); more come on demand and are
  // reused, never freed, until the arm dies.
  WorkQueue queues[kPriorityCount]{
      WorkQueue(QueueTraits::BLOCK_SIZE), WorkQueue(QueueTraits::BLOCK_SIZE),
      WorkQueue(QueueTraits::BLOCK_SIZE), WorkQueue(QueueTraits::BLOCK_SIZE)};
  // After the queues: destroyed before them.
  ProducerTokens producers[kPriorityCount];

  // Pushes `w` at priority `p` through the calling thread's token (or without one); false when
  // the queue could not allocate a block.
  bool enqueue(int p, const Work& w) noexcept {
    if (moodycamel::ProducerToken* t = producers[p].token(queues[p]))
      return queues[p].enqueue(*t, w);
    return queues[p].enqueue(w);
  }

  // Queue depth is accepted + requeued - taken, split so that producers and drainers each write
  // their own cache line. Producers bump `accepted` just before each push: it is the one RMW of
  // the enqueue path and the signal of the lost-wake-up guard. The timer bumps `requeued` before
  // re-pushing a retry; drainers bump `taken` once per batch. `taken_seen` is the producers'
  // cached copy of `taken`, refreshed every few pushes and when the arm looks full.
  alignas(64) std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> taken_seen{0};
  std::atomic<std::uint64_t> requeued{0};
  std::atomic<std::uint64_t> rejected{0};
  alignas(64) std::atomic<std::uint64_t> taken{0};
  alignas(64) std::atomic<std::uint32_t> active{0};
  alignas(64) std::atomic<std::uint64_t> processed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> succeeded{0};
  std::atomic<std::uint64_t> dead_lettered{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<std::uint64_t> delayed{0};
  std::atomic<std::uint64_t> expired{0};
  std::atomic<std::uint64_t> overran{0};
  std::atomic<std::int64_t> last_run_ns{0};
  // Every task's enqueue-to-start wait and run time, in nanoseconds.
  WindowedHistogram queue_wait;
  WindowedHistogram run_time;
  std::uint64_t watched_progress = 0;  // timer thread only
  // ArmConfig::max_parallel_per_key's limiter (set once, before the arm is visible); null: none.
  // Last: placed among the configuration it moved the queues and the counters' lines, and the
  // no-op benchmarks lost a fifth (docs/benchmarks.md).
  std::unique_ptr<KeyLimiter> keys;

  // Finished counters are read before `accepted`: a task is accepted before it can finish, and the
  // seq_cst increments order the two, so the difference never goes negative.
  std::uint64_t finished() const noexcept {
    return succeeded.load(std::memory_order_seq_cst) +
           dead_lettered.load(std::memory_order_seq_cst) +
           cancelled.load(std::memory_order_seq_cst);
  }
  std::uint64_t pending() const noexcept {
    const std::uint64_t done = finished();
    return accepted.load(std::memory_order_seq_cst) - done;
  }
  // Tasks announced and not yet taken; `taken` is read first so the estimate can only be high.
  // It counts a push still in flight (or being rolled back): a drainer that sees such a task but
  // cannot dequeue it yet yields and looks again.
  std::int64_t queued() const noexcept {
    const std::uint64_t t = taken.load(std::memory_order_seq_cst);
    const std::uint64_t r = requeued.load(std::memory_order_seq_cst);
    return static_cast<std::int64_t>(accepted.load(std::memory_order_seq_cst) + r - t);
  }

  // The counters and latency quantiles as an ArmStatus (relaxed reads: a snapshot for people,
  // not a synchronisation). In arm_state.cpp.
  ArmStatus status() const;
};

}  // namespace octo::detail

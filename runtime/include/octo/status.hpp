// octo/status.hpp — point-in-time views of the executor, for operators and tests.
//
// Counters are read with plain atomic loads while work continues; after quiescence (wait_idle or
// shutdown) they satisfy accepted == succeeded + dead_lettered + cancelled + pending exactly.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace octo {

// Percentiles of one duration over the executor's window (ExecutorConfig::latency_window), from
// every task (octo/windowed_histogram.hpp: within 0.78%).
struct DurationSummary {
  std::uint64_t count = 0;
  std::chrono::nanoseconds p50{0}, p90{0}, p99{0}, p999{0}, max{0};
};

struct ArmStatus {
  std::string name;
  bool enabled = false;
  bool paused = false;        // pause(): queued work is held, enqueue still accepts
  bool blocking = false;      // runs on threads of its own (ArmConfig::blocking)
  std::uint32_t threads = 0;  // a blocking arm's threads (created on demand, <= max_parallel)
  std::uint32_t max_parallel = 0;
  std::uint32_t active = 0;  // drainers running tasks right now (<= max_parallel)
  // A drainer of this arm waits for its next task, holding no task (ExecutorConfig::idle_spin and
  // idle_park; at most one arm of an executor at a time), and whether it is parked (blocked) or
  // still polling.
  bool idle_drainer = false;
  bool idle_parked = false;
  std::uint64_t queued = 0;   // waiting in the arm's queues
  std::uint64_t delayed = 0;  // in the timer: waiting for a retry's delay or a task's run_at
  // Parked until their Task::key has a free slot (ArmConfig::max_parallel_per_key).
  std::uint64_t waiting_on_key = 0;
  std::uint32_t max_parallel_per_key = 0;  // 0: no per-key limit
  std::uint64_t pending = 0;  // accepted and not yet finished (queued, delayed, parked, running)
  std::uint64_t accepted = 0;
  std::uint64_t processed = 0;  // handler runs, every attempt
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;  // failed attempts (each retry and the final one)
  std::uint64_t retried = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t rejected = 0;  // full or disabled
  std::uint64_t expired = 0;   // not started by their deadline (also counted in dead_lettered)
  std::uint64_t stuck = 0;     // running now, past the arm's timeout or the task's deadline
  std::uint64_t overran = 0;   // runs that finished after their timeout or deadline
  std::chrono::system_clock::time_point last_run{};  // epoch when never run
  // Every task: enqueue-to-start, and each run's duration.
  DurationSummary queue_wait, run_time;
};

struct RuntimeStatus {
  std::vector<ArmStatus> arms;
  std::uint64_t accepted = 0, succeeded = 0, failed = 0, retried = 0, dead_lettered = 0,
                cancelled = 0, pending = 0, queued = 0, expired = 0, stuck = 0;
  // All rejections: per-arm ones plus those with no arm (unroutable type, stopped executor).
  std::uint64_t rejected = 0;
  std::uint64_t rejected_unroutable = 0, rejected_stopped = 0;
  // Unfinished tasks re-enqueued from the journal when the executor started (counted in accepted).
  std::uint64_t recovered = 0;
  bool stopping = false;
};

}  // namespace octo

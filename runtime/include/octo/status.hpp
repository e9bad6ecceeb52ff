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

struct ArmStatus {
  std::string name;
  bool enabled = false;
  std::uint32_t max_parallel = 0;
  std::uint32_t active = 0;   // drainers running tasks right now (<= max_parallel)
  std::uint64_t queued = 0;   // waiting in the arm's queues
  std::uint64_t delayed = 0;  // waiting for a retry delay
  std::uint64_t pending = 0;  // accepted and not yet finished (queued, delayed or running)
  std::uint64_t accepted = 0;
  std::uint64_t processed = 0;  // handler runs, every attempt
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;  // failed attempts (each retry and the final one)
  std::uint64_t retried = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t rejected = 0;                        // full or disabled
  std::chrono::system_clock::time_point last_run{};  // epoch when never run
  // Sampled (one task in Executor::kSampleEvery): enqueue-to-start and run durations.
  std::chrono::nanoseconds queue_wait_p50{0}, queue_wait_p99{0};
  std::chrono::nanoseconds run_time_p50{0}, run_time_p99{0};
};

struct RuntimeStatus {
  std::vector<ArmStatus> arms;
  std::uint64_t accepted = 0, succeeded = 0, failed = 0, retried = 0, dead_lettered = 0,
                cancelled = 0, pending = 0, queued = 0;
  // All rejections: per-arm ones plus those with no arm (unroutable type, stopped executor).
  std::uint64_t rejected = 0;
  std::uint64_t rejected_unroutable = 0, rejected_stopped = 0;
  // Unfinished tasks re-enqueued from the journal when the executor started (counted in accepted).
  std::uint64_t recovered = 0;
  bool stopping = false;
};

}  // namespace octo

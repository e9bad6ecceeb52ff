// octo/arm.hpp — configuration of one Octopus arm.
//
// An arm is a named lane of background work with a hard concurrency limit (`max_parallel`), a
// bounded queue (`capacity`, tasks waiting, not running) and a retry policy. `default_arms()` gives
// the original eight. Handlers run typed tasks routed to the arm; `submit()` callables need none.
//
// Blocking arms (`blocking = true`) run on threads of their own, created when work first arrives
// and at most `max_parallel` of them, so a handler that waits seconds on I/O holds only its own
// arm; the others run on the executor's TBB arena, one thread per core, and their handlers must
// not block.
//
//   octo::ArmConfig deploy{.name = "deploy", .max_parallel = 2, .blocking = true,
//                          .timeout = std::chrono::minutes(5)};
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "octo/context.hpp"
#include "octo/task.hpp"

namespace octo {

// Index of an arm inside one executor; stable for the executor's lifetime (arms are never removed).
using ArmId = std::uint32_t;

using Handler = std::function<Outcome(const Task&, const Context&)>;

struct ArmConfig {
  std::string name;
  std::uint32_t max_parallel = 1;
  // At most this many tasks with one Task::key run at once (one repair per agent, two deploys per
  // service); tasks without a key are not limited by it. A drainer that meets a task of a busy key
  // parks it and runs the next task, so a busy key never holds up the others; when the key frees,
  // its oldest parked task goes to the back of its priority's queue (round-robin between keys).
  // A parked task is counted in ArmStatus::waiting_on_key; it is cancellable, and its deadline is
  // checked when it is queued again. nullopt = no per-key limit; 0 is refused.
  std::optional<std::uint32_t> max_parallel_per_key{};
  // Handlers wait (I/O, subprocesses, sleeps): run them on the arm's own threads, not the arena.
  bool blocking = false;
  bool enabled = true;
  // How long one run may take. At the timeout the running task is asked to stop (see
  // octo/this_task.hpp: cooperative, it is never killed) and from then on it is reported as
  // stuck in status and metrics. nullopt = no limit; zero or negative is refused.
  std::optional<std::chrono::nanoseconds> timeout{};
  // Tasks waiting in the arm's queues; enqueue beyond it is rejected with EnqueueError::kFull.
  std::size_t capacity = 1u << 20;
  // Runs before dead-lettering (a task's own max_attempts overrides it).
  std::uint32_t max_attempts = 3;
  // Retry delay: min(backoff_max, backoff_base * 2^(attempt-1)), with "equal jitter" (half fixed,
  // half uniform random) so that retries of a failed burst spread out.
  std::chrono::milliseconds backoff_base{50};
  std::chrono::milliseconds backoff_max{10'000};
  // Runs typed tasks routed here; may be empty when the arm only takes submit() callables.
  Handler handler;
};

// deploy 2, batch 4, streams 2, secrets 1, builds 2, watchers 2, cleanup 2, analytics 2 (max
// parallel). All but batch and analytics are blocking: they deploy, build, rotate secrets, read
// streams, watch and clean up through I/O. With the default ExecutorConfig a handler blocked on
// one arm therefore never holds back another arm's task.
std::vector<ArmConfig> default_arms();

// The delay before retry number `attempt` (1-based: the delay after the first failure is attempt
// 1). `unit_random` in [0, 1) picks the jittered half. Exposed for tests and documentation.
std::chrono::nanoseconds backoff_delay(std::uint32_t attempt, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, double unit_random) noexcept;

}  // namespace octo

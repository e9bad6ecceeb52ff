// octo/arm.hpp — configuration of one Octopus arm.
//
// An arm is a named lane of background work with a hard concurrency limit (`max_parallel`), a
// bounded queue (`capacity`, tasks waiting, not running) and a retry policy. `default_arms()` gives
// the original eight. Handlers run typed tasks routed to the arm; `submit()` callables need none.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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
  bool enabled = true;
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

// deploy 2, batch 4, streams 2, secrets 1, builds 2, watchers 2, cleanup 2, analytics 2.
std::vector<ArmConfig> default_arms();

// The delay before retry number `attempt` (1-based: the delay after the first failure is attempt
// 1). `unit_random` in [0, 1) picks the jittered half. Exposed for tests and documentation.
std::chrono::nanoseconds backoff_delay(std::uint32_t attempt, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, double unit_random) noexcept;

}  // namespace octo

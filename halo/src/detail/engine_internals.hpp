// The Engine's private types and constants that its source files share: engine.cpp (lifecycle,
// the cycle, dispatch), engine_tracking.cpp (escalation bookkeeping) and engine_status.cpp
// (approvals, status, history).
#pragma once

#include <tbb/task_arena.h>

#include <cstddef>
#include <cstdint>

#include "detail/parallel.hpp"
#include "halo/engine.hpp"

namespace halo {

struct Engine::Arena {
  // One slot (the calling thread) under TSan: see detail/parallel.hpp.
  explicit Arena(int concurrency)
      : arena(detail::kSerialForTsan ? 1
              : concurrency > 0      ? concurrency
                                     : tbb::task_arena::automatic) {}
  tbb::task_arena arena;
};

// Per weak point, across cycles: consecutive sightings, escalation from failed repairs, and the
// analyzers that reported it, as bits (it is forgotten only by a cycle in which they all ran).
struct Engine::Tracked {
  std::uint32_t cycles_seen = 0;
  std::uint32_t failure_escalation = 0;
  std::uint64_t last_seen = 0;
  std::uint64_t analyzers = 0;
};

namespace detail {

// Weak points below which a cycle's side jobs (sizing beside tracking, tracking's shards, the
// audit append beside freeing) run one after another: on small states (1,000 subjects, ~10 weak
// points) spawning them cost the 2-thread cycle ~35 %.
inline constexpr std::size_t kParallelMin = 256;

}  // namespace detail
}  // namespace halo

// The Engine's private types and constants that its source files share: engine.cpp (lifecycle,
// the cycle, dispatch), engine_tracking.cpp (escalation bookkeeping) and engine_status.cpp
// (approvals, status, history).
#pragma once

#include <tbb/task_arena.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

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
  Level severity = Level::kInfo;  // the last cycle's (a rise to kCritical is an event)
  std::uint64_t last_seen = 0;
  std::uint64_t analyzers = 0;
};

// The subscribers and their queue; the thread that delivers starts with the first subscribe().
struct Engine::Events {
  octo::detail::Mutex mu;
  std::condition_variable cv;
  std::deque<Event> queue OCTO_GUARDED_BY(mu);
  // Shared: a handler being called survives its unsubscribe().
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const EventHandler>>> subscribers
      OCTO_GUARDED_BY(mu);
  std::uint64_t next_id OCTO_GUARDED_BY(mu) = 1;
  bool stopping OCTO_GUARDED_BY(mu) = false;
  bool started OCTO_GUARDED_BY(mu) = false;
  std::uint64_t delivered OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t dropped OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t failed OCTO_GUARDED_BY(mu) = 0;
  std::thread thread;  // started under mu, joined by the engine's destructor
  // Whether anyone subscribes: read without mu by a cycle before it builds events (relaxed: a
  // subscriber added during a cycle may miss that cycle's events, as it would by a moment).
  std::atomic<bool> active{false};

  void deliver_loop();
  void stop();
};

namespace detail {

// Weak points below which a cycle's side jobs (sizing beside tracking, tracking's shards, the
// audit append beside freeing) run one after another: on small states (1,000 subjects, ~10 weak
// points) spawning them cost the 2-thread cycle ~35 %.
inline constexpr std::size_t kParallelMin = 256;

}  // namespace detail
}  // namespace halo

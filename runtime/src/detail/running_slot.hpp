// What one drainer thread is running, for the threads that watch it: shutdown (is anything still
// in a handler?), the timer (has a run passed its timeout or deadline? then ask it to stop),
// cancel(id) (which run is that task?) and octo::this_task (has a stop been asked for me?).
//
// The drainer writes its run's fields before each task, on a line only it writes per task; other
// threads ask for a stop by storing the run's number into stop_seq, so a request that arrives
// after the run ended (its number is gone) is ignored by the next one.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <stop_token>

#include "octo/detail/annotated_mutex.hpp"
#include "octo/task.hpp"

namespace octo::detail {

struct alignas(64) RunningSlot {
  // Drainer-written, per run.
  std::atomic<std::uint32_t> running{0};  // 1 while in a handler (or about to find it cancelled)
  std::atomic<std::uint32_t> arm{0};
  std::atomic<std::uint64_t> seq{0};      // this run's number (1, 2, ...; 0 = none yet)
  std::atomic<TaskId> task{0};            // the typed task's id, 0 for submit() callables
  std::atomic<std::uint64_t> stop_at{0};  // ticks of its timeout or deadline; 0 = none
  std::atomic<bool> has_source{false};    // this_task::stop_token() set `source` (same thread)
  // Written by others (a separate line: the drainer only reads them).
  alignas(64) std::atomic<std::uint64_t> stop_seq{0};  // == seq: stop requested for this run
  std::atomic<std::uint64_t> cancel_seq{0};            // == seq: by cancel(id) or shutdown
  Mutex source_mu;
  std::stop_source* source OCTO_GUARDED_BY(source_mu) = nullptr;  // this_task::stop_token()

  // Relaxed throughout: a stop request is a flag that a handler polls; it publishes no data, and
  // a request seen a little late is seen at the next poll.
  bool stop_requested_now(std::uint64_t now_ticks) const noexcept {
    const std::uint64_t s = seq.load(std::memory_order_relaxed);
    if (stop_seq.load(std::memory_order_relaxed) == s) return true;
    const std::uint64_t at = stop_at.load(std::memory_order_relaxed);
    return at != 0 && now_ticks >= at;
  }

  // Asks run `s` to stop (a no-op if it has ended), waking its stop_token if it took one.
  void request_stop(std::uint64_t s, bool cancel) noexcept {
    if (cancel) cancel_seq.store(s, std::memory_order_relaxed);
    stop_seq.store(s, std::memory_order_relaxed);
    // Acquire pairs with stop_token()'s release: a set flag means the source exists (the mutex
    // then orders the rest).
    if (has_source.load(std::memory_order_acquire)) {
      LockGuard lock(source_mu);
      if (source != nullptr && seq.load(std::memory_order_relaxed) == s) source->request_stop();
    }
  }
};

}  // namespace octo::detail

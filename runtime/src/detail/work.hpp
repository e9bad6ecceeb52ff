// The slot an arm's queues carry: a typed task's node or a submit() callable, with its enqueue
// time and flags packed beside it.
#pragma once

#include <cstdint>
#include <type_traits>

#include "detail/task_slab.hpp"
#include "octo/detail/job.hpp"

namespace octo::detail {

// One queue slot, 24 bytes and trivially copyable (the queue moves it with a plain copy).
// Ownership is explicit: whoever holds a Work calls finish() on it exactly once.
struct Work {
  static constexpr std::uint64_t kStampMask = (std::uint64_t{1} << 48) - 1;
  // A typed task's top bit (its attempts live in its node): the task has a deadline, so the
  // drainer checks the node's deadline only for tasks that have one.
  static constexpr std::uint64_t kHasDeadline = std::uint64_t{1} << 63;
  // A typed task's next bit: the task already holds a slot of its key (handed over by the key's
  // last task, see key_limiter.hpp), so the drainer runs it without admitting it again.
  static constexpr std::uint64_t kKeyHeld = std::uint64_t{1} << 62;

  const detail::JobOps* ops = nullptr;  // submit(): the callable's ops; nullptr for typed tasks
  std::uintptr_t word = 0;              // the callable (or its heap copy), or the TaskNode*
  // submit() attempt << 48 (typed tasks: kHasDeadline, kKeyHeld) | enqueue time (CycleClock ticks,
  // low 48 bits: at 3 GHz they wrap after 26 hours, and a wait is their difference modulo 2^48).
  std::uint64_t meta = 0;

  TaskNode* node() const noexcept { return ops ? nullptr : reinterpret_cast<TaskNode*>(word); }
  std::uint64_t stamp() const noexcept { return meta & kStampMask; }
  std::uint32_t attempt() const noexcept {
    const TaskNode* n = node();
    return n ? n->task.attempt : static_cast<std::uint32_t>(meta >> 48);
  }
  // Counts a new run; returns its 1-based number.
  std::uint32_t next_attempt() noexcept {
    if (TaskNode* n = node()) return ++n->task.attempt;
    // The count lives in the top 16 bits: adding keeps the runs before (max_attempts is at most
    // 65535, so it cannot carry out).
    meta += std::uint64_t{1} << 48;
    return static_cast<std::uint32_t>(meta >> 48);
  }
};
static_assert(sizeof(Work) == 24 && std::is_trivially_copyable_v<Work>);

}  // namespace octo::detail

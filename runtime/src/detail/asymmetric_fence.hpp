// An asymmetric memory fence: a free light side for a hot path and an expensive heavy side for a
// rare one, together as strong as a full fence on both. The heavy side makes every thread of the
// process execute a full barrier (Linux membarrier(2), MEMBARRIER_CMD_PRIVATE_EXPEDITED, or an
// mprotect of a scratch page, whose TLB shootdown interrupts every CPU running one of our threads,
// where membarrier is unavailable), so the light side needs only to keep the compiler from
// reordering.
//
//   hot:  flag.store(1, relaxed); light_fence(); if (stop.load(relaxed)) ...
//   cold: stop.store(true, relaxed); heavy_fence(); if (flag.load(relaxed)) ...
// Either the hot thread sees `stop`, or the cold one sees `flag` (or both).
//
// heavy_fence() costs a few microseconds (a system call and inter-processor interrupts).
#pragma once

#include <atomic>

namespace octo::detail {

inline void light_fence() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

void heavy_fence() noexcept;

}  // namespace octo::detail

// A small dense number for each live thread, for structures that keep one shard per thread in a
// flat array instead of a thread_local map (WindowedHistogram).
//
// Numbers start at 1 (0 means "none yet") and are reused: when a thread exits its number returns
// to a free list and a later thread may take it, inheriting the shards filed under it (one writer
// at a time: the hand-over goes through the allocator's mutex, so the new owner sees every write
// of the old one). At most kMaxThreadIndex threads hold a number at once; further threads, and a
// thread's own thread_local destructors after it released its number, get kNoThreadIndex from
// acquire_thread_index() while thread_index() stays 0 for them.
#pragma once

#include <cstdint>

namespace octo::detail {

inline constexpr std::uint32_t kMaxThreadIndex = 511;
inline constexpr std::uint32_t kNoThreadIndex = ~std::uint32_t{0};

// The thread's number, 0 while it has none; constinit, so reading it needs no TLS guard.
extern constinit thread_local std::uint32_t t_thread_index;

// This thread's number (assigned on first call): 1..kMaxThreadIndex, or kNoThreadIndex. Cold.
std::uint32_t acquire_thread_index() noexcept;

// The fast path: the number, or 0 when the thread has none (yet, or at all): always a valid
// index into an array of kMaxThreadIndex + 1 entries.
inline std::uint32_t thread_index() noexcept { return t_thread_index; }

}  // namespace octo::detail

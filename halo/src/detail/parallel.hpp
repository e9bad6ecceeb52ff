// The engine's data-parallel loops and sorts. Debian's libtbb is not built with ThreadSanitizer,
// so TSan cannot see the synchronization inside TBB's scheduler and reports every hand-off of a
// TBB task as a race. In TSan builds these run on the calling thread (and the engine's arena has
// one slot); every other build, ASan included, runs them on TBB.
#pragma once

#include <algorithm>
#include <cstddef>

#if !defined(__SANITIZE_THREAD__)
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>
#include <tbb/parallel_sort.h>
#endif

namespace halo::detail {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kSerialForTsan = true;
#else
inline constexpr bool kSerialForTsan = false;
#endif

// Calls f(begin, end) over [0, n) in pieces of about `grain`.
template <class F>
void parallel_ranges(std::size_t n, std::size_t grain, F&& f) {
#if defined(__SANITIZE_THREAD__)
  static_cast<void>(grain);
  if (n > 0) f(std::size_t{0}, n);
#else
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, grain),
                    [&](const tbb::blocked_range<std::size_t>& r) { f(r.begin(), r.end()); });
#endif
}

// Runs the callables at once as far as the arena has threads when `worth_it`; otherwise (and
// under TSan) one after another: for tiny jobs, spawning tasks costs more than it saves.
template <class... F>
void parallel_invoke(bool worth_it, F&&... f) {
#if defined(__SANITIZE_THREAD__)
  static_cast<void>(worth_it);
  (f(), ...);
#else
  if (worth_it) {
    tbb::parallel_invoke(f...);
  } else {
    (f(), ...);
  }
#endif
}

template <class It, class Less>
void parallel_sort(It begin, It end, Less less) {
#if defined(__SANITIZE_THREAD__)
  std::sort(begin, end, less);
#else
  tbb::parallel_sort(begin, end, less);
#endif
}

}  // namespace halo::detail

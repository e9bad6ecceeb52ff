// The executor's dead letters in memory: the newest `capacity`, the oldest dropped (and counted)
// first. Thread-safe; keep() is called by drainers and the timer, the readers are operators.
//
//   detail::DeadLetterStore store(1000);
//   store.keep(std::move(letter));        // may throw std::bad_alloc
//   auto letters = store.snapshot();      // oldest first
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "octo/dead_letter.hpp"
#include "octo/detail/annotated_mutex.hpp"

namespace octo::detail {

class DeadLetterStore {
 public:
  explicit DeadLetterStore(std::size_t capacity) : capacity_(capacity) {}

  void keep(DeadLetter&& letter) OCTO_EXCLUDES(mu_);
  // A dead letter that could not be built (out of memory): counted as dropped.
  void count_dropped() noexcept OCTO_EXCLUDES(mu_);
  std::vector<DeadLetter> snapshot() const OCTO_EXCLUDES(mu_);
  std::uint64_t dropped() const noexcept OCTO_EXCLUDES(mu_);

 private:
  const std::size_t capacity_;
  mutable Mutex mu_;
  std::deque<DeadLetter> letters_ OCTO_GUARDED_BY(mu_);
  std::uint64_t dropped_ OCTO_GUARDED_BY(mu_) = 0;
};

}  // namespace octo::detail

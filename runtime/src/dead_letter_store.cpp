#include "detail/dead_letter_store.hpp"

namespace octo::detail {

void DeadLetterStore::keep(DeadLetter&& letter) {
  LockGuard lock(mu_);
  letters_.push_back(std::move(letter));
  if (letters_.size() > capacity_) {
    letters_.pop_front();
    ++dropped_;
  }
}

void DeadLetterStore::count_dropped() noexcept {
  LockGuard lock(mu_);
  ++dropped_;
}

std::vector<DeadLetter> DeadLetterStore::snapshot() const {
  LockGuard lock(mu_);
  return {letters_.begin(), letters_.end()};
}

std::uint64_t DeadLetterStore::dropped() const noexcept {
  LockGuard lock(mu_);
  return dropped_;
}

}  // namespace octo::detail

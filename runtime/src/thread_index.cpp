#include "octo/detail/thread_index.hpp"

#include <mutex>
#include <new>
#include <vector>

namespace octo::detail {

constinit thread_local std::uint32_t t_thread_index = 0;
// Set once the thread has asked and got none (the numbers ran out, or its number was released at
// exit), so it does not ask the allocator again.
constinit thread_local bool t_no_index = false;

namespace {

struct Allocator {
  std::mutex mu;
  std::vector<std::uint32_t> free;  // released numbers, reused last-in first-out
  std::uint32_t next = 1;

  std::uint32_t take() noexcept {
    std::lock_guard lock(mu);
    if (!free.empty()) {
      const std::uint32_t i = free.back();
      free.pop_back();
      return i;
    }
    return next <= kMaxThreadIndex ? next++ : kNoThreadIndex;
  }
  void give_back(std::uint32_t i) noexcept {
    std::lock_guard lock(mu);
    try {
      free.push_back(i);
    } catch (const std::bad_alloc&) {  // the number is lost, not reused: still correct
    }
  }
};

// Leaked on purpose: threads may exit (and give their numbers back) during static destruction.
Allocator& allocator() {
  static Allocator* a = new Allocator;
  return *a;
}

// Gives the number back when its thread exits; from then on the thread has kNoThreadIndex.
struct Releaser {
  std::uint32_t index = 0;
  ~Releaser() {
    if (index != 0) allocator().give_back(index);
    t_thread_index = 0;
    t_no_index = true;
  }
};

}  // namespace

std::uint32_t acquire_thread_index() noexcept {
  if (t_thread_index != 0) return t_thread_index;
  if (t_no_index) return kNoThreadIndex;
  const std::uint32_t i = allocator().take();
  if (i == kNoThreadIndex) {
    t_no_index = true;
    return i;
  }
  thread_local Releaser releaser;
  releaser.index = i;
  t_thread_index = i;
  return i;
}

}  // namespace octo::detail

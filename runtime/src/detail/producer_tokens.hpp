// Explicit moodycamel producers for one queue, one per dense thread number (detail/thread_index),
// made on a thread's first push. Enqueueing through a token skips the implicit producer's lookup
// (a hash of the thread id probed in a shared table: 7% of a no-op submit's profile).
//
// Contract: token() is lock-free after a thread's first call and allocation-free; it returns
// nullptr (push without a token) for a thread past the last number or when memory ran out. A
// thread number belongs to one live thread at a time and passes to the next under the number
// allocator's mutex, so each token has one user at a time, as moodycamel requires. Cost: a 4 KiB
// table per queue that saw a push, and one producer per thread that pushed; an explicit producer
// keeps its emptied blocks for its next pushes instead of returning them, so a queue holds at
// least one block per thread that ever pushed to it (threads alive at once, as numbers are
// reused). Destroy before the queue: a token's destructor touches its producer.
#pragma once

#include <atomic>
#include <cstdint>
#include <new>

#include <concurrentqueue/concurrentqueue.h>

#include "octo/detail/thread_index.hpp"

namespace octo::detail {

class ProducerTokens {
 public:
  ProducerTokens() = default;
  ProducerTokens(const ProducerTokens&) = delete;
  ProducerTokens& operator=(const ProducerTokens&) = delete;
  ~ProducerTokens() {
    Slot* table = table_.load(std::memory_order_acquire);
    if (table == nullptr) return;
    for (std::uint32_t i = 0; i <= kMaxThreadIndex; ++i)
      delete table[i].load(std::memory_order_relaxed);
    delete[] table;
  }

  // The calling thread's token for `q` (always the same queue), or nullptr.
  template <class Queue>
  moodycamel::ProducerToken* token(Queue& q) noexcept {
    const std::uint32_t i = thread_index();
    // Acquire: the table's (zeroed) slots were written before its publication. A slot is written
    // and read by the thread holding its number only: relaxed.
    Slot* table = table_.load(std::memory_order_acquire);
    if (table != nullptr && i != 0) [[likely]] {
      if (moodycamel::ProducerToken* t = table[i].load(std::memory_order_relaxed)) return t;
    }
    return make(q);
  }

 private:
  using Slot = std::atomic<moodycamel::ProducerToken*>;

  template <class Queue>
  moodycamel::ProducerToken* make(Queue& q) noexcept {
    const std::uint32_t i = acquire_thread_index();
    if (i == kNoThreadIndex) return nullptr;
    Slot* table = table_.load(std::memory_order_acquire);
    if (table == nullptr) {
      Slot* fresh = new (std::nothrow) Slot[kMaxThreadIndex + 1]{};
      if (fresh == nullptr) return nullptr;
      // Release: the zeroed slots before the table; a loser frees its own copy.
      if (table_.compare_exchange_strong(table, fresh, std::memory_order_acq_rel)) {
        table = fresh;
      } else {
        delete[] fresh;
      }
    }
    if (moodycamel::ProducerToken* t = table[i].load(std::memory_order_relaxed)) return t;
    auto* t = new (std::nothrow) moodycamel::ProducerToken(q);
    if (t == nullptr) return nullptr;
    if (!t->valid()) {  // the queue could not allocate the producer
      delete t;
      return nullptr;
    }
    table[i].store(t, std::memory_order_relaxed);
    return t;
  }

  std::atomic<Slot*> table_{nullptr};
};

}  // namespace octo::detail

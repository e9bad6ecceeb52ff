// The executor's observers: any number, added and removed while tasks run, free when there are
// none.
//
// Readers (the threads that emit task events) see an immutable set through one atomic pointer,
// null while no observer is registered: that load and its branch are all an event costs then.
// remove() must not return while a reader may still call the removed observer, since the caller
// may destroy it next. Readers therefore announce the set they use:
//   - a thread of the executor's arena publishes the set in its own padded pin slot (indexed by
//     its arena slot, which no other running thread holds) and clears it after the calls;
//   - any other thread (the timer, a thread calling shutdown or destroying the executor) holds a
//     shared lock instead: those events are rare.
// remove() swaps in the new set, takes the exclusive lock once (no foreign reader left) and waits
// until no pin holds the old set; then it frees the old set. The pin store and the writer's swap
// are seq_cst, as are the reader's reload and the writer's pin loads (a Dekker handshake): either
// the reader's reload sees the new set, or the writer sees the pin and waits for it.
//
// Contract for observers: on_event must not call add() or remove() of the same executor (remove
// would wait for its own pin), nor wait for work in the executor's arena.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <utility>
#include <vector>

#include "octo/observer.hpp"

namespace octo::detail {

class ObserverRegistry {
 public:
  // `slots`: how many arena threads may emit at once (their slot indices are 0 .. slots-1).
  explicit ObserverRegistry(std::size_t slots)
      : pins_(std::make_unique<Pin[]>(slots)), slots_(slots) {}
  ~ObserverRegistry() { delete current_.load(std::memory_order_relaxed); }
  ObserverRegistry(const ObserverRegistry&) = delete;
  ObserverRegistry& operator=(const ObserverRegistry&) = delete;

  // No observer registered now: lets a caller skip the (out-of-line) for_each. Relaxed: a stale
  // answer is the same race as an observer added just after the check.
  bool empty() const noexcept { return current_.load(std::memory_order_relaxed) == nullptr; }

  // Calls `fn(observer)` for each registered observer. `slot_of()` (called only when there is
  // one) gives the calling thread's arena slot, or a negative value outside the arena.
  template <class Slot, class F>
  void for_each(Slot&& slot_of, F&& fn) const noexcept {
    // Acquire: the set's contents were written before its (seq_cst) publication.
    const Set* s = current_.load(std::memory_order_acquire);
    if (s == nullptr) return;
    const int slot = slot_of();
    if (slot >= 0 && static_cast<std::size_t>(slot) < slots_) {
      std::atomic<const Set*>& pin = pins_[static_cast<std::size_t>(slot)].set;
      for (;;) {
        pin.store(s, std::memory_order_seq_cst);
        const Set* again = current_.load(std::memory_order_seq_cst);
        if (again == s) break;
        s = again;
      }
      if (s != nullptr) call(*s, fn);
      // Release: the calls into the observers happen before a remover sees the pin cleared.
      pin.store(nullptr, std::memory_order_release);
    } else {
      std::shared_lock lock(foreign_mu_);
      s = current_.load(std::memory_order_acquire);
      if (s != nullptr) call(*s, fn);
    }
  }

  // Registers `o` (once: a second add of the same observer is ignored). Thread-safe.
  void add(Observer& o) {
    std::lock_guard lock(writer_mu_);
    const Set* old = current_.load(std::memory_order_relaxed);
    auto next = std::make_unique<Set>();
    if (old != nullptr) {
      if (std::find(old->list.begin(), old->list.end(), &o) != old->list.end()) return;
      next->list = old->list;
    }
    next->list.push_back(&o);
    publish(next.release(), old);
  }

  // Unregisters `o`; when it returns, no thread is calling `o` and none will. False if `o` was
  // not registered. Thread-safe, but not from inside an observer's on_event.
  bool remove(Observer& o) {
    std::lock_guard lock(writer_mu_);
    const Set* old = current_.load(std::memory_order_relaxed);
    if (old == nullptr) return false;
    auto it = std::find(old->list.begin(), old->list.end(), &o);
    if (it == old->list.end()) return false;
    Set* next = nullptr;
    if (old->list.size() > 1) {
      next = new Set{old->list};
      next->list.erase(next->list.begin() + (it - old->list.begin()));
    }
    publish(next, old);
    return true;
  }

  // Unregisters every observer and returns them (in registration order), waiting as remove()
  // does. Used by the executor's destructor.
  std::vector<Observer*> take_all() {
    std::lock_guard lock(writer_mu_);
    const Set* old = current_.load(std::memory_order_relaxed);
    if (old == nullptr) return {};
    std::vector<Observer*> out = old->list;
    publish(nullptr, old);
    return out;
  }

 private:
  struct Set {
    std::vector<Observer*> list;
  };
  // One cache line each: the owning thread writes its pin on every event.
  struct alignas(64) Pin {
    std::atomic<const Set*> set{nullptr};
  };

  template <class F>
  static void call(const Set& s, F& fn) noexcept {
    for (Observer* o : s.list) fn(*o);
  }

  // Under writer_mu_: makes `next` current, waits until no reader uses `old`, frees it.
  void publish(const Set* next, const Set* old) {
    current_.store(next, std::memory_order_seq_cst);
    if (old == nullptr) return;
    { std::unique_lock drain(foreign_mu_); }  // foreign readers of `old` have left
    for (std::size_t i = 0; i < slots_; ++i) {
      while (pins_[i].set.load(std::memory_order_seq_cst) == old) std::this_thread::yield();
    }
    delete old;
  }

  std::atomic<const Set*> current_{nullptr};
  const std::unique_ptr<Pin[]> pins_;
  const std::size_t slots_;
  mutable std::shared_mutex foreign_mu_;
  std::mutex writer_mu_;
};

}  // namespace octo::detail

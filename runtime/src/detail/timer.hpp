// One thread that fires delayed actions (retry backoff) in deadline order, and a periodic tick.
//
// A min-heap under a mutex: timers are rare compared with tasks (only failed attempts wait), so
// one thread and a lock serve every arm of an executor without a sleeping thread per task. The
// tick says whether it needs to run again; when it does not, the thread sleeps (until a deadline
// or resume()), so an idle executor's timer does not wake at all.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "octo/detail/annotated_mutex.hpp"
#include "octo/detail/thread_name.hpp"

namespace octo::detail {

template <class Item>
class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;
  // Called on the timer thread with each item whose deadline has passed.
  using Fire = std::function<void(Item&&)>;

  // `tick` runs on the timer thread every `period` (never when period is zero) until it returns
  // false; then it pauses until resume().
  TimerQueue(Fire fire, std::function<bool()> tick, std::chrono::nanoseconds period)
      : fire_(std::move(fire)), tick_(std::move(tick)), period_(period), thread_([this] {
          name_this_thread("octo-timer");
          run();
        }) {}
  ~TimerQueue() {
    {
      LockGuard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  // Restarts a paused tick (cheap when it is not paused: one load). The pause and this pair as
  // in Dekker's protocol: the tick thread sets paused_ and then looks again (seq_cst), a caller
  // publishes its work (seq_cst) and then loads paused_, so one of the two sees the other.
  void resume() noexcept {
    if (!paused_.load(std::memory_order_seq_cst)) return;
    {
      LockGuard lock(mu_);
      if (!paused_.exchange(false, std::memory_order_seq_cst)) return;
    }
    cv_.notify_one();
  }

  void schedule(Clock::time_point when, Item item) {
    bool earliest;
    {
      LockGuard lock(mu_);
      earliest = heap_.empty() || when < heap_.top().when;
      heap_.push(Entry{when, seq_++, std::move(item)});
    }
    if (earliest) cv_.notify_one();
  }

  // Removes and returns the waiting items that match `pred` (a cold path: O(n)).
  template <class Pred>
  std::vector<Item> take_if(Pred pred) {
    std::vector<Item> out;
    LockGuard lock(mu_);
    std::vector<Entry> keep;
    while (!heap_.empty()) {
      Entry& e = const_cast<Entry&>(heap_.top());
      if (pred(e.item)) {
        out.push_back(std::move(e.item));
      } else {
        keep.push_back(std::move(e));
      }
      heap_.pop();
    }
    for (auto& e : keep) heap_.push(std::move(e));
    return out;
  }

  // Removes and returns every waiting item (shutdown).
  std::vector<Item> take_all() {
    std::vector<Item> out;
    LockGuard lock(mu_);
    while (!heap_.empty()) {
      out.push_back(std::move(const_cast<Entry&>(heap_.top()).item));
      heap_.pop();
    }
    return out;
  }

 private:
  struct Entry {
    Clock::time_point when;
    std::uint64_t seq;  // FIFO among equal deadlines
    Item item;
    bool operator>(const Entry& o) const noexcept {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };

  void run() {
    UniqueLock lock(mu_);
    const bool ticking = period_.count() > 0;
    auto next_tick = Clock::now() + period_;
    while (!stop_) {
      const auto now = Clock::now();
      const bool tick_due = ticking && !paused_.load(std::memory_order_relaxed);
      if (tick_due && now >= next_tick) {
        lock.unlock();
        if (!tick_()) {
          paused_.store(true, std::memory_order_seq_cst);
          // Work published before the store above is seen by this second look; work after it
          // sees paused_ and resumes.
          if (tick_()) paused_.store(false, std::memory_order_relaxed);
        }
        lock.lock();
        next_tick = now + period_;
        continue;
      }
      if (ticking && !tick_due) next_tick = now + period_;  // resumed: the first tick a period on
      if (heap_.empty() || now < heap_.top().when) {
        auto until = heap_.empty() ? Clock::time_point::max() : heap_.top().when;
        if (tick_due) until = std::min(until, next_tick);
        if (until == Clock::time_point::max()) {
          cv_.wait(lock.native());
        } else {
          cv_.wait_until(lock.native(), until);
        }
        continue;
      }
      Item item = std::move(const_cast<Entry&>(heap_.top()).item);
      heap_.pop();
      lock.unlock();
      fire_(std::move(item));
      lock.lock();
    }
  }

  Fire fire_;
  std::function<bool()> tick_;
  std::atomic<bool> paused_{false};  // the tick stopped itself; resume() restarts it
  std::chrono::nanoseconds period_;
  Mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_ OCTO_GUARDED_BY(mu_);
  std::uint64_t seq_ OCTO_GUARDED_BY(mu_) = 0;
  bool stop_ OCTO_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace octo::detail

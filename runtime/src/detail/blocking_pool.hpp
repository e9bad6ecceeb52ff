// The threads of one blocking arm. A drainer posted to the arm becomes a ticket; a parked thread
// takes it, or a new thread starts when none is free and fewer than `limit` (the arm's
// max_parallel) exist. Threads park on a condition variable between drainers and stay until the
// executor is destroyed: at most max_parallel per arm, created only when work arrives.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "detail/running_slot.hpp"
#include "octo/detail/thread_name.hpp"

namespace octo::detail {

class BlockingPool {
 public:
  // `drain` runs one drainer on a pool thread, with that thread's slot.
  BlockingPool(std::string thread_name, std::function<void(RunningSlot&)> drain)
      : name_(std::move(thread_name)), drain_(std::move(drain)) {}
  ~BlockingPool() { stop(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Hands one drainer to the pool. False when no thread will take it (none free and none could be
  // started): the caller must run it elsewhere.
  bool post(std::uint32_t limit) noexcept {
    std::unique_lock lock(mu_);
    ++tickets_;
    if (tickets_ > idle_ && threads_.size() < limit) {
      try {
        RunningSlot& slot = slots_.emplace_back();
        threads_.emplace_back([this, &slot] { run(slot); });
      } catch (const std::exception&) {  // no memory or no thread: others may still serve it
        if (slots_.size() > threads_.size()) slots_.pop_back();
        if (threads_.empty()) {
          --tickets_;
          return false;
        }
      }
    }
    lock.unlock();
    cv_.notify_one();
    return true;
  }

  // Joins every thread. Only once no drainer is posted or running.
  void stop() noexcept {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  template <class F>
  void for_each_slot(F&& f) {
    std::lock_guard lock(mu_);
    for (RunningSlot& s : slots_) f(s);
  }
  std::uint32_t thread_count() const {
    std::lock_guard lock(mu_);
    return static_cast<std::uint32_t>(threads_.size());
  }

 private:
  void run(RunningSlot& slot) {
    name_this_thread(name_.c_str());
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return tickets_ > 0 || stop_; });
      --idle_;
      if (tickets_ == 0) return;  // stopping
      --tickets_;
      ++busy_;
      lock.unlock();
      drain_(slot);
      lock.lock();
      --busy_;
    }
  }

  const std::string name_;
  const std::function<void(RunningSlot&)> drain_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::uint32_t tickets_ = 0, idle_ = 0, busy_ = 0;
  bool stop_ = false;
  std::deque<RunningSlot> slots_;  // stable addresses: one per thread
  std::vector<std::thread> threads_;
};

}  // namespace octo::detail

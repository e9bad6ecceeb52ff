// octo/ticker.hpp — one thread that publishes a coarse epoch and runs periodic callbacks.
//
// Writers on hot paths (WindowCounter::record) read the epoch with one relaxed load of a line that
// changes once per tick, instead of reading a clock. The same thread evaluates HALO's triggers.
// With `own_thread = false` nothing ticks until tick() is called: tests pair that with a
// ManualClock to step time exactly.
//
// Idle: when no WindowCounter on this ticker has moved to a new bucket for `idle_after`, the
// thread ticks every `idle_resolution` instead (the default ticker: 10 wakeups a second, not
// 200). The first record after that (a counter's slow path, once per bucket and thread) reads
// the clock, publishes the current epoch and wakes the thread, so recording resumes on a correct
// epoch; callbacks (HALO's triggers) run at the slower pace meanwhile.
//
//   octo::Ticker ticker({.resolution = std::chrono::milliseconds(5)});
//   auto id = ticker.add_callback([](std::chrono::nanoseconds now) { evaluate(now); });
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "octo/clock.hpp"

namespace octo {

class Ticker {
 public:
  struct Options {
    std::chrono::nanoseconds resolution = std::chrono::milliseconds(5);
    // nullptr = a SteadyClock.
    std::shared_ptr<const Clock> clock = nullptr;
    bool own_thread = true;
    // Zero: always `resolution`.
    std::chrono::nanoseconds idle_resolution = std::chrono::milliseconds(100);
    std::chrono::nanoseconds idle_after = std::chrono::seconds(2);
  };
  using Callback = std::function<void(std::chrono::nanoseconds now)>;

  // Throws std::invalid_argument when resolution is not positive.
  explicit Ticker(Options options);
  Ticker() : Ticker(Options{}) {}
  ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  // The process-wide ticker (steady clock, 5 ms), started on first use and never destroyed.
  static Ticker& shared();

  std::chrono::nanoseconds resolution() const noexcept { return resolution_; }
  const Clock& clock() const noexcept { return *clock_; }
  std::chrono::nanoseconds now() const noexcept { return clock_->now(); }
  // clock().now() / resolution() as of the last tick.
  std::uint64_t epoch() const noexcept { return epoch_.load(std::memory_order_relaxed); }
  const std::atomic<std::uint64_t>& epoch_word() const noexcept { return epoch_; }
  // The epoch for a counter's slow path: notes activity, and while the thread is idle publishes
  // the clock's epoch and wakes it. Cold (once per bucket and thread); never blocks for long.
  std::uint64_t active_epoch() const noexcept;
  // Whether the thread ticks at idle_resolution now.
  bool idle() const noexcept { return idle_.load(std::memory_order_relaxed); }

  // Reads the clock, publishes the epoch, then runs every callback in registration order.
  void tick();

  // Callbacks run on the ticking thread and must be short; they may not add or remove callbacks.
  std::uint64_t add_callback(Callback cb);
  // After it returns the callback is not running and will not run again.
  void remove_callback(std::uint64_t id);

 private:
  void run();

  const std::chrono::nanoseconds resolution_;
  const std::chrono::nanoseconds idle_resolution_;
  const std::chrono::nanoseconds idle_after_;
  const std::shared_ptr<const Clock> clock_;
  // Alone on its line: read by every recording thread, written once per tick (and by
  // active_epoch() when the thread was idle). Mutable: a const counter's slow path refreshes it.
  alignas(64) mutable std::atomic<std::uint64_t> epoch_{0};
  // Written by counters' slow paths (once per bucket and thread), read and cleared per tick.
  alignas(64) mutable std::atomic<bool> active_{false};
  mutable std::atomic<bool> idle_{false};
  alignas(64) std::mutex mu_;  // callbacks_, and held while they run
  std::vector<std::pair<std::uint64_t, Callback>> callbacks_;
  std::uint64_t next_id_ = 1;
  mutable std::mutex stop_mu_;
  mutable std::condition_variable stop_cv_;
  bool stop_ = false;
  mutable bool woken_ = false;  // under stop_mu_: leave the idle pace now
  std::thread thread_;
};

}  // namespace octo

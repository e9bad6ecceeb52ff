// octo/ticker.hpp — one thread that publishes a coarse epoch and runs periodic callbacks.
//
// Writers on hot paths (WindowCounter::record) read the epoch with one relaxed load of a line that
// changes once per tick, instead of reading a clock. The same thread evaluates HALO's triggers.
// With `own_thread = false` nothing ticks until tick() is called: tests pair that with a
// ManualClock to step time exactly.
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

  // Reads the clock, publishes the epoch, then runs every callback in registration order.
  void tick();

  // Callbacks run on the ticking thread and must be short; they may not add or remove callbacks.
  std::uint64_t add_callback(Callback cb);
  // After it returns the callback is not running and will not run again.
  void remove_callback(std::uint64_t id);

 private:
  void run();

  const std::chrono::nanoseconds resolution_;
  const std::shared_ptr<const Clock> clock_;
  // Alone on its line: read by every recording thread, written once per tick.
  alignas(64) std::atomic<std::uint64_t> epoch_{0};
  alignas(64) std::mutex mu_;  // callbacks_, and held while they run
  std::vector<std::pair<std::uint64_t, Callback>> callbacks_;
  std::uint64_t next_id_ = 1;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace octo

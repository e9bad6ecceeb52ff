// octo/clock.hpp — the time source behind tickers, windows and triggers.
//
// Production code uses SteadyClock; tests drive a ManualClock by hand so every time-based rule
// (windows, cooldowns, intervals) is tested deterministically, without sleeping.
//
//   auto clock = std::make_shared<octo::ManualClock>();
//   clock->advance(std::chrono::seconds(5));
#pragma once

#include <atomic>
#include <chrono>

namespace octo {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary origin. Thread-safe.
  virtual std::chrono::nanoseconds now() const noexcept = 0;
};

class SteadyClock final : public Clock {
 public:
  std::chrono::nanoseconds now() const noexcept override {
    return std::chrono::steady_clock::now().time_since_epoch();
  }
};

// Starts at zero and moves only when told to.
class ManualClock final : public Clock {
 public:
  std::chrono::nanoseconds now() const noexcept override {
    return std::chrono::nanoseconds(ns_.load(std::memory_order_acquire));
  }
  void advance(std::chrono::nanoseconds d) noexcept {
    ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  }
  void set(std::chrono::nanoseconds t) noexcept { ns_.store(t.count(), std::memory_order_release); }

 private:
  std::atomic<std::int64_t> ns_{0};
};

}  // namespace octo

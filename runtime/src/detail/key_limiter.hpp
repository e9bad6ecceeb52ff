// Per-key concurrency for one arm (ArmConfig::max_parallel_per_key): at most `limit` tasks of one
// key run at once.
//
// A drainer that takes a task whose key is at its limit parks it here and goes on with the next
// task, so a busy key never holds up other keys. When a task of that key ends, its slot passes to
// the key's oldest parked task, which the executor puts at the back of its priority's queue: behind
// the tasks of other keys queued meanwhile (round-robin between keys within a priority).
//
// Keys are told apart by a 64-bit hash: two keys whose hashes collide share one limit (they can be
// held back together, never run past it). 64 stripes, each a mutex over a hash map of the keys
// with tasks running or parked, so drainers of different keys rarely meet on one lock. An idle key
// keeps its entry while its stripe holds at most kIdleKept entries (no allocation per task for a
// steady set of keys); past that, idle entries are erased, so memory follows the keys in use.
//
// Thread safety: every member may be called from any thread. Cost: one uncontended lock and a map
// lookup per admit and per release.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "detail/work.hpp"
#include "octo/task.hpp"

namespace octo::detail {

class KeyLimiter {
 public:
  struct Parked {
    Work work;
    Priority priority = Priority::kNormal;
  };
  enum class Admit : std::uint8_t { kRun, kParked, kNoMemory };

  static constexpr std::size_t kStripes = 64;
  static constexpr std::size_t kIdleKept = 64;

  explicit KeyLimiter(std::uint32_t limit) noexcept : limit_(limit) {}

  static std::uint64_t hash(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key);
  }

  std::uint32_t limit() const noexcept { return limit_; }

  // Takes a slot of key `h` for `w` (kRun), or parks `w` until one frees (kParked). kNoMemory:
  // neither (the map or the key's list could not grow).
  Admit admit(std::uint64_t h, const Work& w, Priority p) noexcept {
    Stripe& s = stripe(h);
    std::lock_guard lock(s.mu);
    try {
      KeyState& k = s.keys[h];
      if (k.running < limit_) {
        ++k.running;
        return Admit::kRun;
      }
      k.waiting.push_back(Parked{w, p});
    } catch (...) {
      return Admit::kNoMemory;
    }
    parked_.fetch_add(1, std::memory_order_relaxed);
    return Admit::kParked;
  }

  // Gives back a slot of key `h`. When the key has parked tasks the slot passes to the oldest,
  // returned for the caller to queue (it must not admit it again).
  std::optional<Parked> release(std::uint64_t h) noexcept {
    Stripe& s = stripe(h);
    std::lock_guard lock(s.mu);
    const auto it = s.keys.find(h);
    if (it == s.keys.end()) return std::nullopt;
    KeyState& k = it->second;
    if (k.head < k.waiting.size()) {
      Parked p = k.waiting[k.head++];
      if (k.head == k.waiting.size()) {
        k.waiting.clear();
        k.head = 0;
      } else if (k.head >= 64 && k.head * 2 >= k.waiting.size()) {
        // A key that stays busy: drop the handed-out front so the list holds only parked tasks.
        k.waiting.erase(k.waiting.begin(), k.waiting.begin() + static_cast<std::ptrdiff_t>(k.head));
        k.head = 0;
      }
      parked_.fetch_sub(1, std::memory_order_relaxed);
      return p;
    }
    if (k.running > 0) --k.running;
    if (k.running == 0 && s.keys.size() > kIdleKept) s.keys.erase(it);
    return std::nullopt;
  }

  // Every parked task, taken out (shutdown: they will not run).
  std::vector<Parked> take_all() {
    std::vector<Parked> out;
    for (Stripe& s : stripes_) {
      std::lock_guard lock(s.mu);
      for (auto& [h, k] : s.keys) {
        for (std::size_t i = k.head; i < k.waiting.size(); ++i) out.push_back(k.waiting[i]);
        parked_.fetch_sub(k.waiting.size() - k.head, std::memory_order_relaxed);
        k.waiting.clear();
        k.head = 0;
      }
    }
    return out;
  }

  // Tasks parked now (relaxed: a figure for status).
  std::uint64_t parked() const noexcept { return parked_.load(std::memory_order_relaxed); }

  // Keys with an entry (running, parked or kept idle); for tests of the memory bound.
  std::size_t entries() const {
    std::size_t n = 0;
    for (const Stripe& s : stripes_) {
      std::lock_guard lock(s.mu);
      n += s.keys.size();
    }
    return n;
  }

 private:
  struct KeyState {
    std::uint32_t running = 0;
    std::size_t head = 0;  // waiting[head, size) are parked, oldest first
    std::vector<Parked> waiting;
  };
  // A line each: drainers of keys in different stripes do not share their mutex's line.
  struct alignas(64) Stripe {
    mutable std::mutex mu;
    std::unordered_map<std::uint64_t, KeyState> keys;
  };

  Stripe& stripe(std::uint64_t h) noexcept {
    // The top bits: std::hash's low bits also pick the map's bucket within the stripe.
    return stripes_[h >> 58];
  }

  const std::uint32_t limit_;
  std::atomic<std::uint64_t> parked_{0};
  Stripe stripes_[kStripes];
};

}  // namespace octo::detail

// The claims of unique tasks (Task::unique_key): key -> the task holding it, until when, and in
// which scope. A claim is alive while its TTL has not passed and its task is still in the scope;
// the task's state is read from the slab when a duplicate asks (`live`), so starting and
// finishing a task do no work here.
//
// Contract: thread-safe (64 mutex stripes by key hash); cold next to the plain enqueue path (only
// tasks with a key come here: one hash, one lock, one map probe, a string copy on insert). Dead
// claims are swept from a stripe when it has doubled since its last sweep, so memory follows the
// keys in use, not every key ever seen.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "octo/task.hpp"

namespace octo::detail {

class UniqueKeys {
 public:
  using Time = std::chrono::steady_clock::time_point;

  // Claims `key` for `id` until `expires` unless a live claim holds it. Returns 0 when claimed,
  // else the holder's id. `live(id, scope)` says whether a task is still pending in that scope.
  template <class Live>
  TaskId claim(std::string_view key, TaskId id, UniqueScope scope, Time now, Time expires,
               Live&& live) {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    if (s.map.size() >= s.sweep_at) {
      for (auto it = s.map.begin(); it != s.map.end();)
        it = alive(it->second, now, live) ? std::next(it) : s.map.erase(it);
      s.sweep_at = std::max<std::size_t>(kFirstSweep, 2 * s.map.size());
    }
    auto [it, inserted] = s.map.try_emplace(std::string(key), Claim{id, expires, scope});
    if (!inserted) {
      if (alive(it->second, now, live)) return it->second.id;
      it->second = Claim{id, expires, scope};
    }
    return 0;
  }

  // Gives `key` up if `id` still holds it (its task was refused after the claim).
  void release(std::string_view key, TaskId id) {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(std::string(key));
    if (it != s.map.end() && it->second.id == id) s.map.erase(it);
  }

 private:
  static constexpr std::size_t kStripes = 64;
  static constexpr std::size_t kFirstSweep = 64;

  struct Claim {
    TaskId id;
    Time expires;
    UniqueScope scope;
  };
  // Padded: stripes are locked by different producers at once.
  struct alignas(64) Stripe {
    std::mutex mu;
    std::unordered_map<std::string, Claim> map;
    std::size_t sweep_at = kFirstSweep;
  };

  template <class Live>
  static bool alive(const Claim& c, Time now, Live& live) {
    return now < c.expires && live(c.id, c.scope);
  }
  Stripe& stripe(std::string_view key) {
    return stripes_[std::hash<std::string_view>{}(key) % kStripes];
  }

  Stripe stripes_[kStripes];
};

}  // namespace octo::detail

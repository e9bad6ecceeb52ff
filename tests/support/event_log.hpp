// Events as an engine's event thread delivers them, and a bounded wait for them.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "halo/engine.hpp"

namespace octo_test {

struct EventLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<halo::Event> events;

  // The log must outlive the engine, whose event thread writes to it.
  void attach(halo::Engine& e) {
    e.subscribe([this](const halo::Event& ev) {
      std::lock_guard lock(mu);
      events.push_back(ev);
      cv.notify_all();
    });
  }
  // Waits (at most 10 s) until `n` events of `kind` arrived; returns how many did.
  std::size_t wait_for(halo::EventKind kind, std::size_t n) {
    std::unique_lock lock(mu);
    auto count = [&] {
      return static_cast<std::size_t>(std::count_if(
          events.begin(), events.end(), [&](const halo::Event& e) { return e.kind == kind; }));
    };
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return count() >= n; });
    return count();
  }
};

}  // namespace octo_test

// Triggers under manual time: a 10 s / 100-bucket window of signals on a manual ticker, and a
// callback that records every cycle request.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "halo/triggers.hpp"
#include "manual_time.hpp"

namespace octo_test {

struct TriggerRig : ManualTime {
  halo::Signals signals{ticker, std::chrono::seconds(10), 100};
  std::mutex mu;
  std::vector<halo::CycleRequest> cycles;

  halo::CycleCallback recorder() {
    return [this](const halo::CycleRequest& r) {
      std::lock_guard lock(mu);
      cycles.push_back(r);
    };
  }
  int count(const std::string& trigger) {
    std::lock_guard lock(mu);
    int n = 0;
    for (const auto& c : cycles) n += c.trigger == trigger;
    return n;
  }
};

inline halo::TriggerConfig quiet() {
  halo::TriggerConfig c;
  c.time_interval = std::chrono::seconds(0);  // each test turns on what it tests
  c.request_threshold = 0;
  return c;
}

}  // namespace octo_test

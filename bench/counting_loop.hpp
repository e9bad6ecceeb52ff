// A HALO loop registered for the process's lifetime, so that halo::record_request() really
// counts in the benchmarks that time it (bench_counters, bench_state).
#pragma once

#include <chrono>

#include "halo/triggers.hpp"

namespace halo_bench {

inline void register_counting_loop() {
  static halo::LoopHandle* const loop = new halo::LoopHandle(halo::register_loop(
      halo::TriggerConfig{.time_interval = std::chrono::nanoseconds(0), .request_threshold = 0},
      [](const halo::CycleRequest&) {}));
  (void)loop;
}

}  // namespace halo_bench

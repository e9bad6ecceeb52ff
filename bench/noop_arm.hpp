// The executor the durability and scale-out benchmarks share: one arm "work" (max_parallel 2, on
// a 2-thread arena) running no-op tasks of type "job", so that what they measure is the journal
// or the stream around it.
#pragma once

#include "octo/executor.hpp"

namespace octo_bench {

inline octo::ExecutorConfig noop_arm_config() {
  octo::ExecutorConfig cfg;
  octo::ArmConfig arm;
  arm.name = "work";
  arm.max_parallel = 2;
  arm.handler = [](const octo::Task&, const octo::Context&) { return octo::Outcome::success(); };
  cfg.arms = {arm};
  cfg.routes = {};
  cfg.routes.add_exact("job", "work");
  cfg.threads = 2;
  return cfg;
}

}  // namespace octo_bench

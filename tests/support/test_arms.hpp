// Arms and executor configurations for tests: an arm that succeeds at once and retries without
// waiting, and a configuration of exactly the given arms with no routes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "octo/executor.hpp"

namespace octo_test {

inline octo::Outcome ok_handler(const octo::Task&, const octo::Context&) {
  return octo::Outcome::success();
}

inline octo::ArmConfig arm(std::string name, std::uint32_t parallel = 1,
                           octo::Handler h = ok_handler) {
  octo::ArmConfig c;
  c.name = std::move(name);
  c.max_parallel = parallel;
  c.handler = std::move(h);
  c.backoff_base = std::chrono::milliseconds(0);
  c.backoff_max = std::chrono::milliseconds(0);
  return c;
}

inline octo::ExecutorConfig config_with(std::vector<octo::ArmConfig> arms, int threads = 2) {
  octo::ExecutorConfig cfg;
  cfg.arms = std::move(arms);
  cfg.routes = {};
  cfg.threads = threads;
  return cfg;
}

}  // namespace octo_test

// octo/dead_letter.hpp — a task that exhausted its attempts, kept for inspection.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "octo/task.hpp"

namespace octo {

struct DeadLetter {
  std::string arm;
  TaskId id = 0;
  std::optional<Task> task;  // empty for submit() callables
  std::string reason;
  std::uint32_t attempts = 0;
  std::chrono::system_clock::time_point when{};
};

}  // namespace octo

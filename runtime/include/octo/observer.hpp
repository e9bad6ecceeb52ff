// octo/observer.hpp — an optional sink for task lifecycle events (the original's trace store).
//
// Set once in ExecutorConfig; when unset the executor pays one predictable branch per task.
// Callbacks run on the executor's worker (or timer, or shutdown) thread: keep them short and
// non-blocking, and do not throw (an exception is swallowed).
#pragma once

#include <chrono>
#include <string_view>

#include "octo/arm.hpp"
#include "octo/task.hpp"

namespace octo {

enum class TaskEventKind : std::uint8_t {
  kStarted,       // a run begins (every attempt)
  kSucceeded,     // terminal
  kFailed,        // an attempt failed; a retry follows
  kDeadLettered,  // terminal: attempts exhausted
  kCancelled,     // terminal
};

std::string_view to_string(TaskEventKind k) noexcept;

struct TaskEvent {
  TaskEventKind kind;
  ArmId arm;
  // The typed task, or nullptr for submit() callables (their id is still set).
  const Task* task;
  TaskId id;
  std::uint32_t attempt;
  // Failure reason for kFailed / kDeadLettered; empty otherwise.
  std::string_view reason;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_event(const TaskEvent& event) noexcept = 0;
};

}  // namespace octo

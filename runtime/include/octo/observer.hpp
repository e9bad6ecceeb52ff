// octo/observer.hpp — a sink for task lifecycle events (the original's trace store).
//
// An executor has any number of observers: listed in ExecutorConfig::observers, or added and
// removed while it runs (Executor::add_observer / remove_observer). With none the executor pays
// one load and a predictable branch per event. Callbacks run on the executor's worker (or timer,
// or shutdown) thread, from several threads at once: keep them short, non-blocking and noexcept.
// From inside on_event, do not add or remove observers of the same executor.
//
//   struct Tracer : octo::Observer {
//     void on_event(const octo::TaskEvent& e) noexcept override { trace(e.id, e.kind); }
//   };
//   Tracer tracer;
//   executor.add_observer(tracer);
//   ...
//   executor.remove_observer(tracer);  // from here on tracer is not called; it may be destroyed
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

class Executor;

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_event(const TaskEvent& event) noexcept = 0;
  // Called once when `executor` is destroyed while this observer is still registered, after its
  // last event and before its memory is freed; the executor must not be used after this returns.
  // An observer that calls into the executor (as halo::Engine does) forgets it here.
  virtual void on_executor_destroyed(const Executor& executor) noexcept {
    static_cast<void>(executor);
  }
};

}  // namespace octo

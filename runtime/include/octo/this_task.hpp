// octo/this_task.hpp — what a running task can ask about itself: whether it should stop.
//
// A stop is requested for the task running on this thread when its arm's timeout passes
// (ArmConfig::timeout), when its own deadline passes (Task::deadline), on Executor::cancel(id),
// and when shutdown cancels (kCancel, or kDrain at its deadline). Cooperative: nothing is
// interrupted; a handler that checks and returns early is done (its Outcome counts as usual: a
// failure after a timeout retries under the arm's policy, after cancel() or shutdown it does not).
// Typed handlers and submit() callables alike.
//
//   cfg.on("builds", [](const octo::Task& t, const octo::Context&) {
//     for (auto& step : plan(t.payload)) {
//       if (octo::this_task::stop_requested()) return octo::Outcome::failure("stopped");
//       step.run();
//     }
//     return octo::Outcome::success();
//   });
//   // Or wait on a condition and wake when asked to stop:
//   std::condition_variable_any cv;  cv.wait(lock, octo::this_task::stop_token(), ready);
//
// Cost: stop_requested() is a few loads and, with a timeout or deadline, one clock read.
// stop_token() allocates a std::stop_source on its first call in a run (and only then); its stop
// is requested at once by cancel() and shutdown, and within ExecutorConfig::stall_check (1 ms)
// of a timeout or deadline by the executor's timer thread. Callbacks registered on the token
// (std::stop_callback, condition_variable_any's wait) run on the thread that asks for the stop,
// that timer thread among them: keep them short. Outside a task: false, and a token that can
// never be stopped.
#pragma once

#include <cstdint>
#include <stop_token>

#include "octo/task.hpp"

namespace octo::this_task {

bool stop_requested() noexcept;
std::stop_token stop_token();
// The running typed task's id; 0 for submit() callables and outside a task.
TaskId id() noexcept;

}  // namespace octo::this_task

// octo/schedule.hpp — periodic tasks: a task enqueued every period or at each time of a cron
// expression (UTC), on the executor's one timer thread.
//
//   ex.schedule({.name = "rotate-keys", .cron = "0 3 * * *",
//                .task = {.type = "secrets.rotate"}, .overlap = octo::Overlap::kSkip});
//   ex.schedule({.name = "gc", .every = std::chrono::minutes(5), .task = {.type = "cleanup.gc"},
//                .jitter = std::chrono::seconds(20)});
//   ex.pause_schedule("gc");  ...  ex.resume_schedule("gc");  ex.remove_schedule("gc");
//
// Each firing enqueues a copy of `task` (routed by its type) unless the overlap policy says the
// previous run is still going. A firing the timer reaches late (a stopped process, a paused
// schedule, a machine too busy) runs once, not once per period it missed, and the periods passed
// are counted in `missed`. Schedules live in the process: they are declared by the service at
// start (not journaled); the tasks they enqueue are journaled as any other.
//
// Contract: schedule() throws std::invalid_argument naming the schedule and the field (an empty
// or taken name, neither or both of `every` and `cron`, a period or jitter out of range, a cron
// expression CronSchedule::parse refuses, a task type no route matches). The other calls are
// thread-safe, cold (a mutex) and return false for a name that is not scheduled.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "octo/cron.hpp"
#include "octo/task.hpp"

namespace octo {

// What a firing does while the schedule's previous task has not finished (queued or running).
enum class Overlap : std::uint8_t {
  kSkip,       // nothing: the firing is counted in `skipped`
  kBufferOne,  // enqueue one to run after it; more firings while that one waits are skipped
  kAllow,      // enqueue anyway
};

struct ScheduleSpec {
  std::string name{};
  // Exactly one of the two: a fixed period (from when schedule() is called; 1 ms to 100 years),
  // or a cron expression in UTC (octo/cron.hpp).
  std::optional<std::chrono::milliseconds> every{};
  std::string cron{};
  Task task{};
  Overlap overlap = Overlap::kSkip;
  // Each firing is delayed by a uniform random part of this (0 = none), so that many processes
  // or schedules on the same period do not fire at the same instant. Less than the period for
  // `every`; at most one hour. For `cron`, keep it below the shortest gap between two firings:
  // the next firing is planned from when the jittered one ran, so a longer jitter skips firings
  // (counted in `missed`).
  std::chrono::milliseconds jitter{0};
};

struct ScheduleStatus {
  std::string name;
  std::string cron;                    // empty for `every` schedules
  std::chrono::milliseconds every{0};  // 0 for cron schedules
  bool paused = false;
  std::chrono::system_clock::time_point next_run{};  // planned (before jitter); epoch while paused
  std::chrono::system_clock::time_point last_run{};  // the last firing (epoch: none yet)
  std::uint64_t fired = 0;                           // firings that enqueued a task
  std::uint64_t skipped = 0;                         // firings the overlap policy held back
  std::uint64_t refused = 0;  // firings whose enqueue was refused (a full or disabled arm, ...)
  std::uint64_t missed = 0;   // periods that passed without a firing (late timer, paused)
  TaskId last_task = 0;       // the task the last firing enqueued
};

// The checks schedule() makes of a spec before it looks at routes, for each scheduler that takes
// a ScheduleSpec (Executor::schedule, RedisStreams::schedule): throws std::invalid_argument
// starting with `who` and naming the schedule and the field. Returns the parsed cron
// expression, or nullopt for an `every` schedule.
std::optional<CronSchedule> validate_schedule(const ScheduleSpec& spec, std::string_view who);

// The first multiple of `every` (counted from the Unix epoch) strictly after `t`: the instants
// a period plans on whatever process computes them (fleet schedules, HALO maintenance windows).
// `every` must be positive; times before the epoch round down too.
std::chrono::system_clock::time_point next_period_after(std::chrono::system_clock::time_point t,
                                                        std::chrono::milliseconds every);

}  // namespace octo

// octo/executor.hpp — the Octopus executor: typed background work on arms with hard parallel
// limits.
//
// Tasks are routed by type to arms. Each arm owns one lock-free MPMC queue per priority and an
// atomic `active` counter; while active < max_parallel an enqueue puts one *drainer* on a
// tbb::task_arena (or, for a blocking arm, on one of the arm's own threads), which runs the arm's
// tasks in batches until the queue is empty or its fairness budget is spent. Failures are retried
// with exponential backoff and jitter, then dead-lettered. Expected refusals (unroutable,
// disabled, full, stopped) come back as an EnqueueError and are counted, never thrown. Every
// task's queue wait and run time go into the arm's windowed histograms
// (octo/windowed_histogram.hpp, timed with octo/cycle_clock.hpp); a running task can be asked to
// stop (octo/this_task.hpp).
//
//   octo::ExecutorConfig cfg;                        // the eight default arms and routes
//   cfg.on("deploy", [](const octo::Task& t, const octo::Context&) {
//     return rollout(t.payload) ? octo::Outcome::success() : octo::Outcome::failure("rollout");
//   });
//   octo::Executor ex(std::move(cfg));
//   if (auto r = ex.enqueue({.type = "agent.revive", .payload = "a-17"}); !r)
//     log(octo::to_string(r.error()));
//   auto done = ex.submit(*ex.arm_id("cleanup"), [] { purge_tmp(); });
//   ex.pause(*ex.arm_id("deploy"));                  // hold deploys; enqueue still accepts
//   ex.shutdown(octo::ShutdownMode::kDrain, std::chrono::seconds(10));
//
// Thread safety: every member may be called from any thread, except that the executor must outlive
// all calls into it. Handlers of blocking arms (ArmConfig::blocking) may block; the others run on
// the executor's TBB arena and must not block for long.
#pragma once

#include <cassert>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "octo/arm.hpp"
#include "octo/context.hpp"
#include "octo/dead_letter.hpp"
#include "octo/detail/job.hpp"
#include "octo/journal.hpp"
#include "octo/observer.hpp"
#include "octo/routing.hpp"
#include "octo/schedule.hpp"
#include "octo/status.hpp"
#include "octo/task.hpp"
#include "octo/windowed_histogram.hpp"

namespace octo {

enum class EnqueueError : std::uint8_t {
  kEmptyType,    // Task::type is empty
  kUnroutable,   // no route matches the type
  kUnknownArm,   // the ArmId does not name an arm
  kDisabled,     // the arm is disabled
  kFull,         // the arm's queue is at capacity (backpressure: retry later or shed)
  kNoHandler,    // a typed task for an arm that has no handler
  kStopped,      // shutdown has begun
  kJournal,      // the journal could not record the task (see the journal's status)
  kBadPriority,  // the priority is not one of the four Priority values (a cast from bad input)
  kDuplicate,    // a task with the same unique key is pending: id() is that task's
  kBadUnique,    // Task::unique with an empty key or a TTL of zero or less
};
// (A task whose deadline has passed is not refused: it is accepted and expires, see
// Task::deadline.)
std::string_view to_string(EnqueueError e) noexcept;

// The answer to enqueue()/submit(): the new task's id, or why it was refused.
class [[nodiscard]] EnqueueResult {
 public:
  static EnqueueResult accepted(TaskId id) noexcept { return EnqueueResult(id, {}); }
  static EnqueueResult refused(EnqueueError e) noexcept { return EnqueueResult(0, e); }
  static EnqueueResult duplicate(TaskId existing) noexcept {
    return EnqueueResult(existing, EnqueueError::kDuplicate);
  }

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  // 0 for submit() callables, which are not individually cancellable, and for refusals, except
  // kDuplicate: the pending task that holds the unique key.
  TaskId id() const noexcept { return id_; }
  // Why the task was refused. Precondition: !ok(). On an accepted result it is a contract
  // violation: debug builds assert, release builds return EnqueueError::kStopped.
  EnqueueError error() const noexcept {
    assert(!ok() && "octo::EnqueueResult::error() on an accepted result");
    return error_.value_or(EnqueueError::kStopped);
  }

 private:
  EnqueueResult(TaskId id, std::optional<EnqueueError> e) noexcept : id_(id), error_(e) {}
  TaskId id_;
  std::optional<EnqueueError> error_;
};

enum class ShutdownMode : std::uint8_t {
  kDrain,   // run everything already accepted (including retries) until the deadline, then cancel
  kCancel,  // cancel everything not yet running; wait for running tasks until the deadline
};

struct ShutdownReport {
  std::uint64_t cancelled = 0;      // tasks cancelled by this shutdown
  std::uint64_t still_running = 0;  // tasks still running at the deadline (the destructor waits)
  bool deadline_hit = false;
};

struct ExecutorConfig {
  std::vector<ArmConfig> arms = default_arms();
  RoutingTable routes = default_routes();
  // Worker threads of the executor's TBB arena; 0 = tbb::info::default_concurrency(). If TBB's
  // process-wide max_allowed_parallelism is below threads + 1, the executor raises it while it
  // lives (its producers never join the arena); it never lowers a limit the service has set.
  int threads = 0;
  Context context;
  // Observers registered from the start, in this order (more may be added later with
  // add_observer). Not owned: each must stay alive until it is removed or the executor is
  // destroyed. Null entries are ignored.
  std::vector<Observer*> observers{};
  // Records accepted typed tasks and their ends, and recovers unfinished ones on construction
  // (see octo/journal.hpp). Shared so the service can keep reading the journal's own status.
  // nullptr = Durability::kNone.
  std::shared_ptr<Journal> journal;
  // Most recent dead letters kept for inspection; older ones are dropped (and counted).
  std::size_t dead_letter_capacity = 1024;
  // Tasks a drainer runs before yielding its worker to other arms (it re-enqueues itself).
  std::uint32_t fairness_budget = 256;
  // Every aging_period-th batch a drainer serves the lowest non-empty priority first.
  std::uint32_t aging_period = 16;
  // How often the timer thread looks for arms whose drainers are all inside slow tasks while work
  // waits and parallelism is spare, and adds a drainer. Zero disables the check; then a task that
  // arrives behind a slow one on a lightly loaded arm may wait for it to finish. The check pauses
  // while no arm has drainers or queued work, and resumes with the next drainer.
  std::chrono::nanoseconds stall_check = std::chrono::milliseconds(1);
  // The span of the percentiles in ArmStatus::queue_wait / run_time (6 slots of a sixth each).
  std::chrono::nanoseconds latency_window = std::chrono::seconds(60);
  // Tasks whose queue wait and run time are recorded: 1 = every task (the default); N = one in N
  // per enqueueing thread, N rounded up to a power of two. Timing a task costs two CycleClock
  // reads, one on the enqueueing thread and one on the worker: about 10 ns each on the project's
  // AMD VM, a fifth of a no-op task's whole cost there (docs/benchmarks.md). Timeouts and deadlines
  // are timed regardless.
  std::uint32_t time_one_in = 1;
  // How long an arm's drainer that finds its queue empty keeps polling it before it gives its
  // worker back (one such drainer per executor at a time; blocking arms' threads never poll). A
  // task that arrives meanwhile starts within about a microsecond, where a retired drainer needs
  // an arena enqueue and, once the worker sleeps, a wake-up that takes tens of microseconds on a
  // virtual machine. The cost is up to one core busy for this long after an arm's last task; the
  // poll gives way at once to another arm's drainer waiting for a worker, to pause() and to
  // shutdown. Zero retires at once. Between 0 and 1 s, else the constructor throws
  // std::invalid_argument.
  std::chrono::nanoseconds idle_spin = std::chrono::microseconds(100);
  // Then how long that drainer stays parked (blocked, no CPU) before it gives its worker back;
  // the first task of its arm wakes it (a producer's call pays the wake-up, a few microseconds,
  // once per idle spell), and it leaves at once for another arm's drainer, pause() and shutdown.
  // A parked drainer holds one TBB worker that no other arena can use meanwhile (another
  // executor's, or the service's own TBB work), so the default is short. Where this executor is
  // the process's only TBB user, a longer park saves TBB's own spin before its worker sleeps
  // (about 400 us of CPU per idle spell on the project's VM). Zero retires after the spin.
  // Between 0 and 1 h, else the constructor throws std::invalid_argument.
  std::chrono::nanoseconds idle_park = std::chrono::milliseconds(1);

  // Sets the handler of the arm called `arm`; throws std::invalid_argument if there is none.
  ExecutorConfig& on(std::string_view arm, Handler handler);
};

// An arm's latency histograms since the executor started (for Prometheus; the windowed
// percentiles are in ArmStatus).
struct ArmLatency {
  HistogramSnapshot queue_wait;  // enqueue to start, every task, nanoseconds
  HistogramSnapshot run_time;    // each run, nanoseconds
};

class Executor {
 public:
  static constexpr std::uint32_t kMaxArms = 64;

  // Throws std::invalid_argument on a bad configuration (names the arm and value).
  explicit Executor(ExecutorConfig config = {});
  // Cancels what has not started and waits for running tasks.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Routes by task.type and enqueues. Never throws; a refusal is counted in status().
  EnqueueResult enqueue(Task task) noexcept;
  // Enqueues on a known arm, skipping routing.
  EnqueueResult enqueue(ArmId arm, Task task) noexcept;
  // enqueue() with task.run_at = now + delay (past the clock's range: its end); a delay of 0 or
  // less leaves task.run_at as given (none: at once). A delayed task waits in the timer (no
  // thread, no queue slot) and is refused with kFull when its arm already holds `capacity` tasks
  // there.
  EnqueueResult enqueue_after(std::chrono::nanoseconds delay, Task task) noexcept;
  // Runs `fn` (returning void or Outcome) on `arm`; failures retry and dead-letter as tasks do.
  // A callable that is trivially copyable and word-sized is stored inline; larger ones cost one
  // heap allocation (std::terminate if that allocation fails).
  template <class F>
  EnqueueResult submit(ArmId arm, F&& fn, Priority priority = Priority::kNormal) noexcept {
    const auto [ops, word] = detail::make_job(std::forward<F>(fn));
    return submit_job(arm, ops, word, priority);
  }

  // Cancels a task that has not started (queued or waiting for a retry). True if it will not run
  // again; false if it is unknown, running or finished. A running task is asked to stop
  // (octo::this_task::stop_requested() turns true in its handler) and false is returned: it may
  // still succeed; if it fails it is cancelled, not retried.
  bool cancel(TaskId id) noexcept;

  // Registers `observer` for every event from here on (a second add of the same one is ignored).
  // Not owned: it must stay alive until remove_observer(observer) returns or the executor is
  // destroyed (then it gets on_executor_destroyed). Thread-safe; not from inside on_event.
  void add_observer(Observer& observer);
  // Unregisters `observer`; once it returns, no thread is calling it and none will, so it may be
  // destroyed. False if it was not registered. Thread-safe; not from inside on_event.
  bool remove_observer(Observer& observer);

  // The arm `type` routes to (what enqueue(Task) would pick), or nullopt. Lock-free.
  std::optional<ArmId> resolve(std::string_view type) const noexcept;
  std::optional<ArmId> arm_id(std::string_view name) const noexcept;
  std::size_t arm_count() const noexcept;

  // Run-time reconfiguration (cold paths; throw std::invalid_argument on bad values).
  ArmId add_arm(const ArmConfig& config);
  void set_enabled(ArmId arm, bool enabled);
  // Holds the arm's queued work: running tasks finish, no new one starts, and enqueue still
  // accepts (unlike set_enabled(false), which refuses). Retries wait in the queue too; deadlines
  // keep running (a held task expires when the arm resumes). wait_idle() waits for held work;
  // shutdown(kDrain) resumes every arm. Idempotent.
  void pause(ArmId arm);
  void resume(ArmId arm);
  void set_max_parallel(ArmId arm, std::uint32_t max_parallel);
  void set_routes(const RoutingTable& routes);

  // Periodic tasks (octo/schedule.hpp): `spec.task` enqueued every period or at each time of a
  // cron expression, on the executor's timer thread. Throws std::invalid_argument naming the
  // schedule and the field. The others are false for a name that is not scheduled; a paused
  // schedule keeps its counters, and resume plans its next firing from now.
  void schedule(ScheduleSpec spec);
  bool pause_schedule(std::string_view name);
  bool resume_schedule(std::string_view name);
  bool remove_schedule(std::string_view name);
  std::vector<ScheduleStatus> schedules() const;

  RuntimeStatus status() const;
  ArmStatus arm_status(ArmId arm) const;
  ArmLatency arm_latency(ArmId arm) const;
  std::vector<DeadLetter> dead_letters() const;
  std::uint64_t dead_letters_dropped() const noexcept;
  const Context& context() const noexcept;

  // Blocks until every accepted task has finished, or the timeout passes; true when idle.
  // From a handler of this executor it returns false at once: its own task is not finished,
  // so waiting would deadlock.
  bool wait_idle(std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max());

  // Stops accepting work (enqueue returns kStopped from here on) and winds down. Idempotent.
  // With a journal, tasks this cancels stay journaled and the next executor on it runs them.
  // From a handler of this executor it does not wait for the calling task (it counts in
  // still_running); the executor's destructor, which waits for every task, must not run there.
  // Throws std::invalid_argument for a mode that is not kDrain or kCancel.
  ShutdownReport shutdown(ShutdownMode mode = ShutdownMode::kDrain,
                          std::chrono::nanoseconds deadline = std::chrono::seconds(30));

 private:
  struct Impl;
  static EnqueueResult enqueue_typed(Impl& im, ArmId arm, Task& task) noexcept;
  EnqueueResult submit_job(ArmId arm, const detail::JobOps* ops, std::uintptr_t word,
                           Priority priority) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo

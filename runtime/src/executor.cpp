#include "octo/executor.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include <concurrentqueue/concurrentqueue.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include "detail/arm_state.hpp"
#include "detail/asymmetric_fence.hpp"
#include "detail/blocking_pool.hpp"
#include "detail/compiled_routes.hpp"
#include "detail/dead_letter_store.hpp"
#include "detail/observer_registry.hpp"
#include "detail/running_slot.hpp"
#include "detail/task_slab.hpp"
#include "detail/timer.hpp"
#include "detail/unique_keys.hpp"
#include "octo/cron.hpp"
#include "octo/cycle_clock.hpp"
#include "octo/detail/annotated_mutex.hpp"
#include "octo/this_task.hpp"

// TBB hands a drainer to a worker through its own (uninstrumented) queues, and moodycamel orders
// its slots with standalone fences; ThreadSanitizer models neither. For the queue hand-off we
// annotate the edge (release before push, acquire after take). For TBB we cannot: the functor is
// copied into TBB's task object inside arena.enqueue and read by the worker before our code runs,
// so the producer-side accesses inside arena.enqueue (TBB's code, not ours) are not recorded.
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#define OCTO_TSAN_ACQUIRE(p) __tsan_acquire(static_cast<void*>(p))
#define OCTO_TSAN_RELEASE(p) __tsan_release(static_cast<void*>(p))
#define OCTO_TSAN_IGNORE_BEGIN()                   \
  do {                                             \
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);  \
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__); \
  } while (0)
#define OCTO_TSAN_IGNORE_END()                   \
  do {                                           \
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__); \
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);  \
  } while (0)
#else
#define OCTO_TSAN_ACQUIRE(p) static_cast<void>(p)
#define OCTO_TSAN_RELEASE(p) static_cast<void>(p)
#define OCTO_TSAN_IGNORE_BEGIN() static_cast<void>(0)
#define OCTO_TSAN_IGNORE_END() static_cast<void>(0)
#endif

namespace octo {

namespace {

using Arm = detail::ArmState;
using detail::RunningSlot;
using detail::TaskNode;
using detail::Work;
using detail::WorkQueue;
using SteadyTime = std::chrono::steady_clock;

constexpr std::size_t kBatch = 32;
// Batches grow (doubling up to kBatch) while tasks average less than this, and fall back to one
// task when they are slower: a slow task must not hold fast ones it has already taken.
constexpr std::int64_t kFastTaskNs = 2'000;
// A drainer steps aside (a yield) after a short batch of tasks averaging less than this: no-op
// sized work, where the producer's lead turns the next take into a batch. Longer tasks do not:
// the yield (a microsecond or more on this VM) would be added to the next task's queue wait (at
// half load, 1 us tasks waited a median 2 us instead of 0.4).
constexpr std::int64_t kTinyTaskNs = 250;
// A second drainer is worth an arena enqueue only when the queue holds this many tasks per running
// drainer; below it the running drainer reaches the new task within a few microseconds anyway.
constexpr std::int64_t kSpawnDepth = 16;

// One turn of a polling loop: tells the core this is a spin (x86 `pause`: less power, and the
// other hyperthread runs), without giving up the thread.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// CLOCK_REALTIME_COARSE: a few ns instead of ~20; millisecond resolution is plenty for "created".
std::chrono::system_clock::time_point coarse_wall() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

double unit_random() noexcept {
  thread_local std::minstd_rand rng(
      static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id())));
  return std::generate_canonical<double, 32>(rng);
}

// The precise wall clock, for deadlines (only tasks that have one pay for it).
std::chrono::system_clock::time_point precise_wall() noexcept {
  return std::chrono::system_clock::now();
}

bool has_deadline(const Task& t) noexcept { return t.deadline.time_since_epoch().count() != 0; }

// The steady time `wait` from now, saturating at the clock's end.
std::chrono::steady_clock::time_point steady_after(std::chrono::nanoseconds wait) noexcept {
  const auto now = std::chrono::steady_clock::now();
  return wait >= std::chrono::steady_clock::time_point::max() - now
             ? std::chrono::steady_clock::time_point::max()
             : now + wait;
}

// How long until `run_at`, on the steady clock the timer runs on; zero when it is not ahead.
std::chrono::nanoseconds until(std::chrono::system_clock::time_point run_at,
                               std::chrono::system_clock::time_point now) noexcept {
  if (run_at <= now) return std::chrono::nanoseconds(0);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(run_at - now);
}

// Enqueue-to-start in nanoseconds from a 48-bit enqueue stamp and the start's ticks. A stamp
// "after" the start (ticks of two cores a few cycles apart) is a wait of zero.
std::uint64_t waited_ns(std::uint64_t stamp, std::uint64_t start) noexcept {
  const std::uint64_t d = (start - stamp) & Work::kStampMask;
  return d > Work::kStampMask / 2 ? 0 : CycleClock::to_ns(d);
}

constexpr std::string_view kExpired = "expired";
constexpr std::string_view kNoMemoryToPark = "out of memory parking a task of a busy key";

// A task waiting in the timer: a retry's backoff, or a delayed task (run_at) until it is due.
struct Retry {
  ArmId arm;
  Priority priority;
  Work work;
  bool scheduled = false;  // a delayed task: shutdown(kDrain) does not wait for it
  // Not a task at all: a periodic schedule's next firing (the token it was armed with).
  std::uint64_t schedule = 0;
};

// One periodic schedule (Executor::schedule), under Impl::schedules_mu.
struct ScheduleEntry {
  ScheduleSpec spec;
  std::optional<CronSchedule> cron;
  std::chrono::system_clock::time_point origin;   // `every`: firing k is at origin + k * every
  std::chrono::system_clock::time_point planned;  // the next firing, before jitter
  std::uint64_t token = 0;                        // the armed timer item; 0 while paused
  ScheduleStatus st;
  TaskId recent[2] = {0, 0};  // the last two tasks it enqueued, newest first
};

void validate(const ArmConfig& c) {
  const std::string who = "octo::ArmConfig '" + c.name + "': ";
  if (c.name.empty()) throw std::invalid_argument("octo::ArmConfig: arm name must not be empty");
  if (c.max_parallel == 0) throw std::invalid_argument(who + "max_parallel must be >= 1 (got 0)");
  if (c.capacity == 0) throw std::invalid_argument(who + "capacity must be >= 1 (got 0)");
  if (c.max_attempts == 0 || c.max_attempts > 65535) {
    throw std::invalid_argument(who + "max_attempts must be in [1, 65535] (got " +
                                std::to_string(c.max_attempts) + ")");
  }
  if (c.backoff_base.count() < 0 || c.backoff_max < c.backoff_base) {
    throw std::invalid_argument(who + "need 0 <= backoff_base <= backoff_max (got " +
                                std::to_string(c.backoff_base.count()) + " ms and " +
                                std::to_string(c.backoff_max.count()) + " ms)");
  }
  if (c.max_parallel_per_key && *c.max_parallel_per_key == 0) {
    throw std::invalid_argument(who + "max_parallel_per_key must be >= 1 or unset (got 0)");
  }
  if (c.timeout && c.timeout->count() <= 0) {
    throw std::invalid_argument(who + "timeout must be > 0 or unset (got " +
                                std::to_string(c.timeout->count()) + " ns)");
  }
}

struct Local {
  std::uint64_t processed = 0, ok = 0, failed = 0, retried = 0, dead = 0, cancelled = 0,
                expired = 0, overran = 0;
};

// The drainer slot and executor of the task running on this thread (octo::this_task).
thread_local RunningSlot* t_slot = nullptr;

}  // namespace

std::string_view to_string(EnqueueError e) noexcept {
  switch (e) {
    case EnqueueError::kEmptyType:
      return "empty task type";
    case EnqueueError::kUnroutable:
      return "no route for task type";
    case EnqueueError::kUnknownArm:
      return "unknown arm";
    case EnqueueError::kDisabled:
      return "arm disabled";
    case EnqueueError::kFull:
      return "arm queue full";
    case EnqueueError::kNoHandler:
      return "arm has no handler for typed tasks";
    case EnqueueError::kStopped:
      return "executor stopped";
    case EnqueueError::kJournal:
      return "journal could not record the task";
    case EnqueueError::kBadPriority:
      return "priority outside 0-3";
    case EnqueueError::kDuplicate:
      return "a task with this unique key is pending";
    case EnqueueError::kBadUnique:
      return "unique task with an empty key or a TTL of zero or less";
  }
  return "unknown error";
}

ExecutorConfig& ExecutorConfig::on(std::string_view arm, Handler handler) {
  for (auto& a : arms) {
    if (a.name == arm) {
      a.handler = std::move(handler);
      return *this;
    }
  }
  throw std::invalid_argument("ExecutorConfig::on: no arm named '" + std::string(arm) + "'");
}

struct Executor::Impl {
  explicit Impl(ExecutorConfig&& cfg)
      : context(std::move(cfg.context)),
        fairness_budget(std::max<std::uint32_t>(1, cfg.fairness_budget)),
        aging_period(std::max<std::uint32_t>(1, cfg.aging_period)),
        threads(cfg.threads > 0 ? cfg.threads : tbb::info::default_concurrency()),
        slots(std::max(2, threads)),
        journal(std::move(cfg.journal)),
        jr(journal.get()),
        journal_sync(jr != nullptr && jr->durability() == Durability::kSync),
        latency_window(cfg.latency_window),
        stall_enabled(cfg.stall_check.count() > 0),
        time_mask(std::bit_ceil(std::clamp<std::uint32_t>(cfg.time_one_in, 1, 1u << 31)) - 1),
        time_all(time_mask == 0),
        fast_ticks(CycleClock::from_ns(std::chrono::nanoseconds(kFastTaskNs))),
        tiny_ticks(CycleClock::from_ns(std::chrono::nanoseconds(kTinyTaskNs))),
        spin_ticks(cfg.idle_spin.count() > 0 ? CycleClock::from_ns(cfg.idle_spin) : 0),
        park_for(cfg.idle_park),
        idle_enabled(spin_ticks != 0 || park_for.count() > 0),
        arena(threads, 0),
        dead(cfg.dead_letter_capacity) {
    if (cfg.time_one_in == 0) {
      throw std::invalid_argument("octo::ExecutorConfig: time_one_in must be >= 1 (got 0)");
    }
    if (cfg.idle_spin.count() < 0 || cfg.idle_spin > std::chrono::seconds(1)) {
      throw std::invalid_argument("octo::ExecutorConfig: idle_spin must be in [0, 1 s] (got " +
                                  std::to_string(cfg.idle_spin.count()) + " ns)");
    }
    if (cfg.idle_park.count() < 0 || cfg.idle_park > std::chrono::hours(1)) {
      throw std::invalid_argument("octo::ExecutorConfig: idle_park must be in [0, 1 h] (got " +
                                  std::to_string(cfg.idle_park.count()) + " ns)");
    }
    if (cfg.latency_window.count() <= 0) {
      throw std::invalid_argument("octo::ExecutorConfig: latency_window must be > 0 (got " +
                                  std::to_string(cfg.latency_window.count()) + " ns)");
    }
    // TBB's worker pool defaults to one thread less than the cores (it expects the caller to
    // join); our producers never join the arena, so it needs one worker per slot. TBB applies the
    // smallest max_allowed_parallelism of all live controls to the whole process, so add one only
    // when it raises the current limit: never cap the embedding service's own TBB use.
    const std::size_t want = static_cast<std::size_t>(threads) + 1;
    using tbb::global_control;
    if (global_control::active_value(global_control::max_allowed_parallelism) < want) {
      workers.emplace(global_control::max_allowed_parallelism, want);
    }
    if (cfg.arms.size() > kMaxArms) {
      throw std::invalid_argument("octo::Executor: at most " + std::to_string(kMaxArms) +
                                  " arms (got " + std::to_string(cfg.arms.size()) + ")");
    }
    for (const auto& a : cfg.arms) validate(a);
    for (std::size_t i = 0; i < cfg.arms.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (cfg.arms[i].name == cfg.arms[j].name) {
          throw std::invalid_argument("octo::Executor: duplicate arm name '" + cfg.arms[i].name +
                                      "'");
        }
      }
    }
    for (std::size_t i = 0; i < cfg.arms.size(); ++i) {
      arms[i] = make_arm(cfg.arms[i], static_cast<ArmId>(i));
    }
    arm_count.store(static_cast<std::uint32_t>(cfg.arms.size()), std::memory_order_release);
    {
      octo::detail::LockGuard lock(config_mu);  // alone here; keeps the analysis whole
      install_routes(cfg.routes);
    }
    for (Observer* o : cfg.observers)
      if (o != nullptr) observers.add(*o);
    // Read before any thread starts: a journal that cannot be read fails the constructor.
    JournalRecovery recovery;
    if (jr != nullptr) recovery = jr->recover();
    // The tick also watches running tasks' timeouts, so it runs (every millisecond when the
    // stall check is off) whenever something is running.
    timer = std::make_unique<detail::TimerQueue<Retry>>(
        [this](Retry&& r) { fire(r); }, [this] { return watch(); },
        stall_enabled ? cfg.stall_check : std::chrono::milliseconds(1));
    try {
      for (DeadLetter& d : recovery.dead_letters) dead.keep(std::move(d));
      for (JournaledTask& t : recovery.unfinished) restore(std::move(t));
    } catch (...) {
      destroy();  // drainers of the tasks restored so far must not outlive this object
      throw;
    }
  }

  // Re-enqueues a task a previous run accepted and did not finish. It was accepted then, so it
  // bypasses capacity and the enabled flag (as retries do); an arm that no longer exists, or has
  // no handler, dead-letters it instead of dropping it.
  void restore(JournaledTask&& jt) {
    const std::uint64_t key = jt.task.durable_key;
    Arm* a = nullptr;
    if (auto id = find_arm(jt.arm)) {
      a = arms[*id].get();
    } else if (auto routed = routes.load(std::memory_order_relaxed)->find(jt.task.type)) {
      a = arms[*routed].get();
    }
    if (a == nullptr || !a->handler) {
      std::string reason =
          "recovered from the journal, but arm '" + jt.arm + "' " +
          (a ? "has no handler" : "is not configured and no route matches '" + jt.task.type + "'");
      jr->dead_lettered(key, reason, jt.task.attempt);
      DeadLetter d;
      d.arm = std::move(jt.arm);
      d.id = key;
      d.attempts = jt.task.attempt;
      d.reason = std::move(reason);
      d.when = coarse_wall();
      d.task = std::move(jt.task);
      dead.keep(std::move(d));
      return;
    }
    TaskNode* node = slab.acquire();
    if (node == nullptr) throw JournalError("octo::Executor: no memory for recovered tasks");
    const Priority prio = jt.task.priority;
    node->task = std::move(jt.task);
    node->task.id = node->id();
    Work w;
    w.word = reinterpret_cast<std::uintptr_t>(node);
    if (has_deadline(node->task)) w.meta = Work::kHasDeadline;
    if (const auto wait = until(node->task.run_at, precise_wall()); wait.count() > 0) {
      // Still ahead: back to the timer with what is left of its delay (no capacity check: the
      // task was accepted by the run that journaled it).
      a->accepted.fetch_add(1, std::memory_order_seq_cst);
      a->taken.fetch_add(1, std::memory_order_seq_cst);
      a->delayed.fetch_add(1, std::memory_order_relaxed);
      timer->schedule(steady_after(wait), Retry{a->id, prio, w, true});
      recovered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    a->accepted.fetch_add(1, std::memory_order_seq_cst);
    OCTO_TSAN_RELEASE(&a->queues[static_cast<int>(prio)]);
    if (!a->enqueue(static_cast<int>(prio), w)) {
      a->accepted.fetch_sub(1, std::memory_order_seq_cst);
      finish(w);
      throw JournalError("octo::Executor: no memory for recovered tasks");
    }
    recovered.fetch_add(1, std::memory_order_relaxed);
    wake(*a, a->queued());
  }

  // Timer thread, every stall_check: an arm with waiting tasks, spare parallelism and no task
  // finished since the last look has its drainers stuck in slow tasks; add one. This bounds the
  // cost of wake()'s shallow-queue shortcut for slow tasks to about one stall_check period.
  // Returns whether any arm has drainers (the only time a stall can happen): when none has,
  // the timer pauses until spawn() resumes it, so an idle executor's timer sleeps.
  // The same tick asks runs past their timeout or deadline to stop, and rolls the arms' latency
  // windows (a histogram's window needs a roll per slot while values arrive, and values arrive
  // only while drainers run, which keeps this tick going).
  bool watch() noexcept {
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    bool busy = false;
    for (std::uint32_t i = 0; i < n; ++i) {
      Arm& a = *arms[i];
      const std::uint64_t progress = a.processed.load(std::memory_order_relaxed);
      const bool stalled = progress == a.watched_progress;
      a.watched_progress = progress;
      const bool held = a.paused.load(std::memory_order_relaxed);
      if (stall_enabled && stalled && !held && a.queued() > 0) wake(a, INT64_MAX / 2);
      try {
        a.queue_wait.roll();
        a.run_time.roll();
      } catch (...) {  // out of memory: the window is rolled by the next read instead
      }
      // seq_cst: the second half of the timer's pause protocol (see TimerQueue::resume). Queued
      // work with no drainer keeps it ticking too (this look spawns one), unless the arm is
      // paused (resume() wakes it).
      // A parked drainer is not busy: it runs nothing, and resumes the tick when it wakes.
      const std::uint32_t idle = parked.load(std::memory_order_seq_cst) == &a ? 1 : 0;
      busy = busy || a.active.load(std::memory_order_seq_cst) > idle || (!held && a.queued() > 0);
    }
    const std::uint64_t now = CycleClock::now();
    for_each_slot([now](RunningSlot& slot) {
      if (slot.running.load(std::memory_order_relaxed) == 0) return;
      const std::uint64_t seq = slot.seq.load(std::memory_order_relaxed);
      const std::uint64_t at = slot.stop_at.load(std::memory_order_relaxed);
      const bool due = at != 0 && now >= at;
      // Once per run: a request already made (cancel, shutdown) has woken its token itself.
      if (due && slot.stop_seq.load(std::memory_order_relaxed) != seq)
        slot.request_stop(seq, false);
    });
    return busy;
  }

  // Every drainer slot: the arena's, then each blocking arm's. Cold (timer, shutdown, status).
  template <class F>
  void for_each_slot(F&& f) noexcept {
    for (std::size_t i = 0; i < static_cast<std::size_t>(slots); ++i) f(running[i]);
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (arms[i]->pool) arms[i]->pool->for_each_slot(f);
    }
  }

  std::unique_ptr<Arm> make_arm(const ArmConfig& c, ArmId id) {
    auto a = std::make_unique<Arm>(c, id, latency_window);
    if (c.blocking) {
      Arm* raw = a.get();
      a->pool = std::make_unique<detail::BlockingPool>(
          ("octo-" + c.name).substr(0, 15),
          [this, raw](RunningSlot& slot) { drain(*raw, slot, -1); });
    }
    if (c.max_parallel_per_key)
      a->keys = std::make_unique<detail::KeyLimiter>(*c.max_parallel_per_key);
    return a;
  }

  // --- configuration -----------------------------------------------------------------------

  Arm* arm_at(ArmId id) const noexcept {
    // Acquire pairs with the release in add_arm: the Arm is fully built before it is visible.
    return id < arm_count.load(std::memory_order_acquire) ? arms[id].get() : nullptr;
  }

  Arm& arm_or_throw(ArmId id, const char* what) const {
    Arm* a = arm_at(id);
    if (!a)
      throw std::invalid_argument(std::string("octo::Executor::") + what + ": no arm with id " +
                                  std::to_string(id));
    return *a;
  }

  std::optional<ArmId> find_arm(std::string_view name) const noexcept {
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (arms[i]->name == name) return i;
    }
    return std::nullopt;
  }

  void install_routes(const RoutingTable& table) OCTO_REQUIRES(config_mu) {
    auto compiled =
        detail::compile_routes(table, [this](std::string_view name) { return find_arm(name); });
    // Release: readers see a fully built table. Old tables stay alive until the executor dies, so
    // a reader never needs a reference count; tables change rarely (configuration only).
    routes.store(compiled.get(), std::memory_order_release);
    retired_routes.push_back(std::move(compiled));
  }

  // --- enqueue path ------------------------------------------------------------------------

  // `w` by reference, consumed: passed by value, the 24-byte slot went through the stack, and
  // reading it back as one 16-byte load of two 8-byte stores missed store forwarding (half of
  // enqueue_typed's profile).
  EnqueueResult push(Arm& a, Work& w, Priority prio, TaskId id) noexcept {
    // Capacity is checked before the push, so concurrent producers can overshoot it by at most
    // one task each; a reservation counter would make it exact at the cost of a second RMW.
    thread_local std::uint32_t tick = 0;
    ++tick;
    const std::uint64_t in_now =
        a.accepted.load(std::memory_order_relaxed) + a.requeued.load(std::memory_order_relaxed);
    std::uint64_t seen = a.taken_seen.load(std::memory_order_relaxed);
    if (tick % 32 == 0 || static_cast<std::int64_t>(in_now - seen) >= a.capacity) {
      seen = a.taken.load(std::memory_order_relaxed);
      a.taken_seen.store(seen, std::memory_order_relaxed);
      if (static_cast<std::int64_t>(in_now - seen) >= a.capacity) {
        a.rejected.fetch_add(1, std::memory_order_relaxed);
        finish(w);
        return EnqueueResult::refused(EnqueueError::kFull);
      }
    }
    // The enqueue time (of every task, or of one in time_one_in): its queue wait is recorded
    // when it starts. 0 means "not timed".
    if (time_all || (tick & time_mask) == 0) {
      const std::uint64_t t = CycleClock::now() & Work::kStampMask;
      w.meta |= t == 0 ? 1 : t;
    }
    // Journaled before it is counted: a sync wait here must not look like a push in flight to a
    // retiring drainer (which would spin for the whole commit).
    if (!journal_accept(a, w)) return EnqueueResult::refused(EnqueueError::kJournal);
    // Counted before the push, so a drainer can never finish a task that is not yet accepted.
    const std::uint64_t ticket = admit(a, w);
    if (ticket == 0) return EnqueueResult::refused(EnqueueError::kStopped);
    OCTO_TSAN_RELEASE(&a.queues[static_cast<int>(prio)]);
    if (!a.enqueue(static_cast<int>(prio), w)) {  // allocation failure
      a.accepted.fetch_sub(1, std::memory_order_seq_cst);
      if (waiters.load(std::memory_order_seq_cst) > 0) notify_idle();
      a.rejected.fetch_add(1, std::memory_order_relaxed);
      journal_end(w, JournalEnd::kCancelled);
      finish(w);
      return EnqueueResult::refused(EnqueueError::kFull);
    }
    wake(a, static_cast<std::int64_t>(ticket + a.requeued.load(std::memory_order_relaxed) - seen),
         true);
    return EnqueueResult::accepted(id);
  }

  // Counts `w` as accepted on `a` and returns the new `accepted` (>= 1), or 0 when shutdown has
  // begun (then the count is undone, the task refused, counted and finished). seq_cst because it
  // is the producer half of two handshakes: with retire() (store accepted, then load active) and
  // with shutdown, which stores `stopping` and then reads `accepted`: we increment `accepted`
  // and then read `stopping`, so either we see the stop and undo, or shutdown sees this task as
  // pending and waits for it. No task slips in after shutdown returns.
  [[gnu::always_inline]] std::uint64_t admit(Arm& a, Work& w) noexcept {
    const std::uint64_t ticket = a.accepted.fetch_add(1, std::memory_order_seq_cst) + 1;
    if (!stopping.load(std::memory_order_seq_cst)) [[likely]]
      return ticket;
    a.accepted.fetch_sub(1, std::memory_order_seq_cst);
    rejected_stopped.fetch_add(1, std::memory_order_relaxed);
    journal_end(w, JournalEnd::kCancelled);
    finish(w);
    if (waiters.load(std::memory_order_seq_cst) > 0) notify_idle();
    return 0;
  }

  // A typed task's accept record (and, with kSync, its commit); false (the task refused, counted
  // and finished) when the journal could not take it.
  bool journal_accept(Arm& a, Work& w) noexcept {
    TaskNode* node = w.node();
    if (jr == nullptr || node == nullptr) return true;
    const JournalTicket t = jr->accepted(a.name, node->task);
    if (!t || (journal_sync && !jr->wait_durable(t.seq))) {
      if (t) jr->cancelled(t.key);
      a.rejected.fetch_add(1, std::memory_order_relaxed);
      finish(w);
      return false;
    }
    node->task.durable_key = t.key;
    return true;
  }

  // A typed task whose run_at is `wait` ahead: accepted now, and handed to the timer, which queues
  // it when it is due (fire()). Bounded: an arm holds at most `capacity` tasks in the timer.
  EnqueueResult schedule_at(Arm& a, Work w, Priority prio, TaskId id,
                            std::chrono::nanoseconds wait) noexcept {
    if (static_cast<std::int64_t>(a.delayed.load(std::memory_order_relaxed)) >= a.capacity) {
      a.rejected.fetch_add(1, std::memory_order_relaxed);
      finish(w);
      return EnqueueResult::refused(EnqueueError::kFull);
    }
    if (!journal_accept(a, w)) return EnqueueResult::refused(EnqueueError::kJournal);
    // Never queued until it is due: taken at once (as an expiry at enqueue is), and fire() counts
    // it back in as `requeued`, as it does a retry.
    if (admit(a, w) == 0) return EnqueueResult::refused(EnqueueError::kStopped);
    a.taken.fetch_add(1, std::memory_order_seq_cst);
    a.delayed.fetch_add(1, std::memory_order_relaxed);
    try {
      timer->schedule(steady_after(wait), Retry{a.id, prio, w, true});
    } catch (...) {  // no memory for the timer's heap: refused, as a full queue is
      a.delayed.fetch_sub(1, std::memory_order_relaxed);
      a.accepted.fetch_sub(1, std::memory_order_seq_cst);
      a.taken.fetch_sub(1, std::memory_order_seq_cst);
      a.rejected.fetch_add(1, std::memory_order_relaxed);
      journal_end(w, JournalEnd::kCancelled);
      finish(w);
      if (waiters.load(std::memory_order_seq_cst) > 0) notify_idle();
      return EnqueueResult::refused(EnqueueError::kFull);
    }
    return EnqueueResult::accepted(id);
  }

  // Lifts a pause. The flag is stored before wake() reads `active` (both seq_cst): a drainer that
  // retired because it saw the pause decremented `active` before that read, so a drainer is
  // spawned for what it left queued.
  void resume(Arm& a) noexcept {
    if (!a.paused.exchange(false, std::memory_order_seq_cst)) return;
    if (a.queued() > 0) wake(a, INT64_MAX / 2);
  }

  // Runs of arm `id` now past their timeout or deadline.
  std::uint64_t stuck(ArmId id) noexcept {
    const std::uint64_t now = CycleClock::now();
    std::uint64_t count = 0;
    for_each_slot([&](RunningSlot& slot) {
      if (slot.running.load(std::memory_order_relaxed) == 0 ||
          slot.arm.load(std::memory_order_relaxed) != id)
        return;
      const std::uint64_t at = slot.stop_at.load(std::memory_order_relaxed);
      if (at != 0 && now > at) ++count;
    });
    return count;
  }

  // A task whose deadline passed before it was enqueued: accepted (it has an id, and is counted)
  // and dead-lettered as expired at once, without a queue or the journal.
  EnqueueResult expire_at_enqueue(Arm& a, Work& w, TaskId id) noexcept {
    // Counted first, as push() does: a check of `stopping` before the count would let a task be
    // accepted after shutdown() returned.
    if (admit(a, w) == 0) return EnqueueResult::refused(EnqueueError::kStopped);
    // Never queued: taken at once, so queued() (accepted + requeued - taken) does not count it.
    a.taken.fetch_add(1, std::memory_order_seq_cst);
    expire(a, w);
    finish(w);
    Local l;
    l.dead = 1;
    l.expired = 1;
    flush(a, l);
    return EnqueueResult::accepted(id);
  }

  // A typed task in its node: expired at once, handed to the timer (run_at), or queued. Inlined
  // into enqueue_typed(): as a call, the typed no-op enqueue lost 7% (docs/benchmarks.md).
  [[gnu::always_inline]] EnqueueResult enqueue_node(Arm& a, Work w, Priority prio,
                                                    TaskId id) noexcept {
    const TaskNode* node = w.node();
    if (has_deadline(node->task) || node->task.run_at.time_since_epoch().count() != 0)
        [[unlikely]] {
      const auto wall = precise_wall();
      if (has_deadline(node->task)) {
        if (wall >= node->task.deadline) return expire_at_enqueue(a, w, id);
        w.meta = Work::kHasDeadline;
      }
      if (const auto wait = until(node->task.run_at, wall); wait.count() > 0)
        return schedule_at(a, w, prio, id, wait);
    }
    return push(a, w, prio, id);
  }

  // A typed task with a unique key: claimed before it is queued, given back if it is then
  // refused. Cold: only unique tasks come here.
  [[gnu::noinline]] EnqueueResult enqueue_unique(Arm& a, Work w, Priority prio,
                                                 TaskId id) noexcept {
    const Unique u = *w.node()->task.unique;  // the node is the drainers' once it is queued
    try {
      const auto ttl = std::chrono::duration_cast<std::chrono::nanoseconds>(u.ttl);
      const TaskId holder =
          uniques.claim(u.key, id, u.scope, SteadyTime::now(), steady_after(ttl),
                        [this](TaskId h, UniqueScope scope) { return unique_live(h, scope); });
      if (holder != 0) {
        a.rejected.fetch_add(1, std::memory_order_relaxed);
        finish(w);
        return EnqueueResult::duplicate(holder);
      }
    } catch (...) {  // no memory for the claim
      a.rejected.fetch_add(1, std::memory_order_relaxed);
      finish(w);
      return EnqueueResult::refused(EnqueueError::kFull);
    }
    const EnqueueResult r = enqueue_node(a, w, prio, id);
    if (!r) {
      try {
        uniques.release(u.key, id);
      } catch (...) {  // the claim's task is gone: the next claim of the key replaces it
      }
    }
    return r;
  }

  // Whether task `id` still holds a unique key claimed in `scope`: its slot still has its
  // generation and is queued (or running, for kQueuedOrRunning).
  bool unique_live(TaskId id, UniqueScope scope) const noexcept {
    const TaskNode* n = slab.find(id);
    if (n == nullptr) return false;
    // Acquire: pairs with the drainer's and the releaser's state changes, so a claim is never
    // judged on an older state than the one its holder has reached.
    const std::uint64_t w = n->word.load(std::memory_order_acquire);
    if ((w >> 2) != (id >> 32)) return false;
    return (w & 3) == TaskNode::kQueued ||
           ((w & 3) == TaskNode::kRunning && scope == UniqueScope::kQueuedOrRunning);
  }

  // Puts a drainer on the arena unless enough are running for the queue's depth.
  // `estimated`: `depth` came from the producer's cached `taken` (up to 31 pushes old), so a deep
  // reading is checked against the drainers' own count before it spawns a second drainer; a
  // stale reading spawned one for about every other task of a lone producer, and each spawn woke
  // a worker and cut a polling drainer's wait short.
  // Every caller has counted its task (`accepted` or `requeued`, seq_cst) and queued it first.
  void wake(Arm& a, std::int64_t depth, bool estimated = false) noexcept {
    // seq_cst, after that count: the producer half of park()'s handshake. The drainer parked on
    // this arm holds a slot, so the spawn below would be skipped: it must be woken.
    if (parked.load(std::memory_order_seq_cst) == &a) [[unlikely]]
      unpark(&a);
    // seq_cst: a paused arm spawns nothing; resume() stores the flag and then wakes (see there).
    if (a.paused.load(std::memory_order_seq_cst)) [[unlikely]]
      return;
    std::uint32_t cur = a.active.load(std::memory_order_seq_cst);
    const std::uint32_t limit = a.max_parallel.load(std::memory_order_relaxed);
    while (cur < limit) {
      // A running drainer will reach a shallow queue soon; it cannot retire without seeing this
      // task (see retire()), so skipping the spawn is safe and saves a full arena enqueue.
      if (cur > 0 && depth < kSpawnDepth * static_cast<std::int64_t>(cur)) return;
      if (cur > 0 && estimated) {
        estimated = false;
        depth = a.queued();
        continue;
      }
      if (a.active.compare_exchange_weak(cur, cur + 1, std::memory_order_seq_cst)) {
        spawn(a);
        return;
      }
    }
  }

  void spawn(Arm& a) noexcept {
    drainers.fetch_add(1, std::memory_order_relaxed);
    // After the active count rose (seq_cst, in wake()): a paused stall check starts again.
    timer->resume();
    post(a);
  }

  void post(Arm& a) noexcept {
    // A blocking arm's own threads (a mutex hand-off, which ThreadSanitizer sees); the arena only
    // if none could be started.
    if (a.pool && a.pool->post(a.max_parallel.load(std::memory_order_relaxed))) return;
    // After every read of `a` on this side: the edge must cover them all.
    OCTO_TSAN_RELEASE(&a);
    // seq_cst, then the load of `parked`: a parked drainer gives its worker up (see park()).
    posted.fetch_add(1, std::memory_order_seq_cst);
    if (parked.load(std::memory_order_seq_cst) != nullptr) [[unlikely]]
      unpark(nullptr);
    OCTO_TSAN_IGNORE_BEGIN();
    arena.enqueue([this, &a] {
      OCTO_TSAN_ACQUIRE(&a);
      posted.fetch_sub(1, std::memory_order_relaxed);
      // Drainers run only on this executor's arena threads, each on its own slot.
      const int index = tbb::this_task_arena::current_thread_index();
      assert(index >= 0 && index < slots);
      drain(a, running[static_cast<std::size_t>(index)], index);
    });
    OCTO_TSAN_IGNORE_END();
  }

  // --- drainers ----------------------------------------------------------------------------

  std::size_t take(Arm& a, Work* out, std::size_t want, std::uint32_t& tick,
                   Priority& prio) noexcept {
    // Aging: every aging_period-th batch starts from the lowest priority, so a steady stream of
    // critical work delays low-priority tasks by a bounded number of batches, never forever.
    const bool low_first = (++tick % aging_period) == 0;
    for (int i = 0; i < kPriorityCount; ++i) {
      const int p = low_first ? i : kPriorityCount - 1 - i;
      if (std::size_t n = a.queues[p].try_dequeue_bulk(out, want)) {
        OCTO_TSAN_ACQUIRE(&a.queues[p]);
        prio = static_cast<Priority>(p);
        return n;
      }
    }
    return 0;
  }

  // After `a`'s queue ran dry: polls it for up to idle_spin, then parks for up to idle_park,
  // keeping this drainer's slot throughout (producers see it active and spawn nothing; the one
  // that finds it parked wakes it, see unpark()). True when work arrived. False, to retire: at
  // once when another drainer already waits this way (one per executor), and as soon as the time
  // is up, a drainer of this executor waits for a worker, the arm is paused or shutdown begins.
  // A parked drainer costs no CPU, where a retired one costs TBB's own spin before its worker
  // sleeps (about 400 us of CPU per idle spell on the project's VM, docs/benchmarks.md).
  bool idle_wait(Arm& a) noexcept {
    const Arm* none = nullptr;
    // Acquire/release: the flag's holders share nothing through it; the pair only keeps its
    // hand-over visible to ThreadSanitizer.
    if (idle_arm.load(std::memory_order_relaxed) != nullptr ||
        !idle_arm.compare_exchange_strong(none, &a, std::memory_order_acquire))
      return false;
    bool arrived = poll(a);
    if (!arrived && park_for.count() > 0 && !must_leave(a)) arrived = park(a);
    idle_arm.store(nullptr, std::memory_order_release);
    return arrived;
  }

  // seq_cst: each load is the second half of a handshake with the writer of the flag, which
  // wakes a parked drainer after its store (post(), shutdown(), Executor::pause()).
  bool must_leave(const Arm& a) const noexcept {
    return posted.load(std::memory_order_seq_cst) != 0 ||
           stopping.load(std::memory_order_seq_cst) || a.paused.load(std::memory_order_seq_cst);
  }

  // Each turn reads lines that change only on a push (`accepted`) and on the events that end the
  // wait, so polling costs producers nothing until a task arrives.
  bool poll(const Arm& a) noexcept {
    const std::uint64_t until = CycleClock::now() + spin_ticks;
    for (std::uint32_t turn = 1;; ++turn) {
      if (a.queued() > 0) return true;
      if (must_leave(a)) return false;
      if (turn % 64 == 0) {
        if (CycleClock::now() >= until) return false;
        // Now and then a yield: a producer or another pool's thread on this core runs.
        std::this_thread::yield();
      } else {
        cpu_relax();
      }
    }
  }

  bool park(Arm& a) noexcept {
    const auto until = SteadyTime::now() + park_for;
    {
      std::unique_lock lock(park_mu);
      // seq_cst, then queued()'s seq_cst loads: a producer counts its task and then loads
      // `parked` (wake()), so either it sees this drainer parked and wakes it, or this sees its
      // task. The flags of must_leave() pair the same way with their writers.
      parked.store(&a, std::memory_order_seq_cst);
      while (parked.load(std::memory_order_relaxed) == &a && a.queued() <= 0 && !must_leave(a)) {
        if (park_cv.wait_until(lock, until) == std::cv_status::timeout) break;
      }
      parked.store(nullptr, std::memory_order_seq_cst);
    }
    // The tick may have paused while this drainer was parked (watch() does not count it busy);
    // after the store above, so the tick's own look (seq_cst) or this resume sees the other.
    timer->resume();
    return a.queued() > 0;
  }

  // Wakes the parked drainer if it waits on `a` (any arm when null). Cold: once per idle spell.
  [[gnu::noinline]] void unpark(const Arm* a) noexcept {
    {
      std::lock_guard lock(park_mu);
      const Arm* p = parked.load(std::memory_order_relaxed);
      if (p == nullptr || (a != nullptr && p != a)) return;
      parked.store(nullptr, std::memory_order_relaxed);
    }
    park_cv.notify_one();
  }

  // Gives up this drainer's slot; false when it must keep draining.
  bool retire(Arm& a) noexcept {
    a.active.fetch_sub(1, std::memory_order_seq_cst);
    // No lost wake-up: a producer that skipped spawning read `active` before this decrement, and
    // its `accepted` increment precedes that read; all four operations are seq_cst, so queued()
    // sees the increment. queued() > 0 with nothing to dequeue means a push still in flight (or
    // a task another drainer took and has not subtracted yet): the caller yields and retries.
    // A paused arm's drainer leaves its work queued: resume() stores the flag before it reads
    // `active` (seq_cst both), so it sees this decrement and spawns a drainer.
    if (a.queued() <= 0 || a.paused.load(std::memory_order_seq_cst)) return true;
    std::uint32_t cur = a.active.load(std::memory_order_seq_cst);
    while (cur < a.max_parallel.load(std::memory_order_relaxed)) {
      if (a.active.compare_exchange_weak(cur, cur + 1, std::memory_order_seq_cst)) return false;
    }
    return true;  // the limit is taken by drainers that will see the work when they retire
  }

  // The executor whose drainer this thread is running (saved and restored around each drain, so
  // a handler that drains another executor's work in between leaves it right).
  static thread_local const Impl* t_draining;

  // The observer pin of this thread while it drains for this executor: its arena slot, or -1 on a
  // blocking arm's thread (which uses the registry's shared lock).
  static thread_local int t_pin;

  void drain(Arm& a, RunningSlot& slot, int pin) noexcept {
    const Impl* const outer = std::exchange(t_draining, this);
    const int outer_pin = std::exchange(t_pin, pin);
    RunningSlot* const outer_slot = std::exchange(t_slot, &slot);
    drain_batches(a, slot);
    t_slot = outer_slot;
    t_pin = outer_pin;
    t_draining = outer;
  }

  void drain_batches(Arm& a, RunningSlot& slot) noexcept {
    Work batch[kBatch];
    std::uint32_t budget = fairness_budget;
    std::uint32_t tick = 0;
    std::size_t want = 1;
    std::uint64_t t_prev = CycleClock::now();
    std::uint32_t misses = 0;
    for (;;) {
      Priority prio = Priority::kNormal;
      const std::size_t n =
          a.paused.load(std::memory_order_relaxed) ? 0 : take(a, batch, want, tick, prio);
      if (n == 0) {
        // The first empty take after work: poll a while before retiring (a blocking arm's thread
        // parks in its pool instead).
        if (misses++ == 0 && idle_enabled && !a.pool && idle_wait(a)) continue;
        if (retire(a)) break;
        if (misses > 1) std::this_thread::yield();  // let the other consumer subtract
        continue;
      }
      misses = 0;
      a.taken.fetch_add(n, std::memory_order_relaxed);
      // The batch's first start: later tasks start where the one before ended.
      std::uint64_t t_now = CycleClock::now();
      if (a.keys != nullptr) [[unlikely]] {
        run_batch<true>(a, batch, n, prio, slot, t_now);
      } else {
        run_batch<false>(a, batch, n, prio, slot, t_now);
      }
      if (!time_all) t_now = CycleClock::now();
      const std::uint64_t spent = t_now - t_prev;
      const bool fast = spent < fast_ticks * n;
      want = fast ? std::min(kBatch, want * 2) : 1;
      // Tiny tasks arriving one by one: step aside (a yield, ~1 us) so the producer gets a lead
      // and the next take is a batch, instead of pulling each slot across cores as it is written.
      // A yield, not a spin: where workers and producers share few cores, the producer runs.
      if (spent < tiny_ticks * n && n < want / 2) std::this_thread::yield();
      t_prev = t_now;
      budget = budget > n ? budget - static_cast<std::uint32_t>(n) : 0;
      if (budget == 0) {
        // Fairness: yield the worker to other arms' drainers, keeping our slot. A blocking arm's
        // thread serves that arm alone, and with no drainer waiting for a worker there is nobody
        // to yield to (a re-post would only wake a sleeping worker): both just carry on.
        if (a.pool || posted.load(std::memory_order_relaxed) == 0) {
          budget = fairness_budget;
        } else {
          post(a);
          return;
        }
      }
      // Honour a lowered max_parallel by retiring surplus drainers at batch boundaries.
      std::uint32_t cur = a.active.load(std::memory_order_relaxed);
      if (cur > a.max_parallel.load(std::memory_order_relaxed) &&
          a.active.compare_exchange_strong(cur, cur - 1, std::memory_order_seq_cst)) {
        if (a.queued() > 0) wake(a, kSpawnDepth);
        break;
      }
    }
    // Last touch of executor state: the destructor waits for this count to reach zero.
    drainers.fetch_sub(1, std::memory_order_release);
  }

  // Inlined down to the one check, so a run without observers pays neither a call nor its frame.
  [[gnu::always_inline]] void emit(TaskEventKind kind, const Arm& a, const Work& w,
                                   std::uint32_t attempt,
                                   std::string_view reason = {}) const noexcept {
    if (!observers.empty()) [[unlikely]]
      emit_to_observers(kind, a, w, attempt, reason);
  }

  [[gnu::noinline]] void emit_to_observers(TaskEventKind kind, const Arm& a, const Work& w,
                                           std::uint32_t attempt,
                                           std::string_view reason) const noexcept {
    observers.for_each(
        [this] {
          // A drainer of this executor on the arena uses its slot's pin; any other thread (timer,
          // shutdown, a blocking arm's thread, a drainer of another executor) the shared lock.
          return t_draining == this ? t_pin : -1;
        },
        [&](Observer& o) {
          const Task* task = w.node() ? &w.node()->task : nullptr;
          o.on_event(TaskEvent{kind, a.id, task, task ? task->id : 0, attempt, reason});
        });
  }

  Outcome invoke(Arm& a, Work& w) noexcept {
    try {
      if (TaskNode* n = w.node()) return a.handler(n->task, context);
      return w.ops->call(w.word);
    } catch (const std::exception& e) {
      return Outcome::failure(std::string("exception: ") + e.what());
    } catch (...) {
      return Outcome::failure("exception of unknown type");
    }
  }

  // Instantiated twice: arms with a per-key limit (kKeyed) and the rest, whose loop then carries
  // no trace of keys (KeySlot's destructor folds away when nothing sets it).
  template <bool kKeyed>
  void run_batch(Arm& a, Work* batch, std::size_t n, Priority prio, RunningSlot& slot,
                 std::uint64_t& t_now) noexcept {
    Local l;
    // Finished typed tasks go back to the slab together: one free-list CAS per batch.
    static_assert(kBatch <= detail::TaskSlab::kMaxChain);
    TaskNode* freed[kBatch];
    std::size_t nfreed = 0;
    auto done = [&](Work& w) noexcept {
      if (TaskNode* node = w.node()) {
        freed[nfreed++] = node;
      } else {
        w.ops->destroy(w.word);
      }
    };
    std::uint64_t seq = slot.seq.load(std::memory_order_relaxed);
    std::uint64_t last_stop_at = slot.stop_at.load(std::memory_order_relaxed);
    slot.arm.store(a.id, std::memory_order_relaxed);
    WindowedHistogram::Writer queue_wait = a.queue_wait.writer();
    WindowedHistogram::Writer run_time = a.run_time.writer();
    for (std::size_t i = 0; i < n; ++i) {
      Work& w = batch[i];
      // Checked per task, not per batch: the rest of a batch taken before a cancelling shutdown
      // must not start after it returns. The slot says "about to run" before the check, and
      // shutdown's heavy fence after its store of cancel_all pairs with this light one: either
      // this load sees the cancel, or shutdown sees the slot set (and reports the task running).
      slot.running.store(1, std::memory_order_relaxed);
      detail::light_fence();
      if (cancel_all.load(std::memory_order_relaxed)) {
        slot.running.store(0, std::memory_order_relaxed);
        discard(a, w);  // unless cancel(id) hit it, it stays journaled for the next run
        ++l.cancelled;
        continue;
      }
      TaskNode* const node = w.node();
      // A task of a key at its per-key limit is parked (still kQueued: cancel(id) reaches it) and
      // the drainer goes on; from here to the end of the iteration, `key` holds its slot.
      KeySlot key;
      if constexpr (kKeyed) {
        if (node != nullptr && !node->task.key.empty() && !admit_key(a, w, prio, key, l)) {
          slot.running.store(0, std::memory_order_relaxed);
          continue;
        }
      }
      if (node != nullptr) {
        std::uint64_t expect = (node->generation() << 2) | TaskNode::kQueued;
        // Acquire: a successful take sees the task the producer wrote; a failed one means cancel()
        // won the race and the task must not run.
        if (!node->word.compare_exchange_strong(expect,
                                                (expect & ~std::uint64_t{3}) | TaskNode::kRunning,
                                                std::memory_order_acquire)) {
          slot.running.store(0, std::memory_order_relaxed);
          discard(a, w);
          ++l.cancelled;
          continue;
        }
      }
      const bool timed = time_all || w.stamp() != 0;
      const bool deadline = (w.meta & Work::kHasDeadline) != 0 && node != nullptr;
      // Sampling (time_one_in > 1) reads the clock only for the tasks that need it.
      if (!time_all && (timed || deadline || a.timeout_ticks != 0)) t_now = CycleClock::now();
      const std::uint64_t t0 = t_now;
      std::uint64_t stop_at = a.timeout_ticks != 0 ? t0 + a.timeout_ticks : 0;
      if (deadline) [[unlikely]] {
        const auto wall = precise_wall();
        if (wall >= node->task.deadline) {
          slot.running.store(0, std::memory_order_relaxed);
          expire(a, w);
          ++l.dead;
          ++l.expired;
          done(w);
          continue;
        }
        const std::uint64_t by = t0 + CycleClock::from_ns(node->task.deadline - wall);
        stop_at = stop_at == 0 ? by : std::min(stop_at, by);
      }
      const std::uint32_t attempt = w.next_attempt();
      if (timed) queue_wait.record(waited_ns(w.stamp(), t0));
      // The run's identity for stop requests; the release on seq publishes the fields before it
      // to a reader that loads seq with acquire (cancel(id)).
      slot.task.store(node != nullptr ? node->task.id : 0, std::memory_order_relaxed);
      if (stop_at != last_stop_at) {  // usually 0 run after run: skip the store
        slot.stop_at.store(stop_at, std::memory_order_relaxed);
        last_stop_at = stop_at;
      }
      slot.seq.store(++seq, std::memory_order_release);
      emit(TaskEventKind::kStarted, a, w, attempt);
      Outcome out = invoke(a, w);
      slot.running.store(0, std::memory_order_relaxed);
      if (timed || stop_at != 0) {
        t_now = CycleClock::now();
        if (timed) run_time.record(CycleClock::to_ns(t_now - t0));
        if (stop_at != 0 && t_now > stop_at) ++l.overran;
      }
      if (slot.has_source.load(std::memory_order_relaxed)) [[unlikely]]
        drop_source(slot);
      ++l.processed;
      if (out.ok()) {
        ++l.ok;
        emit(TaskEventKind::kSucceeded, a, w, attempt);
        journal_end(w, JournalEnd::kSucceeded);
        done(w);
        continue;
      }
      ++l.failed;
      // A failure after cancel(id) reached this run ends the task as cancelled (and out of the
      // journal); after a cancelling shutdown it is cancelled too but stays journaled, as the
      // tasks the shutdown never started do.
      const bool by_cancel = slot.cancel_seq.load(std::memory_order_relaxed) == seq;
      if (by_cancel || cancel_all.load(std::memory_order_acquire)) [[unlikely]] {
        if (by_cancel && node != nullptr) {
          node->word.store((node->generation() << 2) | TaskNode::kCancelled,
                           std::memory_order_relaxed);
        }
        discard(a, w);
        ++l.cancelled;
        continue;
      }
      const std::uint32_t limit = (node != nullptr && node->task.max_attempts != 0)
                                      ? node->task.max_attempts
                                      : a.max_attempts;
      if (attempt < limit && !cancel_all.load(std::memory_order_acquire) &&
          retry(a, w, prio, attempt)) {
        ++l.retried;
        continue;  // emitted kFailed; w was moved to the timer
      }
      emit(TaskEventKind::kDeadLettered, a, w, attempt, out.reason());
      dead_letter(a, w, out.reason(), attempt);
      journal_end(w, JournalEnd::kDeadLettered, out.reason(), attempt);
      ++l.dead;
      done(w);
    }
    // GCC 12 at -O3 takes a const pointer argument for a read of the whole array; release()
    // reads only freed[0, nfreed), all written above. Zeroing the array would cost every batch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
    slab.release(freed, nfreed);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    flush(a, l);
  }

  // A slot of a key, given back (to the key's next parked task, if any) when it goes out of scope:
  // after every way a run ends, the retry's hand-over to the timer included (it needs only the
  // key's hash, not the node, which may be running again elsewhere by then).
  struct KeySlot {
    Impl* im = nullptr;
    Arm* arm = nullptr;
    std::uint64_t hash = 0;
    KeySlot() = default;
    KeySlot(const KeySlot&) = delete;
    KeySlot& operator=(const KeySlot&) = delete;
    ~KeySlot() {
      if (arm != nullptr) im->release_key(*arm, hash);
    }
  };

  // True when `w` may run now (`key` then holds its slot); false when it was parked, or
  // dead-lettered because there was no memory to park it (counted in `l`).
  [[gnu::noinline, gnu::cold]] bool admit_key(Arm& a, Work& w, Priority prio, KeySlot& key,
                                              Local& l) noexcept {
    const std::uint64_t h = detail::KeyLimiter::hash(*w.node()->task.key);
    if ((w.meta & Work::kKeyHeld) != 0) {  // handed over by the key's last task
      w.meta &= ~Work::kKeyHeld;
    } else {
      switch (a.keys->admit(h, w, prio)) {
        case detail::KeyLimiter::Admit::kRun:
          break;
        case detail::KeyLimiter::Admit::kParked:
          return false;
        case detail::KeyLimiter::Admit::kNoMemory:
          emit(TaskEventKind::kDeadLettered, a, w, w.attempt(), kNoMemoryToPark);
          dead_letter(a, w, kNoMemoryToPark, w.attempt());
          journal_end(w, JournalEnd::kDeadLettered, kNoMemoryToPark, w.attempt());
          finish(w);
          ++l.dead;
          return false;
      }
    }
    key.im = this;
    key.arm = &a;
    key.hash = h;
    return true;
  }

  // Gives back a slot of key `h`; when the key has a parked task, the slot passes to it and it
  // goes to the back of its priority's queue, announced as a retry's re-queue is.
  [[gnu::noinline, gnu::cold]] void release_key(Arm& a, std::uint64_t h) noexcept {
    while (std::optional<detail::KeyLimiter::Parked> p = a.keys->release(h)) {
      Work w = p->work;
      w.meta |= Work::kKeyHeld;
      const int prio = static_cast<int>(p->priority);
      a.requeued.fetch_add(1, std::memory_order_seq_cst);  // the lost-wake-up handshake's half
      OCTO_TSAN_RELEASE(&a.queues[prio]);
      if (a.enqueue(prio, w)) {
        wake(a, a.queued());
        return;
      }
      // Out of memory: it ends here, and its slot passes on to the key's next parked task.
      a.taken.fetch_add(1, std::memory_order_relaxed);  // un-announce it
      w.meta &= ~Work::kKeyHeld;
      emit(TaskEventKind::kDeadLettered, a, w, w.attempt(), kNoMemoryToPark);
      dead_letter(a, w, kNoMemoryToPark, w.attempt());
      journal_end(w, JournalEnd::kDeadLettered, kNoMemoryToPark, w.attempt());
      finish(w);
      Local l;
      l.dead = 1;
      flush(a, l);
    }
  }

  bool retry(Arm& a, Work& w, Priority prio, std::uint32_t attempt) noexcept {
    emit(TaskEventKind::kFailed, a, w, attempt);
    const auto delay = backoff_delay(attempt, a.backoff_base, a.backoff_max, unit_random());
    TaskNode* node = w.node();
    const std::uint64_t gen = node ? node->generation() : 0;
    if (node) {
      // Back to kQueued so cancel() can stop it while it waits. Release: publishes attempt count.
      node->word.store((gen << 2) | TaskNode::kQueued, std::memory_order_release);
    }
    a.delayed.fetch_add(1, std::memory_order_relaxed);
    w.meta &= ~Work::kStampMask;
    try {
      if (jr != nullptr && node != nullptr) jr->retried(node->task.durable_key, attempt);
      timer->schedule(SteadyTime::now() + delay, Retry{a.id, prio, w});
      // cancel() may have run between the store above and the schedule, missing the timer.
      const std::uint64_t cancelled_word = (gen << 2) | TaskNode::kCancelled;
      if (node && node->word.load(std::memory_order_acquire) == cancelled_word) {
        purge_delayed(node, cancelled_word);
      }
      return true;
    } catch (...) {  // allocation failure in the timer heap: dead-letter rather than lose it
      a.delayed.fetch_sub(1, std::memory_order_relaxed);
      if (node) {
        node->word.store((node->generation() << 2) | TaskNode::kRunning, std::memory_order_relaxed);
      }
      return false;
    }
  }

  // --- periodic schedules ------------------------------------------------------------------

  // The first planned firing strictly after `now`.
  static std::chrono::system_clock::time_point next_planned(
      const ScheduleEntry& e, std::chrono::system_clock::time_point now) {
    if (e.cron) return e.cron->next_after(now);
    const auto every =
        std::chrono::duration_cast<std::chrono::system_clock::duration>(*e.spec.every);
    if (now < e.origin) return e.origin;
    return e.origin + ((now - e.origin) / every + 1) * every;
  }

  // Planned firings in (from, to], counted up to a cap (a cron walk per firing).
  static std::uint64_t planned_between(const ScheduleEntry& e,
                                       std::chrono::system_clock::time_point from,
                                       std::chrono::system_clock::time_point to) {
    if (to <= from) return 0;
    if (!e.cron) {
      const auto every =
          std::chrono::duration_cast<std::chrono::system_clock::duration>(*e.spec.every);
      return static_cast<std::uint64_t>((to - from) / every);
    }
    std::uint64_t n = 0;
    for (auto t = e.cron->next_after(from); t <= to && n < 100'000; t = e.cron->next_after(t)) ++n;
    return n;
  }

  // Puts the entry's next firing (after `now`) in the timer. Under schedules_mu.
  void arm_schedule(ScheduleEntry& e, std::chrono::system_clock::time_point now) {
    e.planned = next_planned(e, now);
    e.st.next_run = e.planned;
    if (e.planned == std::chrono::system_clock::time_point::max()) {
      e.token = 0;  // past the clock's range: never
      return;
    }
    auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(e.planned - now);
    if (e.spec.jitter.count() > 0) {
      wait += std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::duration<double, std::milli>(unit_random() *
                                                    static_cast<double>(e.spec.jitter.count())));
    }
    e.token = next_schedule_token++;
    Retry r{};
    r.schedule = e.token;
    timer->schedule(steady_after(wait), r);
  }

  // A task of this executor still queued, waiting for a retry or running.
  bool task_active(TaskId id) const noexcept {
    if (id == 0) return false;
    const TaskNode* n = slab.find(id);
    if (n == nullptr) return false;
    const std::uint64_t w = n->word.load(std::memory_order_acquire);
    return (w >> 2) == (id >> 32) &&
           ((w & 3) == TaskNode::kQueued || (w & 3) == TaskNode::kRunning);
  }

  // Timer thread: a schedule's firing time has come.
  void fire_schedule(std::uint64_t token) noexcept {
    try {
      std::lock_guard lock(schedules_mu);
      auto it = std::find_if(schedules.begin(), schedules.end(),
                             [token](const auto& kv) { return kv.second.token == token; });
      if (it == schedules.end()) return;  // removed or paused since it was armed
      ScheduleEntry& e = it->second;
      e.token = 0;
      if (stopping.load(std::memory_order_acquire)) return;
      const auto now = precise_wall();
      e.st.missed += planned_between(e, e.planned, now);
      e.st.last_run = now;
      const bool busy = task_active(e.recent[0]);
      const bool hold = e.spec.overlap == Overlap::kSkip        ? busy
                        : e.spec.overlap == Overlap::kBufferOne ? busy && task_active(e.recent[1])
                                                                : false;
      if (hold) {
        ++e.st.skipped;
      } else {
        Task t = e.spec.task;
        const auto r = [&] {
          const auto arm = routes.load(std::memory_order_acquire)->find(t.type);
          if (!arm) {
            rejected_unroutable.fetch_add(1, std::memory_order_relaxed);
            return EnqueueResult::refused(EnqueueError::kUnroutable);
          }
          return Executor::enqueue_typed(*this, *arm, t);
        }();
        if (r) {
          ++e.st.fired;
          e.st.last_task = r.id();
          e.recent[1] = e.recent[0];
          e.recent[0] = r.id();
        } else {
          ++e.st.refused;
        }
      }
      arm_schedule(e, now);
    } catch (...) {  // no memory for the timer's heap: it stops firing (pause and resume re-arm it)
    }
  }

  // Timer thread: a retry's delay has passed.
  void fire(Retry& r) noexcept {
    if (r.schedule != 0) {
      fire_schedule(r.schedule);
      return;
    }
    Arm& a = *arms[r.arm];
    Work& w = r.work;
    const bool dropped =
        cancel_all.load(std::memory_order_acquire) ||
        (w.node() && (w.node()->word.load(std::memory_order_acquire) & 3) == TaskNode::kCancelled);
    if (dropped) {
      cancel_delayed(r);
      return;
    }
    // Its queue wait runs from now, when it is due (retry() cleared the enqueue stamp; a stamp of
    // 0 read as "timed" would measure the wait from the clock's origin).
    if (time_all) {
      const std::uint64_t t = CycleClock::now() & Work::kStampMask;
      w.meta = (w.meta & ~Work::kStampMask) | (t == 0 ? 1 : t);
    }
    // Retries bypass capacity and the enabled flag: the task was accepted and must not be lost.
    // seq_cst: the retry's half of the lost-wake-up handshake, as `accepted` is for enqueue.
    a.requeued.fetch_add(1, std::memory_order_seq_cst);
    a.delayed.fetch_sub(1, std::memory_order_relaxed);
    OCTO_TSAN_RELEASE(&a.queues[static_cast<int>(r.priority)]);
    if (!a.enqueue(static_cast<int>(r.priority), w)) {
      a.taken.fetch_add(1, std::memory_order_relaxed);  // un-announce it
      emit(TaskEventKind::kDeadLettered, a, w, w.attempt(), "out of memory re-queueing a retry");
      dead_letter(a, w, "out of memory re-queueing a retry", w.attempt());
      journal_end(w, JournalEnd::kDeadLettered, "out of memory re-queueing a retry", w.attempt());
      finish(w);
      Local l;
      l.dead = 1;
      flush(a, l);
      return;
    }
    wake(a, a.queued());
  }

  // Counts a cancelled task that waits in the timer as cancelled now, not when its delay ends.
  // Matches the exact word (generation and kCancelled) under the timer's lock: by the time a late
  // caller gets here the slot may hold a newer task, which must not be touched.
  void purge_delayed(const TaskNode* node, std::uint64_t cancelled_word) noexcept {
    try {
      for (Retry& r : timer->take_if([node, cancelled_word](const Retry& r) {
             return r.work.node() == node &&
                    node->word.load(std::memory_order_acquire) == cancelled_word;
           })) {
        cancel_delayed(r);
      }
    } catch (...) {  // out of memory: the timer discards it when its delay ends
    }
  }

  // A retry waiting in the timer will not run: it is cancelled and counted now.
  void cancel_delayed(Retry& r) noexcept {
    Arm& a = *arms[r.arm];
    a.delayed.fetch_sub(1, std::memory_order_relaxed);
    discard(a, r.work);
    Local l;
    l.cancelled = 1;
    flush(a, l);
  }

  // A queued task whose deadline passed: dead-lettered as "expired" (and out of the journal).
  void expire(const Arm& a, const Work& w) noexcept {
    emit(TaskEventKind::kDeadLettered, a, w, w.attempt(), kExpired);
    dead_letter(a, w, kExpired, w.attempt());
    journal_end(w, JournalEnd::kDeadLettered, kExpired, w.attempt());
  }

  // The run's stop_token source goes with the run (tokens handed out keep their own state).
  static void drop_source(RunningSlot& slot) noexcept {
    std::stop_source* s = nullptr;
    {
      detail::LockGuard lock(slot.source_mu);
      s = std::exchange(slot.source, nullptr);
      slot.has_source.store(false, std::memory_order_relaxed);
    }
    delete s;
  }

  // A task cancel(id) hit (state kCancelled) leaves the journal; one a shutdown cancels stays in
  // it, so the next executor on the same journal runs it.
  void discard(Arm& a, Work& w) noexcept {
    emit(TaskEventKind::kCancelled, a, w, w.attempt());
    const TaskNode* node = w.node();
    // A task handed its key's slot gives it on (to be discarded in turn when shutting down).
    if ((w.meta & Work::kKeyHeld) != 0 && a.keys != nullptr && node != nullptr) [[unlikely]] {
      w.meta &= ~Work::kKeyHeld;
      release_key(a, detail::KeyLimiter::hash(*node->task.key));
    }
    if (node && (node->word.load(std::memory_order_relaxed) & 3) == TaskNode::kCancelled) {
      journal_end(w, JournalEnd::kCancelled);
    }
    finish(w);
  }

  enum class JournalEnd : std::uint8_t { kSucceeded, kCancelled, kDeadLettered };
  void journal_end(const Work& w, JournalEnd end, std::string_view reason = {},
                   std::uint32_t attempts = 0) noexcept {
    const TaskNode* node = w.node();
    if (jr == nullptr || node == nullptr || node->task.durable_key == 0) return;
    const std::uint64_t key = node->task.durable_key;
    switch (end) {
      case JournalEnd::kSucceeded:
        jr->succeeded(key);
        break;
      case JournalEnd::kCancelled:
        jr->cancelled(key);
        break;
      case JournalEnd::kDeadLettered:
        jr->dead_lettered(key, reason, attempts);
        break;
    }
  }

  void finish(Work& w) noexcept {
    if (TaskNode* n = w.node()) {
      slab.release(n);
    } else {
      w.ops->destroy(w.word);
    }
    w = Work{};
  }

  void dead_letter(const Arm& a, const Work& w, std::string_view reason,
                   std::uint32_t attempts) noexcept {
    try {
      DeadLetter d;
      d.arm = a.name;
      d.reason = std::string(reason);
      d.attempts = attempts;
      d.when = coarse_wall();
      if (const TaskNode* n = w.node()) {
        d.id = n->task.id;
        d.task = n->task;
      }
      dead.keep(std::move(d));
    } catch (...) {  // out of memory: the dead letter is counted but not kept
      dead.count_dropped();
    }
  }

  void flush(Arm& a, const Local& l) noexcept {
    if (l.processed) a.processed.fetch_add(l.processed, std::memory_order_relaxed);
    if (l.failed) a.failed.fetch_add(l.failed, std::memory_order_relaxed);
    if (l.retried) a.retried.fetch_add(l.retried, std::memory_order_relaxed);
    // seq_cst: the finishing half of the idle handshake with wait_idle() (store, then load
    // waiters).
    if (l.ok) a.succeeded.fetch_add(l.ok, std::memory_order_seq_cst);
    if (l.dead) a.dead_lettered.fetch_add(l.dead, std::memory_order_seq_cst);
    if (l.cancelled) a.cancelled.fetch_add(l.cancelled, std::memory_order_seq_cst);
    if (l.expired) a.expired.fetch_add(l.expired, std::memory_order_relaxed);
    if (l.overran) a.overran.fetch_add(l.overran, std::memory_order_relaxed);
    if (l.processed) {
      a.last_run_ns.store(coarse_wall().time_since_epoch().count(), std::memory_order_relaxed);
    }
    if (waiters.load(std::memory_order_seq_cst) > 0) notify_idle();
  }

  // --- waiting and shutdown ----------------------------------------------------------------

  std::uint64_t total_pending() const noexcept {
    std::uint64_t p = 0;
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) p += arms[i]->pending();
    return p;
  }

  void notify_idle() noexcept {
    { std::lock_guard lock(idle_mu); }  // orders with a waiter between its check and its wait
    idle_cv.notify_all();
  }

  // Until no more than `own` tasks are pending (the caller's own, when a handler calls).
  bool wait_idle_until(SteadyTime::time_point deadline, std::uint64_t own = 0) {
    waiters.fetch_add(1, std::memory_order_seq_cst);
    std::unique_lock lock(idle_mu);
    const auto idle_now = [this, own] { return total_pending() <= own; };
    bool idle = true;
    if (deadline == SteadyTime::time_point::max()) {
      idle_cv.wait(lock, idle_now);
    } else {
      idle = idle_cv.wait_until(lock, deadline, idle_now);
    }
    waiters.fetch_sub(1, std::memory_order_relaxed);
    return idle;
  }

  // Cancels everything waiting in the queues and the timer.
  void sweep() noexcept {
    for (Retry& r : timer->take_all())
      if (r.schedule == 0) cancel_delayed(r);
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      Arm& a = *arms[i];
      Work batch[kBatch];
      for (int p = kPriorityCount - 1; p >= 0; --p) {
        while (std::size_t got = a.queues[p].try_dequeue_bulk(batch, kBatch)) {
          OCTO_TSAN_ACQUIRE(&a.queues[p]);
          a.taken.fetch_add(got, std::memory_order_relaxed);
          for (std::size_t k = 0; k < got; ++k) discard(a, batch[k]);
          Local l;
          l.cancelled = got;
          flush(a, l);
        }
      }
      if (a.keys != nullptr && a.keys->parked() != 0) {
        try {
          Local l;
          for (detail::KeyLimiter::Parked& p : a.keys->take_all()) {
            discard(a, p.work);
            ++l.cancelled;
          }
          flush(a, l);
        } catch (...) {  // out of memory: the next sweep tries again
        }
      }
    }
  }

  bool any_delayed() const noexcept {
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (arms[i]->delayed.load(std::memory_order_relaxed) != 0) return true;
    }
    return false;
  }

  std::uint64_t total_cancelled() const noexcept {
    std::uint64_t c = 0;
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) c += arms[i]->cancelled.load(std::memory_order_relaxed);
    return c;
  }

  ShutdownReport shutdown(ShutdownMode mode, std::chrono::nanoseconds limit) {
    std::lock_guard guard(shutdown_mu);
    const auto now = SteadyTime::now();
    const auto deadline =
        limit >= SteadyTime::time_point::max() - now ? SteadyTime::time_point::max() : now + limit;
    ShutdownReport report;
    const std::uint64_t cancelled_before = total_cancelled();
    // Called by a handler of this executor: its own task cannot finish while it waits here.
    const std::uint64_t own = t_draining == this ? 1 : 0;
    // enqueue() calls that begin after this see it (they load with acquire).
    stopping.store(true, std::memory_order_seq_cst);
    unpark(nullptr);  // a parked drainer leaves (see park())
    if (mode == ShutdownMode::kDrain) {
      // Draining runs what paused arms hold too.
      const std::uint32_t n = arm_count.load(std::memory_order_acquire);
      for (std::uint32_t i = 0; i < n; ++i) resume(*arms[i]);
      // Delayed tasks not yet due are not waited for: cancelled now (journaled ones stay in the
      // journal for the next run, with their due time). Retries are waited for.
      try {
        for (Retry& r : timer->take_if([](const Retry& r) { return r.scheduled; }))
          cancel_delayed(r);
      } catch (...) {  // out of memory: the sweep below cancels them after the wait
      }
      if (!wait_idle_until(deadline, own)) report.deadline_hit = true;
    }
    cancel_all.store(true, std::memory_order_seq_cst);
    // From here no drainer starts a task (see run_batch): each either sees cancel_all or has its
    // running slot set where the count below sees it.
    detail::heavy_fence();
    // Tasks still running are asked to stop (octo::this_task).
    for_each_slot([](RunningSlot& slot) {
      if (slot.running.load(std::memory_order_relaxed) != 0)
        slot.request_stop(slot.seq.load(std::memory_order_acquire), false);
    });
    // Late arrivals (a producer that passed the stopping check just before it was set, or a retry
    // scheduled by a task that was running) are swept again until nothing is pending.
    for (;;) {
      sweep();
      const auto step = std::min(deadline, SteadyTime::now() + std::chrono::milliseconds(10));
      if (wait_idle_until(step, own)) break;
      if (SteadyTime::now() >= deadline) {
        report.deadline_hit = true;
        break;
      }
    }
    // Tasks in a handler now (a drainer between its check and a discard counts too, for the
    // nanoseconds it takes). Tasks a drainer took but did not start are not running: it cancels
    // them when its handler returns.
    for_each_slot([&report](RunningSlot& slot) {
      report.still_running += slot.running.load(std::memory_order_relaxed);
    });
    report.cancelled = total_cancelled() - cancelled_before;
    return report;
  }

  // `self` is the executor being destroyed, or null when its constructor failed.
  void destroy(const Executor* self = nullptr) noexcept {
    try {
      shutdown(ShutdownMode::kCancel, std::chrono::nanoseconds::max());
    } catch (...) {
    }
    // Drainers that found nothing may still be retiring; they touch nothing after the decrement.
    for (int spins = 0; drainers.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 1000) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    timer.reset();
    const std::uint32_t n = arm_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (arms[i]->pool) arms[i]->pool->stop();
    }
    // Every event has been delivered (drainers and the timer are done). Observers still
    // registered hear that the executor goes away; one that calls into it (halo::Engine) waits
    // here for its own calls to return and makes no more. Enqueues meanwhile are refused.
    if (self != nullptr) {
      try {
        for (Observer* o : observers.take_all()) o->on_executor_destroyed(*self);
      } catch (...) {  // out of memory copying the list: the observers are not told
      }
    }
    arena.terminate();
  }

  Context context;
  const std::uint32_t fairness_budget;
  const std::uint32_t aging_period;
  const int threads;
  // The arena's slots, which a drainer's thread index can name: TBB gives every arena at least
  // two (one kept for an external thread), and with threads = 1 a worker may join in either (seen
  // when a worker joins while a parked drainer's is still leaving). Sized by `threads`, the
  // per-slot arrays were written one past their end.
  const int slots;
  const std::shared_ptr<Journal> journal;
  Journal* const jr;  // journal.get(): one load on the hot path
  const bool journal_sync;
  const std::chrono::nanoseconds latency_window;
  const bool stall_enabled;
  const std::uint32_t time_mask;   // time_one_in rounded up to a power of two, minus one
  const bool time_all;             // time_one_in == 1
  const std::uint64_t fast_ticks;  // kFastTaskNs in CycleClock ticks
  const std::uint64_t tiny_ticks;  // kTinyTaskNs in CycleClock ticks
  const std::uint64_t spin_ticks;  // idle_spin in CycleClock ticks; 0 = drainers never poll
  const std::chrono::nanoseconds park_for;  // idle_park
  const bool idle_enabled;                  // idle_spin or idle_park is set
  std::atomic<std::uint64_t> recovered{0};
  std::optional<tbb::global_control> workers;  // before arena: it outlives the arena's workers
  tbb::task_arena arena;
  // One pin slot per arena slot.
  detail::ObserverRegistry observers{static_cast<std::size_t>(slots)};
  // Per arena thread: its drainer's RunningSlot.
  const std::unique_ptr<RunningSlot[]> running =
      std::make_unique<RunningSlot[]>(static_cast<std::size_t>(slots));

  std::unique_ptr<Arm> arms[kMaxArms];
  std::atomic<std::uint32_t> arm_count{0};
  octo::detail::Mutex config_mu;  // add_arm, set_routes
  std::atomic<const detail::CompiledRoutes*> routes{nullptr};
  std::vector<std::unique_ptr<detail::CompiledRoutes>> retired_routes OCTO_GUARDED_BY(config_mu);

  const std::shared_ptr<detail::TaskSlab> slab_owner = detail::TaskSlab::create();
  detail::TaskSlab& slab = *slab_owner;
  alignas(64) std::atomic<bool> stopping{false};
  std::atomic<bool> cancel_all{false};
  alignas(64) std::atomic<std::uint64_t> rejected_unroutable{0};
  std::atomic<std::uint64_t> rejected_stopped{0};
  alignas(64) std::atomic<std::uint32_t> drainers{0};
  // Drainers put on the arena and not yet started: a polling drainer gives its worker up to them.
  // Off the producers' lines: the poller reads it on every turn, spawns and starts write it, and
  // idle_arm beside it changes once per idle spell.
  alignas(64) std::atomic<std::uint32_t> posted{0};
  // The arm whose drainer polls or parks (at most one, see idle_wait), or null.
  std::atomic<const Arm*> idle_arm{nullptr};
  // The arm whose drainer is parked, or null. Its own line: every push reads it, and it is
  // written only when a drainer parks and when it is woken.
  alignas(64) std::atomic<const Arm*> parked{nullptr};
  std::mutex park_mu;  // orders a wake-up with the parked drainer's check (guards no field)
  std::condition_variable park_cv;
  alignas(64) std::atomic<std::uint32_t> waiters{0};
  std::mutex idle_mu;  // guards no field: orders notify_idle() with a waiter's check (atomics)
  std::condition_variable idle_cv;
  detail::DeadLetterStore dead;
  detail::UniqueKeys uniques;
  std::mutex shutdown_mu;  // one shutdown() at a time; guards no field
  std::unique_ptr<detail::TimerQueue<Retry>> timer;
  std::mutex schedules_mu;
  std::map<std::string, ScheduleEntry, std::less<>> schedules;  // guarded by schedules_mu
  std::uint64_t next_schedule_token = 1;                        // guarded by schedules_mu
};

thread_local const Executor::Impl* Executor::Impl::t_draining = nullptr;
thread_local int Executor::Impl::t_pin = -1;

Executor::Executor(ExecutorConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Executor::~Executor() { impl_->destroy(this); }

void Executor::add_observer(Observer& observer) { impl_->observers.add(observer); }

bool Executor::remove_observer(Observer& observer) { return impl_->observers.remove(observer); }

EnqueueResult Executor::enqueue(Task task) noexcept {
  if (task.type.empty()) {
    impl_->rejected_unroutable.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(EnqueueError::kEmptyType);
  }
  // Acquire: pairs with install_routes' release.
  const auto arm = impl_->routes.load(std::memory_order_acquire)->find(task.type);
  if (!arm) {
    impl_->rejected_unroutable.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(EnqueueError::kUnroutable);
  }
  return enqueue_typed(*impl_, *arm, task);
}

// The caller's task into its node, every member's move inlined: as the implicit operator= call
// GCC makes of it, the typed no-op enqueue ran 85 instructions more (callgrind).
[[gnu::flatten]] static void move_task(Task& to, Task& from) noexcept { to = std::move(from); }

// Both enqueue overloads end here with the caller's Task by reference: one move into the slab
// node instead of a move per call layer.
EnqueueResult Executor::enqueue_typed(Impl& im, ArmId arm, Task& task) noexcept {
  if (im.stopping.load(std::memory_order_acquire)) {
    im.rejected_stopped.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(EnqueueError::kStopped);
  }
  Arm* a = im.arm_at(arm);
  if (a == nullptr || task.type.empty()) {
    im.rejected_unroutable.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(a ? EnqueueError::kEmptyType : EnqueueError::kUnknownArm);
  }
  if (!a->enabled.load(std::memory_order_relaxed) || !a->handler) {
    a->rejected.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(a->handler ? EnqueueError::kDisabled : EnqueueError::kNoHandler);
  }
  // A Priority cast from outside input could index past the four queues.
  if (static_cast<unsigned>(task.priority) >= kPriorityCount) {
    a->rejected.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(EnqueueError::kBadPriority);
  }
  const bool unique = !task.unique.empty();
  if (unique && (task.unique->key.empty() || task.unique->ttl.count() <= 0)) [[unlikely]] {
    a->rejected.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(EnqueueError::kBadUnique);
  }
  TaskNode* node = im.slab.acquire();
  if (node == nullptr) {
    a->rejected.fetch_add(1, std::memory_order_relaxed);
    return EnqueueResult::refused(EnqueueError::kFull);
  }
  const TaskId id = node->id();
  const Priority prio = task.priority;
  move_task(node->task, task);
  node->task.id = id;
  node->task.attempt = 0;
  node->task.created = coarse_wall();
  Work w;
  w.word = reinterpret_cast<std::uintptr_t>(node);
  if (unique) [[unlikely]]
    return im.enqueue_unique(*a, w, prio, id);
  return im.enqueue_node(*a, w, prio, id);
}

EnqueueResult Executor::enqueue(ArmId arm, Task task) noexcept {
  return enqueue_typed(*impl_, arm, task);
}

EnqueueResult Executor::enqueue_after(std::chrono::nanoseconds delay, Task task) noexcept {
  using Wall = std::chrono::system_clock;
  const Wall::time_point now = precise_wall();
  if (delay.count() > 0) {
    const auto room =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Wall::time_point::max() - now);
    task.run_at = delay >= room ? Wall::time_point::max()
                                : now + std::chrono::duration_cast<Wall::duration>(delay);
  }
  return enqueue(std::move(task));
}

EnqueueResult Executor::submit_job(ArmId arm, const detail::JobOps* ops, std::uintptr_t word,
                                   Priority priority) noexcept {
  Impl& im = *impl_;
  Work w;
  w.ops = ops;
  w.word = word;
  if (im.stopping.load(std::memory_order_acquire)) {
    im.rejected_stopped.fetch_add(1, std::memory_order_relaxed);
    im.finish(w);
    return EnqueueResult::refused(EnqueueError::kStopped);
  }
  Arm* a = im.arm_at(arm);
  if (a == nullptr) {
    im.rejected_unroutable.fetch_add(1, std::memory_order_relaxed);
    im.finish(w);
    return EnqueueResult::refused(EnqueueError::kUnknownArm);
  }
  if (!a->enabled.load(std::memory_order_relaxed) ||
      static_cast<unsigned>(priority) >= kPriorityCount) {
    a->rejected.fetch_add(1, std::memory_order_relaxed);
    im.finish(w);
    return EnqueueResult::refused(a->enabled.load(std::memory_order_relaxed)
                                      ? EnqueueError::kBadPriority
                                      : EnqueueError::kDisabled);
  }
  return im.push(*a, w, priority, 0);
}

bool Executor::cancel(TaskId id) noexcept {
  TaskNode* node = impl_->slab.find(id);
  if (node == nullptr) return false;
  std::uint64_t expect = ((id >> 32) << 2) | TaskNode::kQueued;
  // Only a queued (or retry-waiting) task of this exact generation can be cancelled; the drainer
  // that later meets it in a queue counts it as cancelled and frees it.
  const std::uint64_t cancelled_word = ((id >> 32) << 2) | TaskNode::kCancelled;
  if (!node->word.compare_exchange_strong(expect, cancelled_word, std::memory_order_acq_rel)) {
    // Running: ask it to stop. Its slot is the one whose run carries this id; a run that ends
    // meanwhile changes the slot's seq, and the request (stored under the old one) is ignored.
    if ((expect & 3) == TaskNode::kRunning && (expect >> 2) == (id >> 32)) {
      impl_->for_each_slot([id](detail::RunningSlot& slot) {
        const std::uint64_t seq = slot.seq.load(std::memory_order_acquire);
        if (slot.running.load(std::memory_order_relaxed) != 0 &&
            slot.task.load(std::memory_order_relaxed) == id &&
            slot.seq.load(std::memory_order_relaxed) == seq) {
          slot.request_stop(seq, true);
        }
      });
    }
    return false;
  }
  if (impl_->any_delayed()) impl_->purge_delayed(node, cancelled_word);
  return true;
}

void Executor::schedule(ScheduleSpec spec) {
  const std::string who = "octo::Executor::schedule '" + spec.name + "': ";
  ScheduleEntry e;
  e.cron = validate_schedule(spec, "octo::Executor::schedule");
  if (!resolve(spec.task.type)) {
    throw std::invalid_argument(who + "task type '" + spec.task.type + "' matches no route");
  }
  Impl& im = *impl_;
  std::lock_guard lock(im.schedules_mu);
  if (im.schedules.count(spec.name) != 0) throw std::invalid_argument(who + "the name is taken");
  const auto now = precise_wall();
  e.origin = now;
  e.st.name = spec.name;
  e.st.cron = spec.cron;
  e.st.every = spec.every.value_or(std::chrono::milliseconds(0));
  e.spec = std::move(spec);
  ScheduleEntry& placed = im.schedules.emplace(e.spec.name, std::move(e)).first->second;
  try {
    im.arm_schedule(placed, now);
  } catch (...) {
    im.schedules.erase(placed.spec.name);
    throw;
  }
}

bool Executor::pause_schedule(std::string_view name) {
  std::lock_guard lock(impl_->schedules_mu);
  auto it = impl_->schedules.find(name);
  if (it == impl_->schedules.end()) return false;
  ScheduleEntry& e = it->second;
  e.token = 0;  // the armed item fires into nothing
  e.st.paused = true;
  e.st.next_run = {};
  return true;
}

bool Executor::resume_schedule(std::string_view name) {
  std::lock_guard lock(impl_->schedules_mu);
  auto it = impl_->schedules.find(name);
  if (it == impl_->schedules.end()) return false;
  ScheduleEntry& e = it->second;
  if (!e.st.paused) return true;
  const auto now = precise_wall();
  // The firing it was waiting for when paused, and every one planned since.
  if (e.planned <= now) e.st.missed += 1 + Impl::planned_between(e, e.planned, now);
  e.st.paused = false;
  impl_->arm_schedule(e, now);
  return true;
}

bool Executor::remove_schedule(std::string_view name) {
  std::lock_guard lock(impl_->schedules_mu);
  auto it = impl_->schedules.find(name);
  if (it == impl_->schedules.end()) return false;
  impl_->schedules.erase(it);
  return true;
}

std::vector<ScheduleStatus> Executor::schedules() const {
  std::lock_guard lock(impl_->schedules_mu);
  std::vector<ScheduleStatus> out;
  out.reserve(impl_->schedules.size());
  for (const auto& [name, e] : impl_->schedules) out.push_back(e.st);
  return out;
}

std::optional<ArmId> Executor::resolve(std::string_view type) const noexcept {
  return impl_->routes.load(std::memory_order_acquire)->find(type);
}

std::optional<ArmId> Executor::arm_id(std::string_view name) const noexcept {
  return impl_->find_arm(name);
}

std::size_t Executor::arm_count() const noexcept {
  return impl_->arm_count.load(std::memory_order_acquire);
}

ArmId Executor::add_arm(const ArmConfig& config) {
  validate(config);
  octo::detail::LockGuard lock(impl_->config_mu);
  if (impl_->find_arm(config.name)) {
    throw std::invalid_argument("octo::Executor::add_arm: duplicate arm name '" + config.name +
                                "'");
  }
  const std::uint32_t n = impl_->arm_count.load(std::memory_order_relaxed);
  if (n == kMaxArms) {
    throw std::invalid_argument("octo::Executor::add_arm: at most " + std::to_string(kMaxArms) +
                                " arms");
  }
  impl_->arms[n] = impl_->make_arm(config, n);
  impl_->arm_count.store(n + 1, std::memory_order_release);
  return n;
}

void Executor::set_enabled(ArmId arm, bool enabled) {
  impl_->arm_or_throw(arm, "set_enabled").enabled.store(enabled, std::memory_order_relaxed);
}

void Executor::pause(ArmId arm) {
  Arm& a = impl_->arm_or_throw(arm, "pause");
  a.paused.store(true, std::memory_order_seq_cst);
  impl_->unpark(&a);  // a drainer parked on it retires (see park())
}

void Executor::resume(ArmId arm) { impl_->resume(impl_->arm_or_throw(arm, "resume")); }

ArmLatency Executor::arm_latency(ArmId arm) const {
  const Arm& a = impl_->arm_or_throw(arm, "arm_latency");
  return ArmLatency{a.queue_wait.total(), a.run_time.total()};
}

void Executor::set_max_parallel(ArmId arm, std::uint32_t max_parallel) {
  Arm& a = impl_->arm_or_throw(arm, "set_max_parallel");
  if (max_parallel == 0) {
    throw std::invalid_argument("octo::Executor::set_max_parallel: arm '" + a.name +
                                "': max_parallel must be >= 1 (got 0)");
  }
  a.max_parallel.store(max_parallel, std::memory_order_seq_cst);
  // A raised limit may let more drainers work on an existing backlog.
  if (a.queued() > 0) impl_->wake(a, INT64_MAX / 2);
}

void Executor::set_routes(const RoutingTable& routes) {
  octo::detail::LockGuard lock(impl_->config_mu);
  impl_->install_routes(routes);
}

ArmStatus Executor::arm_status(ArmId arm) const {
  const Arm& a = impl_->arm_or_throw(arm, "arm_status");
  ArmStatus s = a.status();
  // A drainer waiting for work (idle_wait) runs nothing.
  s.idle_drainer = impl_->idle_arm.load(std::memory_order_relaxed) == &a;
  s.idle_parked = s.idle_drainer && impl_->parked.load(std::memory_order_relaxed) == &a;
  if (s.idle_drainer && s.active > 0) --s.active;
  s.stuck = impl_->stuck(arm);
  return s;
}

RuntimeStatus Executor::status() const {
  RuntimeStatus r;
  const auto n = static_cast<ArmId>(arm_count());
  for (ArmId i = 0; i < n; ++i) {
    ArmStatus s = arm_status(i);
    r.accepted += s.accepted;
    r.succeeded += s.succeeded;
    r.failed += s.failed;
    r.retried += s.retried;
    r.dead_lettered += s.dead_lettered;
    r.cancelled += s.cancelled;
    r.pending += s.pending;
    r.queued += s.queued;
    r.rejected += s.rejected;
    r.expired += s.expired;
    r.stuck += s.stuck;
    r.arms.push_back(std::move(s));
  }
  r.rejected_unroutable = impl_->rejected_unroutable.load(std::memory_order_relaxed);
  r.rejected_stopped = impl_->rejected_stopped.load(std::memory_order_relaxed);
  r.rejected += r.rejected_unroutable + r.rejected_stopped;
  r.stopping = impl_->stopping.load(std::memory_order_relaxed);
  r.recovered = impl_->recovered.load(std::memory_order_relaxed);
  return r;
}

std::vector<DeadLetter> Executor::dead_letters() const { return impl_->dead.snapshot(); }

std::uint64_t Executor::dead_letters_dropped() const noexcept { return impl_->dead.dropped(); }

const Context& Executor::context() const noexcept { return impl_->context; }

bool Executor::wait_idle(std::chrono::nanoseconds timeout) {
  if (Impl::t_draining == impl_.get()) return false;  // a handler waiting for its own task
  const auto now = SteadyTime::now();
  const auto deadline = timeout >= SteadyTime::time_point::max() - now
                            ? SteadyTime::time_point::max()
                            : now + timeout;
  return impl_->wait_idle_until(deadline);
}

ShutdownReport Executor::shutdown(ShutdownMode mode, std::chrono::nanoseconds deadline) {
  if (mode != ShutdownMode::kDrain && mode != ShutdownMode::kCancel)
    throw std::invalid_argument("octo::Executor::shutdown: mode " +
                                std::to_string(static_cast<int>(mode)) +
                                " is neither kDrain nor kCancel");
  return impl_->shutdown(mode, deadline);
}

}  // namespace octo

namespace octo::this_task {

bool stop_requested() noexcept {
  const detail::RunningSlot* s = t_slot;
  return s != nullptr && s->stop_requested_now(CycleClock::now());
}

std::stop_token stop_token() {
  detail::RunningSlot* s = t_slot;
  if (s == nullptr) return {};
  detail::LockGuard lock(s->source_mu);
  if (s->source == nullptr) {
    s->source = new std::stop_source;
    // Release: the timer, cancel() and shutdown lock the mutex only after seeing the flag.
    s->has_source.store(true, std::memory_order_release);
  }
  if (s->stop_requested_now(CycleClock::now())) s->source->request_stop();
  return s->source->get_token();
}

TaskId id() noexcept {
  const detail::RunningSlot* s = t_slot;
  return s != nullptr ? s->task.load(std::memory_order_relaxed) : 0;
}

}  // namespace octo::this_task

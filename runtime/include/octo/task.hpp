// octo/task.hpp — the unit of work an Octopus arm runs.
//
// A Task names what to do (`type`, routed to an arm), carries an opaque payload, a priority and the
// agents it targets. The executor stamps `id`, `created` and `attempt`. Handlers return an Outcome:
// a failure (or an exception) is retried with backoff, then dead-lettered.
//
//   octo::Task t{.type = "agent.revive", .payload = R"({"agent":"a-17"})",
//                .priority = octo::Priority::kCritical, .target_agents = {"dreamops"},
//                .key = "a-17"};
//   auto r = executor.enqueue(std::move(t));   // r.id() or r.error()
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "octo/boxed.hpp"

namespace octo {

// Identifies an accepted task for cancellation and in events. 0 is never a valid id.
using TaskId = std::uint64_t;

// Drained highest first; an aging rule keeps lower priorities from starving (see executor.hpp).
enum class Priority : std::uint8_t { kLow = 0, kNormal = 1, kHigh = 2, kCritical = 3 };
inline constexpr int kPriorityCount = 4;

std::string_view to_string(Priority p) noexcept;

// The last millisecond system_clock (nanoseconds in 64 bits) can hold: 2262-04-11.
inline constexpr std::int64_t kMaxTimeMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::duration::max())
                                               .count();
// Milliseconds since the epoch as a time point, or nullopt when negative or past kMaxTimeMs (the
// conversion would overflow): the check each decoder of stored or received times makes.
inline std::optional<std::chrono::system_clock::time_point> time_from_ms(std::int64_t ms) noexcept {
  if (ms < 0 || ms > kMaxTimeMs) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// How long a unique task's key stays taken (Task::unique).
enum class UniqueScope : std::uint8_t {
  kQueued,           // while it waits: queued, delayed or waiting for a retry
  kQueuedOrRunning,  // and while it runs
};

// What makes a task unique (Task::unique): while a task with `key` is pending in `scope`, and for
// at most `ttl` after it was accepted, another task with the same key is refused with
// EnqueueError::kDuplicate, whose id() is the first task's. An empty key or a TTL of zero or less
// is refused with kBadUnique.
struct Unique {
  std::string key{};
  std::chrono::milliseconds ttl{0};
  UniqueScope scope = UniqueScope::kQueued;
};

struct Task {
  std::string type{};
  std::string payload{};
  Priority priority = Priority::kNormal;
  // Out of line (octo/boxed.hpp): most tasks target no agent, and an inline vector would cost
  // every task 24 bytes instead of 8.
  Boxed<std::vector<std::string>> target_agents{};
  // Attempts before dead-lettering; 0 means the arm's default.
  std::uint32_t max_attempts = 0;
  // Set by the executor: 1 on the first run, incremented by each retry; ignored on input. Beside
  // max_attempts, where it fills what would be padding.
  std::uint32_t attempt = 0;
  // The task is wanted only until then (the epoch = no deadline). Not started by the deadline, it
  // expires: dead-lettered with reason "expired" and counted, at enqueue when the deadline has
  // already passed, else when a drainer reaches it. Running at the deadline, it is asked to stop
  // (octo/this_task.hpp). Journaled: a recovered task keeps it.
  std::chrono::system_clock::time_point deadline{};
  // Not before then (the epoch, or any time already past = at once). A delayed task is accepted at
  // enqueue (it has an id, cancel(id) works, it is journaled with its due time) and waits in the
  // executor's one timer, counted in ArmStatus::delayed, until it is due; then it is queued as
  // any other. Executor::enqueue_after() sets it from a delay.
  std::chrono::system_clock::time_point run_at{};
  // On an arm with ArmConfig::max_parallel_per_key, tasks of one key share that limit ("agent-17":
  // one repair of an agent at a time). Empty = no key; ignored by arms without a per-key limit.
  // Boxed: a keyless task pays 8 bytes for it, not a std::string's 32.
  Boxed<std::string> key{};
  // Set = a unique task (see Unique). Per executor; the claim is kept in memory only (a task
  // recovered from the journal is unique again only once re-enqueued). Boxed, as `key` is.
  Boxed<Unique> unique{};

  // Set by the executor on acceptance; ignored on input.
  TaskId id = 0;
  std::chrono::system_clock::time_point created{};
  // The task's identity across restarts and redeliveries (a recovered task gets a new `id` but
  // keeps this), for handlers that must be idempotent. Assigned by the journal when the executor
  // has one, derived from the stream entry id for RedisStreams arms, else kept as given.
  std::uint64_t durable_key = 0;
};

// What a handler reports. Failures carry a reason that ends up in the dead letter and in events.
class Outcome {
 public:
  static Outcome success() noexcept { return Outcome(); }
  static Outcome failure(std::string reason) { return Outcome(std::move(reason)); }

  bool ok() const noexcept { return ok_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  Outcome() noexcept = default;
  explicit Outcome(std::string reason) : ok_(false), reason_(std::move(reason)) {}
  bool ok_ = true;
  std::string reason_;
};

}  // namespace octo

// octo/redis_streams.hpp — arms that span processes and hosts, backed by Redis Streams.
//
// A stream-backed arm keeps its tasks in the Redis stream `<prefix><arm>` instead of in process
// memory. Any process publishes with XADD; every process that runs the arm reads it through one
// consumer group (XREADGROUP), runs each task on its own executor arm (so `max_parallel` holds per
// process, with retries and backoff as in-process), then XACKs and XDELs it on success, or moves
// it to `<prefix><arm>:dead` when its attempts are spent. Tasks left unacknowledged by a consumer
// that died are taken over with XAUTOCLAIM once idle for `claim_idle`. Delivery is at-least-once:
// a consumer killed between a task's end and its XACK runs it again elsewhere, so handlers should
// be idempotent, keyed by Task::durable_key (derived from the stream entry id).
//
// A task published with Task::run_at ahead waits in Redis, in the sorted set `<stream>:delayed`,
// and is moved to the stream when due by whichever consumer looks first (each consumer looks
// before every read, and an idle consumer's read waits no longer than until the next due time):
// it runs once across the fleet, a few milliseconds after its time when a consumer is idle (within
// `block` when all are busy), and never before it on a consumer whose clock agrees with the
// publisher's (the consumer's executor waits out any rest locally).
//
//   octo::ExecutorConfig cfg;
//   cfg.on("batch", run_batch_job);
//   octo::RedisStreams rs(std::move(cfg), {.port = 6379, .arms = {"batch"}});
//   rs.publish({.type = "run-batch-job", .payload = "nightly"});   // from any process
//
// Connection loss never throws or crashes: every connection is retried with exponential backoff
// and the state is reported in status(). Sizing for a fleet: see docs/operations.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "octo/executor.hpp"
#include "octo/schedule.hpp"

namespace octo {

struct RedisStreamsConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  // Stream of arm A: prefix + A; its dead letters: prefix + A + ":dead".
  std::string stream_prefix = "octo:";
  std::string group = "octo";
  // Unique per process; empty = "<hostname>-<pid>".
  std::string consumer{};
  // Arms backed by streams (each must exist in the executor's configuration).
  std::vector<std::string> arms{};
  // False: a publisher only; this process runs none of the stream-backed arms' tasks.
  bool consume = true;
  // Tasks taken from a stream and not yet acknowledged, per arm, at most prefetch * max_parallel.
  std::uint32_t prefetch = 2;
  // A task pending on another consumer for this long is taken over (that consumer is presumed
  // dead). Must exceed the longest task: this process refreshes its own pending tasks every
  // claim_idle / 3 so that a slow task is not taken over while it runs.
  std::chrono::milliseconds claim_idle{30'000};
  // A task delivered this many times without an ack is dead-lettered instead of run again.
  std::uint32_t max_deliveries = 5;
  // XREADGROUP BLOCK time: how long a fetcher waits for new entries before it looks again.
  std::chrono::milliseconds block{100};
  // Reconnect backoff, doubling from base to max.
  std::chrono::milliseconds reconnect_base{50};
  std::chrono::milliseconds reconnect_max{5'000};
  // Entries kept in each dead-letter stream (XADD MAXLEN ~).
  std::size_t dead_letter_limit = 10'000;
};

struct StreamArmStatus {
  std::string arm;
  std::string stream;
  std::uint64_t published = 0;  // XADDs from this process
  std::uint64_t fetched = 0;    // entries read (new and claimed)
  std::uint64_t claimed = 0;    // of which taken over from another consumer
  std::uint64_t acked = 0;      // succeeded and acknowledged
  std::uint64_t dead_lettered = 0;
  std::uint64_t in_flight = 0;  // fetched, not yet acknowledged
  // Delayed tasks (Task::run_at ahead): published into `<stream>:delayed`, moved by this process
  // from there to the stream when due, and the set's size when this process last looked.
  std::uint64_t published_delayed = 0;
  std::uint64_t moved = 0;
  std::uint64_t delayed = 0;
};

struct RedisStatus {
  // The most recent Redis command (or connect) of this process succeeded. Consumers talk to Redis
  // at least every `block`, so a loss shows within about block + 2 s; a publisher-only process
  // finds out at its next publish.
  bool connected = false;
  std::uint64_t reconnects = 0;  // connections re-established after a loss
  std::uint64_t errors = 0;      // failed commands and connects
  std::string last_error{};
  std::vector<StreamArmStatus> arms;
};

// A fleet schedule's state in this process (RedisStreams::schedule).
struct FleetScheduleStatus {
  // As for a local schedule; `fired` counts the firings this process won and published, `refused`
  // those whose publish failed, `skipped` those the overlap policy held back, `missed` those it
  // won while the schedule was paused; `paused` is the fleet's pause as this process last saw
  // it, and `next_run` goes on while paused (the instants are the fleet's).
  ScheduleStatus schedule;
  std::uint64_t elsewhere = 0;    // firings another process took
  std::uint64_t unavailable = 0;  // firings not taken because Redis did not answer
  std::uint64_t last_token = 0;   // the fencing token of the last firing this process took
  std::string last_holder{};      // who took the last firing this process lost
};

// The answer to publish(): the stream entry id, or why it failed.
struct PublishResult {
  std::string entry_id{};
  std::string error{};
  // Refused as a duplicate of a unique task (Task::unique): the id publish() gave that task (a
  // stream entry id, "delayed-<seq>", or "local-<task id>" for an arm of this process). `error`
  // names the key.
  std::string duplicate_of{};
  explicit operator bool() const noexcept { return error.empty(); }
};

// The answer to pause_schedule() / resume_schedule(): whether this process declared the
// schedule, and why Redis did not take the change.
struct ScheduleChange {
  bool found = false;
  std::string error{};
  explicit operator bool() const noexcept { return found && error.empty(); }
};

// The answer to cancel_delayed(): cancelled, not found (already due and moved to the stream, or
// never published), or an error (Redis unreachable).
struct CancelResult {
  bool cancelled = false;
  std::string error{};
};

class RedisStreams {
 public:
  // Builds the executor and starts one fetcher thread per stream-backed arm (when consuming) and
  // one acknowledging thread. Throws std::invalid_argument on a bad configuration (unknown arm,
  // an executor journal: the stream is these arms' durable store). Does not need Redis to be up.
  RedisStreams(ExecutorConfig executor, RedisStreamsConfig config);
  // stop(), then the executor's destructor.
  ~RedisStreams();
  RedisStreams(const RedisStreams&) = delete;
  RedisStreams& operator=(const RedisStreams&) = delete;

  // Routes task.type; a stream-backed arm gets an XADD (blocking on the round trip), or for a
  // delayed task a script that adds it to the arm's delayed set (entry_id "delayed-<seq>",
  // cancellable with cancel_delayed()); any other arm the local executor (its EnqueueError is
  // reported as text). Thread-safe.
  //
  // A unique task (Task::unique) on a stream-backed arm is unique across the fleet: its claim is
  // the key `<stream>:unique:<key>` (value: the holder's entry id, expiring after the TTL), taken
  // in the same script as the XADD, so of two publishers racing with one key exactly one wins
  // and the other gets `duplicate_of`. The consumer that runs the task releases the claim when
  // it starts (UniqueScope::kQueued) or after its ack (kQueuedOrRunning); a claim whose holder is
  // gone from Redis (deleted by hand, or a release lost with its connection) counts as free.
  // A bad claim (empty key, TTL <= 0) is an error naming it, as the executor's kBadUnique is.
  PublishResult publish(const Task& task);
  // Many tasks in one pipelined round trip; one result each.
  std::vector<PublishResult> publish(std::span<const Task> tasks);

  // Cancels a delayed task not yet due: `entry_id` is what publish() returned for it
  // ("delayed-<seq>") and `arm` the stream-backed arm its type routes to. Its unique claim, if
  // any, is released. Throws std::invalid_argument for an arm that is not stream-backed or an id
  // of another form (naming it). Thread-safe; one round trip.
  CancelResult cancel_delayed(std::string_view arm, std::string_view entry_id);

  // Stops fetching, lets running tasks finish until `deadline`, sends the last acks and closes.
  // Tasks still queued here stay pending in Redis and are taken over with XAUTOCLAIM once idle
  // for claim_idle, by whichever consumer of the group looks first (a restarted process too,
  // whatever its name). Idempotent.
  void stop(std::chrono::nanoseconds deadline = std::chrono::seconds(30));

  // A periodic schedule that fires once per planned firing across every process that declares it
  // (each declares the same spec at start). At each firing the processes race for the lease
  // `<prefix>lease:schedule:<name>@<planned ms>` (octo/redis_lease.hpp, TTL one period, 1 s to
  // 24 h); the winner publishes a copy of `spec.task` with `run_at` set to the planned time
  // (already past: handlers can tell firings apart by it), the others count it `elsewhere`.
  // Redis unreachable: nobody fires (counted `unavailable`), rather than everyone. `every`
  // periods are counted from the epoch, so that every process plans the same instants.
  //
  // Overlap holds fleet-wide through unique claims (see publish()), held while the task is
  // queued or running: kSkip publishes the firing with the claim "schedule:<name>"; kBufferOne
  // tries that one, then "schedule:<name>:buffered" (at most two pending, as Executor::schedule
  // allows); a firing refused as a duplicate counts `skipped`. The claims' TTL, ten periods
  // (1 min to 24 h), bounds how long a lost release can hold the schedule back. These two need a
  // stream-backed arm and a task without its own Task::unique. Throws std::invalid_argument
  // naming the schedule and the field (as Executor::schedule does).
  void schedule(ScheduleSpec spec);
  // Pauses or resumes the schedule for the whole fleet: the key `<prefix>schedule:<name>:paused`
  // (no TTL), which the process that wins each firing reads before it publishes; a firing taken
  // while paused counts `missed` there. One round trip; `found` false for a name this process
  // did not declare, `error` set when Redis did not answer (nothing changed).
  ScheduleChange pause_schedule(std::string_view name);
  ScheduleChange resume_schedule(std::string_view name);
  // This process stops declaring the schedule (the others go on firing it).
  bool remove_schedule(std::string_view name);
  std::vector<FleetScheduleStatus> schedules() const;

  Executor& executor() noexcept;
  RedisStatus status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo

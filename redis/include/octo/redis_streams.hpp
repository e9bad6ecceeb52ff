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
  // those whose publish failed.
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
  explicit operator bool() const noexcept { return error.empty(); }
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
  // delayed task a script that adds it to the arm's delayed set (entry_id "delayed-<seq>"; not
  // cancellable); any other arm the local executor (its EnqueueError is reported as text).
  // Thread-safe.
  PublishResult publish(const Task& task);
  // Many tasks in one pipelined round trip; one result each.
  std::vector<PublishResult> publish(std::span<const Task> tasks);

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
  // periods are counted from the epoch, so that every process plans the same instants. Only
  // Overlap::kAllow: whether the last firing's task is still pending is not known across
  // processes. Throws std::invalid_argument naming the schedule and the field (as
  // Executor::schedule does, and for another overlap policy).
  void schedule(ScheduleSpec spec);
  bool remove_schedule(std::string_view name);
  std::vector<FleetScheduleStatus> schedules() const;

  Executor& executor() noexcept;
  RedisStatus status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo

#include "octo/redis_streams.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "octo/detail/annotated_mutex.hpp"
#include "octo/redis_lease.hpp"

#include "detail/connection.hpp"
#include "detail/entry_codec.hpp"

namespace octo {

namespace {

using SteadyTime = std::chrono::steady_clock;
using detail::Command;
using detail::id_of;
using detail::is_error;
using detail::key_of;
using detail::Reply;
using detail::reply_text;
using octo::detail::LockGuard;
using octo::detail::UniqueLock;

// Delayed tasks wait in the sorted set `<stream>:delayed` (score: due time in ms since the epoch,
// member: a sequence number) with their fields in the list `<stream>:delayed:<seq>`; streams
// cannot delay. Both scripts are atomic, so however many consumers run the mover, each task is
// moved to the stream exactly once. (Keys built inside the scripts: one Redis, not a cluster.)
//
// KEYS[1] the set; ARGV[1] the due time; ARGV[2..] the task's fields. Returns the sequence number.
constexpr std::string_view kAddDelayed = R"lua(
local seq = redis.call('INCR', KEYS[1] .. ':seq')
redis.call('RPUSH', KEYS[1] .. ':' .. seq, unpack(ARGV, 2))
redis.call('ZADD', KEYS[1], ARGV[1], seq)
return seq
)lua";
// KEYS[1] the set, KEYS[2] the stream; ARGV[1] now (ms), ARGV[2] at most this many. Moves what is
// due; a member whose field list is missing or odd becomes an entry without a type, which the
// consumer dead-letters ("no type field") rather than losing it. A unique claim held by the
// delayed task passes to its stream entry. Returns {moved, the next due time or -1, the set's
// size}.
constexpr std::string_view kMoveDue = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, seq in ipairs(due) do
  local list = KEYS[1] .. ':' .. seq
  local f = redis.call('LRANGE', list, 0, -1)
  if #f > 0 and #f % 2 == 0 then
    local id = redis.call('XADD', KEYS[2], '*', unpack(f))
    for i = 1, #f - 1, 2 do
      if f[i] == 'unique' then
        local lock = KEYS[2] .. ':unique:' .. f[i + 1]
        if redis.call('GET', lock) == 'delayed-' .. seq then
          redis.call('SET', lock, id, 'KEEPTTL')
        end
      end
    end
  else
    redis.call('XADD', KEYS[2], '*', 'delayed', seq, 'fields', #f)
  end
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[1], seq)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, next[2] or '-1', redis.call('ZCARD', KEYS[1])}
)lua";
// A unique task's claim is the key `<stream>:unique:<key>`, whose value is the holder's entry id
// (or "delayed-<seq>" while it waits in the set). A holder gone from the stream (or the set) is
// not live: its claim was left behind (an entry deleted by hand, a release lost with its
// connection) and is free.
//
// KEYS[1] the claim, KEYS[2] the stream, KEYS[3] the delayed set; ARGV[1] the TTL (ms), ARGV[2]
// the due time (ms) or 0 for now, ARGV[3..] the task's fields. Returns {1, the new id} or
// {0, the holder's id}.
constexpr std::string_view kPublishUnique = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur then
  local live
  local seq = string.match(cur, '^delayed%-(%d+)$')
  if seq then
    live = redis.call('ZSCORE', KEYS[3], seq)
  else
    local ok, r = pcall(redis.call, 'XRANGE', KEYS[2], cur, cur)
    live = ok and #r > 0
  end
  if live then return {0, cur} end
end
local id
if ARGV[2] ~= '0' then
  local s = redis.call('INCR', KEYS[3] .. ':seq')
  redis.call('RPUSH', KEYS[3] .. ':' .. s, unpack(ARGV, 3))
  redis.call('ZADD', KEYS[3], ARGV[2], s)
  id = 'delayed-' .. s
else
  id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
end
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return {1, id}
)lua";
// KEYS[1] the claim; ARGV[1] the holder. Deletes the claim if that holder still has it.
constexpr std::string_view kReleaseUnique = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";
// KEYS[1] the set, KEYS[2] the stream; ARGV[1] the sequence number. Removes the delayed task and
// releases its claim. Returns 1, or 0 when it is no longer in the set.
constexpr std::string_view kCancelDelayed = R"lua(
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local list = KEYS[1] .. ':' .. ARGV[1]
local f = redis.call('LRANGE', list, 0, -1)
redis.call('DEL', list)
for i = 1, #f - 1, 2 do
  if f[i] == 'unique' then
    local lock = KEYS[2] .. ':unique:' .. f[i + 1]
    if redis.call('GET', lock) == 'delayed-' .. ARGV[1] then redis.call('DEL', lock) end
  end
end
return 1
)lua";
// Tasks moved per script call (one call holds Redis for its length).
constexpr std::uint64_t kMoveBatch = 256;
// Lua's unpack() in Redis stops near 8,000 values: a task sent through a script (delayed or
// unique) with more fields (thousands of target agents) is refused at publish.
constexpr std::size_t kMaxScriptFields = 7'000;

std::int64_t now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Command task_fields(Command c, const Task& t) {
  for (const std::string& f : detail::encode_task(t)) c << f;
  return c;
}

// Decodes [id, [field, value, ...]]; `id` empty when the reply is not an entry at all.
detail::DecodedTask parse_entry(const redisReply* e, std::string& id) {
  if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2)
    return {std::nullopt, "malformed stream entry (not [id, fields])"};
  id = std::string(reply_text(e->element[0]));
  const redisReply* f = e->element[1];
  if (!f || f->type != REDIS_REPLY_ARRAY)
    return {std::nullopt, "malformed stream entry (no fields)"};
  std::vector<std::string_view> fields;
  fields.reserve(f->elements);
  for (std::size_t i = 0; i < f->elements; ++i) fields.push_back(reply_text(f->element[i]));
  return detail::decode_task(fields, id);
}

}  // namespace

struct RedisStreams::Impl {
  // The connections' reports (see detail/connection.hpp).
  struct Health final : detail::ConnectionHealth {
    Impl* im = nullptr;
    void succeeded() noexcept override { im->succeeded(); }
    void reconnected() noexcept override { im->reconnects.fetch_add(1, std::memory_order_relaxed); }
    void failed(std::string what) override { im->error(std::move(what)); }
    void pause(std::chrono::milliseconds d) override { im->pause(d); }
  };
  using Conn = detail::Connection;

  // A unique claim held by an entry this process fetched: released by the acker when the task
  // starts (kQueued) or ends (kQueuedOrRunning).
  struct Hold {
    std::string claim, holder;
    UniqueScope scope = UniqueScope::kQueued;
  };

  struct Arm {
    std::string name, stream, dead_stream, delayed;
    ArmId id = 0;
    std::uint32_t window = 1;
    std::atomic<std::uint64_t> published{0}, fetched{0}, claimed{0}, acked{0}, dead{0};
    std::atomic<std::uint64_t> published_delayed{0}, moved{0}, delayed_size{0};
    std::atomic<std::uint32_t> in_flight{0};
    octo::detail::Mutex mu;  // keys, holds, space
    // Durable keys of entries fetched, not yet acknowledged.
    std::set<std::uint64_t> keys OCTO_GUARDED_BY(mu);
    // Claims of fetched unique entries, by durable key; `holding` counts them so that the events
    // of an arm without unique tasks take no lock. Acquire/release: a hold is counted before its
    // task is enqueued, and the task's events come after (through the executor's queue).
    std::unordered_map<std::uint64_t, Hold> holds OCTO_GUARDED_BY(mu);
    std::atomic<std::uint32_t> holding{0};
    std::condition_variable space;
    std::thread fetcher;
  };

  // What the acker sends for one entry. Built on worker threads from the task's durable key;
  // the entry id string is formatted by the acker (raw_id only for an id no key can hold).
  // `release`: a unique claim to release after the ack, or instead of one (`release_only`, at a
  // kQueued task's start).
  struct Ack {
    Arm* arm;
    std::uint64_t key = 0;
    bool dead = false;
    std::string reason{};
    std::optional<Task> task{};
    std::string raw_id{};
    std::optional<Hold> release{};
    bool release_only = false;
  };

  // A fleet schedule (RedisStreams::schedule), under sched_mu.
  struct FleetSchedule {
    ScheduleSpec spec;
    std::optional<CronSchedule> cron;
    std::chrono::system_clock::time_point planned;  // the next firing, before jitter
    std::chrono::system_clock::time_point due;      // planned plus this firing's jitter
    FleetScheduleStatus st;
  };

  // The acker's view of the executor's events: the first of its observers.
  struct Forward final : Observer {
    Impl* im = nullptr;
    void on_event(const TaskEvent& e) noexcept override { im->on_event(e); }
  };

  Impl(ExecutorConfig ec, RedisStreamsConfig c) : cfg(std::move(c)) {
    if (ec.journal) {
      throw std::invalid_argument(
          "octo::RedisStreams: the executor must not have a journal (the streams are the durable "
          "store of stream-backed arms)");
    }
    if (cfg.arms.empty()) throw std::invalid_argument("octo::RedisStreams: no arms given");
    if (cfg.prefetch == 0 || cfg.max_deliveries == 0 || cfg.claim_idle.count() <= 0 ||
        cfg.block.count() <= 0) {
      throw std::invalid_argument(
          "octo::RedisStreams: prefetch, max_deliveries, claim_idle and block must be > 0");
    }
    if (cfg.consumer.empty()) cfg.consumer = detail::process_name();
    forward.im = this;
    health.im = this;
    ec.observers.insert(ec.observers.begin(), &forward);
    for (const auto& name : cfg.arms) {
      const auto it = std::find_if(ec.arms.begin(), ec.arms.end(),
                                   [&](const ArmConfig& a) { return a.name == name; });
      if (it == ec.arms.end()) {
        throw std::invalid_argument("octo::RedisStreams: no arm named '" + name +
                                    "' in the executor configuration");
      }
      if (std::count(cfg.arms.begin(), cfg.arms.end(), name) > 1) {
        throw std::invalid_argument("octo::RedisStreams: arm '" + name + "' listed twice");
      }
      auto a = std::make_unique<Arm>();
      a->name = name;
      a->stream = cfg.stream_prefix + name;
      a->dead_stream = a->stream + ":dead";
      a->delayed = a->stream + ":delayed";
      a->id = static_cast<ArmId>(it - ec.arms.begin());
      a->window = it->max_parallel * cfg.prefetch;
      if (cfg.consume && !it->handler) {
        throw std::invalid_argument("octo::RedisStreams: arm '" + name + "' has no handler");
      }
      arms.push_back(std::move(a));
    }
    for (const auto& a : arms) by_arm[a->id] = a.get();
    ex.emplace(std::move(ec));
    pub = std::make_unique<Conn>(cfg, health);                // connects on first use
    lease = std::make_unique<RedisLease>(cfg, cfg.consumer);  // likewise
    acker = std::thread([this] { ack_loop(); });
    if (cfg.consume) {
      for (auto& a : arms) a->fetcher = std::thread([this, p = a.get()] { fetch_loop(*p); });
    }
  }

  ~Impl() {
    stop(std::chrono::seconds(30));
    ex.reset();  // before `forward` and the arms, which its events reach
  }

  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               SteadyTime::now().time_since_epoch())
        .count();
  }
  // Relaxed: a status indicator; the two stamps only ever move forward.
  void succeeded() noexcept { last_ok_ns.store(now_ns(), std::memory_order_relaxed); }

  void error(std::string what) {
    last_fail_ns.store(now_ns(), std::memory_order_relaxed);
    errors.fetch_add(1, std::memory_order_relaxed);
    LockGuard lock(err_mu);
    last_error = std::move(what);
  }

  void pause(std::chrono::milliseconds d) {
    // Only the atomic `stopping` is read: the predicate needs no annotation.
    std::unique_lock lock(stop_mu.native());
    stop_cv.wait_for(lock, d, [&] { return stopping.load(); });
  }

  // --- consuming -----------------------------------------------------------------------------

  void fetch_loop(Arm& a) {
    Conn conn(cfg, health);
    bool group_ready = false;
    auto next_claim = SteadyTime::now();
    const auto refresh_every = std::max(cfg.claim_idle / 3, std::chrono::milliseconds(1));
    while (!stopping.load(std::memory_order_acquire)) {
      if (!conn.ensure(true)) continue;
      if (!group_ready) {
        // "0": a new group reads what was published before any consumer existed.
        Reply r = conn.run(Command() << "XGROUP"
                                     << "CREATE" << a.stream << cfg.group << "0"
                                     << "MKSTREAM");
        if (!r) continue;
        if (is_error(r.get()) && !reply_text(r.get()).starts_with("BUSYGROUP")) {
          error("XGROUP CREATE " + a.stream + ": " + std::string(reply_text(r.get())));
          pause(cfg.reconnect_max);
          continue;
        }
        group_ready = true;
      }
      if (SteadyTime::now() >= next_claim) {
        if (!refresh(conn, a) || !claim(conn, a)) continue;
        next_claim = SteadyTime::now() + refresh_every;
      }
      // Due delayed tasks move even while this consumer is full: another may be free.
      std::chrono::milliseconds wait = cfg.block;
      if (!move_due(conn, a, wait)) continue;
      const std::uint32_t busy = a.in_flight.load(std::memory_order_acquire);
      if (busy >= a.window) {
        // The predicate reads atomics only.
        std::unique_lock lock(a.mu.native());
        a.space.wait_for(lock, cfg.block, [&] {
          return a.in_flight.load(std::memory_order_acquire) < a.window || stopping.load();
        });
        continue;
      }
      Reply r = conn.run(Command() << "XREADGROUP"
                                   << "GROUP" << cfg.group << cfg.consumer << "COUNT"
                                   << std::uint64_t{a.window - busy} << "BLOCK"
                                   << static_cast<std::uint64_t>(wait.count()) << "STREAMS"
                                   << a.stream << ">");
      if (!r) continue;
      if (is_error(r.get())) {
        // NOGROUP: the stream vanished (a Redis restarted without persistence): recreate it.
        error("XREADGROUP " + a.stream + ": " + std::string(reply_text(r.get())));
        group_ready = false;
        continue;
      }
      if (r->type != REDIS_REPLY_ARRAY) continue;  // nil: nothing new within `block`
      for (std::size_t s = 0; s < r->elements; ++s) {
        const redisReply* stream = r->element[s];
        if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
        const redisReply* entries = stream->element[1];
        for (std::size_t i = 0; i < entries->elements; ++i) deliver(a, entries->element[i], 1);
      }
    }
  }

  // Moves the arm's due delayed tasks to its stream, and shortens `wait` (the next read's block)
  // to when the next one is due. False when the connection was lost.
  bool move_due(Conn& conn, Arm& a, std::chrono::milliseconds& wait) {
    for (;;) {
      const std::int64_t now = now_ms();
      Reply r = conn.run(Command() << "EVAL" << kMoveDue << "2" << a.delayed << a.stream
                                   << static_cast<std::uint64_t>(now) << kMoveBatch);
      if (!r) return false;
      if (is_error(r.get()) || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
          r->element[0]->type != REDIS_REPLY_INTEGER ||
          r->element[2]->type != REDIS_REPLY_INTEGER) {
        error("moving due tasks of " + a.delayed + ": " +
              (is_error(r.get()) ? std::string(reply_text(r.get())) : "unexpected reply"));
        return true;
      }
      const auto moved = static_cast<std::uint64_t>(r->element[0]->integer);
      a.moved.fetch_add(moved, std::memory_order_relaxed);
      a.delayed_size.store(static_cast<std::uint64_t>(r->element[2]->integer),
                           std::memory_order_relaxed);
      if (moved == kMoveBatch) continue;  // more may be due
      const std::string next(reply_text(r->element[1]));
      const double due = std::strtod(next.c_str(), nullptr);
      if (due >= 0) {
        const auto until = std::chrono::milliseconds(static_cast<std::int64_t>(due) - now);
        wait = std::clamp(until, std::chrono::milliseconds(1), cfg.block);
      }
      return true;
    }
  }

  // Hands one entry to the executor. `deliveries` > max_deliveries dead-letters it instead.
  void deliver(Arm& a, const redisReply* entry, std::uint64_t deliveries) {
    std::string id;
    detail::DecodedTask decoded = parse_entry(entry, id);
    std::optional<Task>& task = decoded.task;
    if (id.empty()) return;
    const std::uint64_t key = key_of(id);
    // Already in flight here (claimed back after a failed refresh): it must not run twice.
    if (!track(a, key)) return;
    a.fetched.fetch_add(1, std::memory_order_relaxed);
    // The fleet's claim guards this task; the local executor must not claim it again (a second
    // delivery after a takeover would be refused as its own duplicate).
    std::optional<Hold> hold;
    if (task && !task->unique.empty()) {
      hold = Hold{a.stream + ":unique:" + task->unique->key, id, task->unique->scope};
      task->unique.reset();
    }
    if (key == 0) {
      push_ack(Ack{&a, 0, true, "stream entry id '" + id + "' does not fit a durable key",
                   std::move(task), id, std::move(hold)});
      return;
    }
    if (!task) {
      push_ack(Ack{&a, key, true, std::move(decoded.error)});
      return;
    }
    if (deliveries > cfg.max_deliveries) {
      push_ack(Ack{&a,
                   key,
                   true,
                   "delivered " + std::to_string(deliveries) +
                       " times without an ack (its consumers died while running it)",
                   std::move(task),
                   {},
                   std::move(hold)});
      return;
    }
    if (hold) {
      LockGuard lock(a.mu);
      a.holds.insert_or_assign(key, std::move(*hold));
      a.holding.fetch_add(1, std::memory_order_release);
    }
    const EnqueueResult r = ex->enqueue(a.id, std::move(*task));
    if (!r) {
      // Left pending under this consumer: taken over (by any consumer) after claim_idle, and
      // the claim with it.
      error("local enqueue on arm '" + a.name + "': " + std::string(to_string(r.error())));
      take_hold(a, key);
      untrack(a, key);
    }
  }

  // The claim of entry `key`, no longer tracked here; nullopt when it had none.
  std::optional<Hold> take_hold(Arm& a, std::uint64_t key) {
    if (a.holding.load(std::memory_order_acquire) == 0) return std::nullopt;
    LockGuard lock(a.mu);
    const auto it = a.holds.find(key);
    if (it == a.holds.end()) return std::nullopt;
    std::optional<Hold> h = std::move(it->second);
    a.holds.erase(it);
    a.holding.fetch_sub(1, std::memory_order_relaxed);
    return h;
  }

  // Key 0 (an id no key can hold) is counted in the window but not tracked for refresh.
  bool track(Arm& a, std::uint64_t key) {
    if (key != 0) {
      LockGuard lock(a.mu);
      if (!a.keys.insert(key).second) return false;
    }
    a.in_flight.fetch_add(1, std::memory_order_acq_rel);
    return true;
  }

  void untrack(Arm& a, std::uint64_t key) {
    if (key != 0) {
      LockGuard lock(a.mu);
      a.keys.erase(key);
    }
    a.in_flight.fetch_sub(1, std::memory_order_acq_rel);
    a.space.notify_one();
  }

  // Resets the idle time of this consumer's own unacknowledged entries, so a slow task is not
  // taken over while it runs. JUSTID: does not count as a delivery.
  bool refresh(Conn& conn, Arm& a) {
    Command c;
    c << "XCLAIM" << a.stream << cfg.group << cfg.consumer << "0";
    {
      LockGuard lock(a.mu);
      if (a.keys.empty()) return true;
      for (const std::uint64_t key : a.keys) c << id_of(key);
    }
    c << "JUSTID";
    return conn.run(c) != nullptr;
  }

  // Takes over entries idle on other (presumably dead) consumers.
  bool claim(Conn& conn, Arm& a) {
    std::string cursor = "0-0";
    do {
      const std::uint32_t busy = a.in_flight.load(std::memory_order_acquire);
      if (busy >= a.window) return true;
      Reply r = conn.run(Command() << "XAUTOCLAIM" << a.stream << cfg.group << cfg.consumer
                                   << static_cast<std::uint64_t>(cfg.claim_idle.count()) << cursor
                                   << "COUNT" << std::uint64_t{a.window - busy});
      if (!r) return false;
      if (is_error(r.get()) || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        if (is_error(r.get()))
          error("XAUTOCLAIM " + a.stream + ": " + std::string(reply_text(r.get())));
        return true;
      }
      cursor = std::string(reply_text(r->element[0]));
      const redisReply* entries = r->element[1];
      for (std::size_t i = 0; i < entries->elements; ++i) {
        const redisReply* e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;  // deleted meanwhile
        const std::string id(reply_text(e->element[0]));
        Reply p = conn.run(Command() << "XPENDING" << a.stream << cfg.group << id << id << "1");
        if (!p) return false;
        std::uint64_t deliveries = 1;
        if (p->type == REDIS_REPLY_ARRAY && p->elements == 1 &&
            p->element[0]->type == REDIS_REPLY_ARRAY && p->element[0]->elements == 4) {
          deliveries = static_cast<std::uint64_t>(p->element[0]->element[3]->integer);
        }
        a.claimed.fetch_add(1, std::memory_order_relaxed);
        deliver(a, e, deliveries);
      }
    } while (cursor != "0-0" && !stopping.load(std::memory_order_acquire));
    return true;
  }

  // --- acknowledging -------------------------------------------------------------------------

  void on_event(const TaskEvent& e) noexcept {
    if (e.task == nullptr || e.task->durable_key == 0) return;
    const auto it = by_arm.find(e.arm);
    if (it == by_arm.end()) return;
    Arm& a = *it->second;
    const std::uint64_t key = e.task->durable_key;
    try {
      switch (e.kind) {
        case TaskEventKind::kStarted:
          if (a.holding.load(std::memory_order_acquire) != 0) {
            std::optional<Hold> h;
            {
              LockGuard lock(a.mu);
              const auto it = a.holds.find(key);
              if (it != a.holds.end() && it->second.scope == UniqueScope::kQueued) {
                h = std::move(it->second);
                a.holds.erase(it);
                a.holding.fetch_sub(1, std::memory_order_relaxed);
              }
            }
            if (h)
              push_ack(Ack{.arm = &a, .key = key, .release = std::move(h), .release_only = true});
          }
          break;
        case TaskEventKind::kSucceeded:
          push_ack(Ack{.arm = &a, .key = key, .release = take_hold(a, key)});
          break;
        case TaskEventKind::kDeadLettered:
          push_ack(Ack{&a, key, true, std::string(e.reason), *e.task, {}, take_hold(a, key)});
          break;
        case TaskEventKind::kCancelled:
          // Cancelled by stop(): stays pending for another consumer, which will hold its claim.
          // By cancel(id): acked.
          if (stopping.load(std::memory_order_acquire)) {
            take_hold(a, key);
            untrack(a, key);
          } else {
            push_ack(Ack{.arm = &a, .key = key, .release = take_hold(a, key)});
          }
          break;
        default:
          break;
      }
    } catch (...) {  // out of memory: the entry stays pending and is taken over later
    }
  }

  void push_ack(Ack&& ack) {
    {
      LockGuard lock(ack_mu);
      acks.push_back(std::move(ack));
    }
    ack_cv.notify_one();
  }

  void ack_loop() {
    Conn conn(cfg, health);
    std::vector<Ack> batch;
    for (;;) {
      auto retry_until = SteadyTime::time_point::max();
      {
        UniqueLock lock(ack_mu);
        while (acks.empty() && batch.empty() && !ack_stop) ack_cv.wait(lock.native());
        if (ack_stop) {
          if ((acks.empty() && batch.empty()) || SteadyTime::now() >= ack_deadline) break;
          retry_until = ack_deadline;
        }
        for (auto& a : acks) batch.push_back(std::move(a));
        acks.clear();
      }
      if (!conn.ensure(false)) {
        // Not cut short by stop(): the last acks are worth retrying until its deadline.
        std::this_thread::sleep_until(std::min(SteadyTime::now() + conn.backoff(), retry_until));
        continue;
      }
      for (const Ack& k : batch) {
        if (k.release_only) {
          conn.append(release_command(*k.release));
          continue;
        }
        const std::string id = k.raw_id.empty() ? id_of(k.key) : k.raw_id;
        if (k.dead) {
          Command c;
          c << "XADD" << k.arm->dead_stream << "MAXLEN"
            << "~" << cfg.dead_letter_limit << "*"
            << "id" << id << "reason" << k.reason;
          if (k.task) c = task_fields(std::move(c), *k.task);
          conn.append(c);
        }
        conn.append(Command() << "XACK" << k.arm->stream << cfg.group << id);
        conn.append(Command() << "XDEL" << k.arm->stream << id);
        if (k.release) conn.append(release_command(*k.release));
      }
      bool ok = true;
      for (const Ack& k : batch) {
        const int replies = k.release_only ? 1 : (k.dead ? 3 : 2) + (k.release ? 1 : 0);
        for (int n = replies; n > 0 && ok; --n) ok = conn.read() != nullptr;
        if (!ok) break;
      }
      // Connection lost: resend the whole batch (XACK, XDEL and the release are idempotent).
      if (!ok) continue;
      for (const Ack& k : batch) {
        if (k.release_only) continue;
        (k.dead ? k.arm->dead : k.arm->acked).fetch_add(1, std::memory_order_relaxed);
        untrack(*k.arm, k.key);
      }
      batch.clear();
    }
  }

  static Command release_command(const Hold& h) {
    return Command() << "EVAL" << kReleaseUnique << "1" << h.claim << h.holder;
  }

  // --- publishing ----------------------------------------------------------------------------

  std::vector<PublishResult> publish(std::span<const Task> tasks) {
    std::vector<PublishResult> out(tasks.size());
    std::vector<Arm*> target(tasks.size(), nullptr);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const auto arm = tasks[i].type.empty() ? std::nullopt : ex->resolve(tasks[i].type);
      if (!arm) {
        out[i].error = tasks[i].type.empty() ? "empty task type" : "no route for task type";
        continue;
      }
      if (const auto it = by_arm.find(*arm); it != by_arm.end()) {
        target[i] = it->second;
        continue;
      }
      const EnqueueResult r = ex->enqueue(*arm, tasks[i]);
      if (r) {
        out[i].entry_id = "local-" + std::to_string(r.id());
      } else {
        out[i].error = std::string(to_string(r.error()));
        if (r.error() == EnqueueError::kDuplicate) {
          out[i].duplicate_of = "local-" + std::to_string(r.id());
          out[i].error += " of unique key '" + tasks[i].unique->key + "'";
        }
      }
    }
    LockGuard lock(pub_mu);
    if (!pub->ensure(false)) {
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        if (target[i]) out[i].error = "redis unavailable: " + current_error();
      }
      return out;
    }
    const auto now = std::chrono::system_clock::now();
    std::vector<bool> delayed(tasks.size(), false);
    std::size_t sent = 0;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      if (!target[i]) continue;
      Task t = tasks[i];
      t.created = now;
      const auto due =
          std::chrono::ceil<std::chrono::milliseconds>(t.run_at.time_since_epoch()).count();
      delayed[i] = t.run_at > now;
      if (!delayed[i] && t.unique.empty()) {
        pub->append(task_fields(Command() << "XADD" << target[i]->stream << "*", t));
        ++sent;
        continue;
      }
      // Through a script: a delayed task, a unique one, or both.
      if (!t.unique.empty() && (t.unique->key.empty() || t.unique->ttl.count() <= 0)) {
        out[i].error = std::string(to_string(EnqueueError::kBadUnique)) + ": " +
                       (t.unique->key.empty()
                            ? "an empty key"
                            : "TTL " + std::to_string(t.unique->ttl.count()) + " ms (must be > 0)");
        target[i] = nullptr;
        continue;
      }
      const auto fields = detail::encode_task(t);
      if (fields.size() > kMaxScriptFields) {
        out[i].error = std::string(delayed[i] ? "a delayed" : "a unique") +
                       " task may have at most " + std::to_string(kMaxScriptFields) +
                       " stream fields (this one has " + std::to_string(fields.size()) + ")";
        target[i] = nullptr;
        continue;
      }
      Command c;
      if (t.unique.empty()) {
        c << "EVAL" << kAddDelayed << "1" << target[i]->delayed << static_cast<std::uint64_t>(due);
      } else {
        c << "EVAL" << kPublishUnique << "3" << target[i]->stream + ":unique:" + t.unique->key
          << target[i]->stream << target[i]->delayed
          << static_cast<std::uint64_t>(t.unique->ttl.count())
          << static_cast<std::uint64_t>(delayed[i] ? due : 0);
      }
      for (const std::string& f : fields) c << f;
      pub->append(c);
      ++sent;
    }
    for (std::size_t i = 0; i < tasks.size() && sent > 0; ++i) {
      if (!target[i]) continue;
      Reply r = pub->connected() ? pub->read() : nullptr;
      const bool unique = !tasks[i].unique.empty();
      if (!r) {
        out[i].error = "redis connection lost: " + current_error();
      } else if (is_error(r.get())) {
        out[i].error = (unique       ? "publishing a unique task: "
                        : delayed[i] ? "adding a delayed task: "
                                     : "XADD: ") +
                       std::string(reply_text(r.get()));
      } else if (unique) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER) {
          out[i].error = "publishing a unique task: unexpected reply";
        } else if (r->element[0]->integer == 0) {
          out[i].duplicate_of = std::string(reply_text(r->element[1]));
          out[i].error = std::string(to_string(EnqueueError::kDuplicate)) + " of unique key '" +
                         tasks[i].unique->key + "' (held by " + out[i].duplicate_of + ")";
        } else {
          out[i].entry_id = std::string(reply_text(r->element[1]));
          (delayed[i] ? target[i]->published_delayed : target[i]->published)
              .fetch_add(1, std::memory_order_relaxed);
        }
      } else if (delayed[i]) {
        out[i].entry_id = "delayed-" + std::to_string(r->integer);
        target[i]->published_delayed.fetch_add(1, std::memory_order_relaxed);
      } else {
        out[i].entry_id = std::string(reply_text(r.get()));
        target[i]->published.fetch_add(1, std::memory_order_relaxed);
      }
    }
    return out;
  }

  CancelResult cancel_delayed(std::string_view arm, std::string_view entry_id) {
    const auto it =
        std::find_if(arms.begin(), arms.end(), [&](const auto& a) { return a->name == arm; });
    if (it == arms.end()) {
      throw std::invalid_argument("octo::RedisStreams::cancel_delayed: '" + std::string(arm) +
                                  "' is not a stream-backed arm");
    }
    constexpr std::string_view kPrefix = "delayed-";
    const std::string_view seq =
        entry_id.starts_with(kPrefix) ? entry_id.substr(kPrefix.size()) : std::string_view();
    if (seq.empty() || seq.size() > 19 ||
        !std::all_of(seq.begin(), seq.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw std::invalid_argument("octo::RedisStreams::cancel_delayed: '" + std::string(entry_id) +
                                  "' is not a delayed task's id " +
                                  "(delayed-<seq>, as publish() returns it)");
    }
    LockGuard lock(pub_mu);
    if (!pub->ensure(false)) return {false, "redis unavailable: " + current_error()};
    Reply r = pub->run(Command() << "EVAL" << kCancelDelayed << "2" << (*it)->delayed
                                 << (*it)->stream << seq);
    if (!r) return {false, "redis connection lost: " + current_error()};
    if (is_error(r.get()))
      return {false,
              "cancelling " + std::string(entry_id) + ": " + std::string(reply_text(r.get()))};
    return {r->type == REDIS_REPLY_INTEGER && r->integer == 1, {}};
  }

  std::string current_error() const {
    LockGuard lock(err_mu);
    return last_error;
  }

  // --- fleet schedules -----------------------------------------------------------------------

  using Wall = std::chrono::system_clock;

  // The first planned firing strictly after `after`: cron times, or multiples of `every` counted
  // from the epoch (the same instants in every process).
  static Wall::time_point next_planned(const FleetSchedule& f, Wall::time_point after) {
    return f.cron ? f.cron->next_after(after) : next_period_after(after, *f.spec.every);
  }

  // Plans the entry's next firing after `now`, with a fresh jitter.
  static void plan(FleetSchedule& f, Wall::time_point now) {
    f.planned = next_planned(f, now);
    f.due = f.planned;
    if (f.spec.jitter.count() > 0 && f.planned != Wall::time_point::max()) {
      thread_local std::minstd_rand rng(std::random_device{}());
      f.due += std::chrono::milliseconds(
          std::uniform_int_distribution<std::int64_t>(0, f.spec.jitter.count() - 1)(rng));
    }
    f.st.schedule.next_run = f.planned;
  }

  void add_schedule(ScheduleSpec spec) {
    const std::string at = "octo::RedisStreams::schedule '" + spec.name + "': ";
    FleetSchedule f;
    f.cron = validate_schedule(spec, "octo::RedisStreams::schedule");
    const auto arm = ex->resolve(spec.task.type);
    if (!arm) {
      throw std::invalid_argument(at + "task type '" + spec.task.type + "' matches no route");
    }
    if (spec.overlap != Overlap::kAllow) {
      // The overlap policy is a fleet-wide unique claim: it needs the stream and the task's slot.
      if (by_arm.count(*arm) == 0) {
        throw std::invalid_argument(at + "overlap kSkip or kBufferOne needs a stream-backed arm " +
                                    "(task type '" + spec.task.type + "' routes to a local one)");
      }
      if (!spec.task.unique.empty()) {
        throw std::invalid_argument(at + "overlap kSkip or kBufferOne sets the task's unique " +
                                    "claim itself: leave Task::unique empty");
      }
    }
    f.st.schedule.name = spec.name;
    f.st.schedule.cron = spec.cron;
    f.st.schedule.every = spec.every.value_or(std::chrono::milliseconds(0));
    f.spec = std::move(spec);
    {
      LockGuard lock(sched_mu);
      if (fleet.count(f.spec.name) != 0) throw std::invalid_argument(at + "the name is taken");
      plan(f, Wall::now());
      const std::string name = f.spec.name;
      fleet.emplace(name, std::move(f));
      if (!scheduler.joinable() && !stopping.load(std::memory_order_acquire))
        scheduler = std::thread([this] { schedule_loop(); });
    }
    sched_cv.notify_all();
  }

  // One thread for all fleet schedules: waits for the earliest due firing, races the other
  // processes for its lease, and publishes the task if it won.
  void schedule_loop() {
    UniqueLock lock(sched_mu);
    while (!stopping.load(std::memory_order_acquire)) {
      FleetSchedule* first = nullptr;
      for (auto& [name, f] : fleet) {
        if (f.planned != Wall::time_point::max() && (!first || f.due < first->due)) first = &f;
      }
      const auto now = Wall::now();
      if (first == nullptr) {
        sched_cv.wait(lock.native());
        continue;
      }
      if (now < first->due) {
        // A copy: wait_until reads its deadline again after waking, and remove_schedule() may
        // have erased the entry meanwhile (ASan caught the reference to it).
        const Wall::time_point due = first->due;
        sched_cv.wait_until(lock.native(), due);
        continue;
      }
      FleetSchedule& f = *first;
      const Wall::time_point planned = f.planned;
      const auto after = next_planned(f, planned);
      // The lease outlives every process's chance to fire this planned time: one period.
      const auto ttl = std::clamp(
          std::chrono::duration_cast<std::chrono::milliseconds>(after - planned),
          std::chrono::milliseconds(1000), std::chrono::milliseconds(std::chrono::hours(24)));
      std::uint64_t missed = 0;
      for (auto t = after; t <= now && missed < 100'000; t = next_planned(f, t)) ++missed;
      f.st.schedule.missed += missed;
      f.st.schedule.last_run = now;
      const std::string name = f.spec.name;
      const Overlap overlap = f.spec.overlap;
      Task task = f.spec.task;
      task.run_at = planned;
      if (overlap != Overlap::kAllow) {
        // kSkip: one claim, held while queued or running. kBufferOne: a second claim for the
        // one that waits behind it (at most two pending, as Executor::schedule allows).
        task.unique = Unique{.key = "schedule:" + name,
                             .ttl = std::clamp(10 * ttl, std::chrono::milliseconds(60'000),
                                               std::chrono::milliseconds(std::chrono::hours(24))),
                             .scope = UniqueScope::kQueuedOrRunning};
      }
      plan(f, now);
      lock.unlock();
      const auto planned_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(planned.time_since_epoch());
      const LeaseResult won =
          lease->acquire("schedule:" + name + "@" + std::to_string(planned_ms.count()), ttl);
      PublishResult published;
      std::optional<bool> paused;
      if (won.token != 0) {
        paused = fleet_paused(name);
        if (paused == false) {
          published = publish(std::span<const Task>(&task, 1)).front();
          if (!published.duplicate_of.empty() && overlap == Overlap::kBufferOne) {
            task.unique.edit().key += ":buffered";
            published = publish(std::span<const Task>(&task, 1)).front();
          }
        }
      }
      lock.lock();
      const auto it = fleet.find(name);
      if (it == fleet.end()) continue;  // removed meanwhile
      FleetScheduleStatus& st = it->second.st;
      if (!won.error.empty() || (won.token != 0 && !paused)) {
        ++st.unavailable;
      } else if (won.token == 0) {
        ++st.elsewhere;
        st.last_holder = won.holder;
      } else if (*paused) {
        st.schedule.paused = true;
        ++st.schedule.missed;
        st.last_token = won.token;
      } else {
        st.schedule.paused = false;
        st.last_token = won.token;
        if (!published.duplicate_of.empty()) {
          ++st.schedule.skipped;
        } else {
          ++(published ? st.schedule.fired : st.schedule.refused);
        }
      }
    }
  }

  std::string paused_key(std::string_view name) const {
    return cfg.stream_prefix + "schedule:" + std::string(name) + ":paused";
  }

  // Whether a fleet schedule is paused (its key exists); nullopt when Redis did not answer.
  std::optional<bool> fleet_paused(std::string_view name) {
    LockGuard lock(pub_mu);
    if (!pub->ensure(false)) return std::nullopt;
    Reply r = pub->run(Command() << "EXISTS" << paused_key(name));
    if (!r || r->type != REDIS_REPLY_INTEGER) return std::nullopt;
    return r->integer != 0;
  }

  ScheduleChange set_paused(std::string_view name, bool pause) {
    {
      LockGuard lock(sched_mu);
      if (fleet.find(name) == fleet.end()) return {};
    }
    ScheduleChange out{.found = true};
    {
      LockGuard lock(pub_mu);
      if (!pub->ensure(false)) {
        out.error = "redis unavailable: " + current_error();
        return out;
      }
      Reply r = pause ? pub->run(Command() << "SET" << paused_key(name) << cfg.consumer)
                      : pub->run(Command() << "DEL" << paused_key(name));
      if (!r) {
        out.error = "redis connection lost: " + current_error();
      } else if (is_error(r.get())) {
        out.error = std::string(reply_text(r.get()));
      }
    }
    if (out.error.empty()) {
      LockGuard lock(sched_mu);
      if (const auto it = fleet.find(name); it != fleet.end())
        it->second.st.schedule.paused = pause;
    }
    return out;
  }

  // --- stopping ------------------------------------------------------------------------------

  void stop(std::chrono::nanoseconds deadline) {
    LockGuard guard(stop_once);
    if (stopped) return;
    stopped = true;
    {
      LockGuard lock(stop_mu);
      stopping.store(true, std::memory_order_release);
    }
    stop_cv.notify_all();
    {
      LockGuard lock(sched_mu);  // the scheduler is waiting, or will see `stopping`
    }
    sched_cv.notify_all();
    if (scheduler.joinable()) scheduler.join();
    for (auto& a : arms) {
      a->space.notify_all();
      if (a->fetcher.joinable()) a->fetcher.join();
    }
    const auto until = SteadyTime::now() + deadline;
    ex->shutdown(ShutdownMode::kDrain, deadline);
    {
      // The last acks get what is left of the deadline; unsent ones stay pending in Redis.
      LockGuard lock(ack_mu);
      ack_stop = true;
      ack_deadline = until;
    }
    ack_cv.notify_all();
    acker.join();
  }

  RedisStreamsConfig cfg;
  Forward forward;
  Health health;
  std::vector<std::unique_ptr<Arm>> arms;
  std::unordered_map<ArmId, Arm*> by_arm;

  std::atomic<bool> stopping{false};
  octo::detail::Mutex stop_mu;  // stop_cv
  std::condition_variable stop_cv;
  octo::detail::Mutex stop_once;
  bool stopped OCTO_GUARDED_BY(stop_once) = false;

  std::atomic<std::int64_t> last_ok_ns{0}, last_fail_ns{0};
  std::atomic<std::uint64_t> reconnects{0}, errors{0};
  mutable octo::detail::Mutex err_mu;
  std::string last_error OCTO_GUARDED_BY(err_mu);

  octo::detail::Mutex pub_mu;
  std::unique_ptr<Conn> pub OCTO_GUARDED_BY(pub_mu);

  octo::detail::Mutex ack_mu;
  std::condition_variable ack_cv;
  std::vector<Ack> acks OCTO_GUARDED_BY(ack_mu);
  bool ack_stop OCTO_GUARDED_BY(ack_mu) = false;
  SteadyTime::time_point ack_deadline OCTO_GUARDED_BY(ack_mu){};
  std::thread acker;

  std::unique_ptr<RedisLease> lease;
  octo::detail::Mutex sched_mu;
  std::condition_variable sched_cv;
  std::map<std::string, FleetSchedule, std::less<>> fleet OCTO_GUARDED_BY(sched_mu);
  std::thread scheduler;  // started by the first schedule(), under sched_mu

  std::optional<Executor> ex;  // last: destroyed first
};

RedisStreams::RedisStreams(ExecutorConfig executor, RedisStreamsConfig config)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(config))) {}

RedisStreams::~RedisStreams() = default;

PublishResult RedisStreams::publish(const Task& task) {
  return impl_->publish(std::span<const Task>(&task, 1)).front();
}

std::vector<PublishResult> RedisStreams::publish(std::span<const Task> tasks) {
  return impl_->publish(tasks);
}

void RedisStreams::stop(std::chrono::nanoseconds deadline) { impl_->stop(deadline); }

CancelResult RedisStreams::cancel_delayed(std::string_view arm, std::string_view entry_id) {
  return impl_->cancel_delayed(arm, entry_id);
}

void RedisStreams::schedule(ScheduleSpec spec) { impl_->add_schedule(std::move(spec)); }

ScheduleChange RedisStreams::pause_schedule(std::string_view name) {
  return impl_->set_paused(name, true);
}

ScheduleChange RedisStreams::resume_schedule(std::string_view name) {
  return impl_->set_paused(name, false);
}

bool RedisStreams::remove_schedule(std::string_view name) {
  bool removed = false;
  {
    LockGuard lock(impl_->sched_mu);
    removed = impl_->fleet.erase(std::string(name)) != 0;
  }
  impl_->sched_cv.notify_all();
  return removed;
}

std::vector<FleetScheduleStatus> RedisStreams::schedules() const {
  LockGuard lock(impl_->sched_mu);
  std::vector<FleetScheduleStatus> out;
  for (const auto& [name, f] : impl_->fleet) out.push_back(f.st);
  return out;
}

Executor& RedisStreams::executor() noexcept { return *impl_->ex; }

RedisStatus RedisStreams::status() const {
  RedisStatus s;
  s.connected = impl_->last_ok_ns.load(std::memory_order_relaxed) >
                impl_->last_fail_ns.load(std::memory_order_relaxed);
  s.reconnects = impl_->reconnects.load(std::memory_order_relaxed);
  s.errors = impl_->errors.load(std::memory_order_relaxed);
  s.last_error = impl_->current_error();
  for (const auto& a : impl_->arms) {
    StreamArmStatus st;
    st.arm = a->name;
    st.stream = a->stream;
    st.published = a->published.load(std::memory_order_relaxed);
    st.fetched = a->fetched.load(std::memory_order_relaxed);
    st.claimed = a->claimed.load(std::memory_order_relaxed);
    st.acked = a->acked.load(std::memory_order_relaxed);
    st.dead_lettered = a->dead.load(std::memory_order_relaxed);
    st.in_flight = a->in_flight.load(std::memory_order_relaxed);
    st.published_delayed = a->published_delayed.load(std::memory_order_relaxed);
    st.moved = a->moved.load(std::memory_order_relaxed);
    st.delayed = a->delayed_size.load(std::memory_order_relaxed);
    s.arms.push_back(std::move(st));
  }
  return s;
}

}  // namespace octo

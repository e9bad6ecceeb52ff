#include "halo/engine.hpp"

#include <tbb/task_arena.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <stdexcept>

#include "detail/analysis_graph.hpp"
#include "detail/field_count.hpp"
#include "detail/grouping.hpp"
#include "detail/parallel.hpp"

namespace halo {

struct Engine::Arena {
  // One slot (the calling thread) under TSan: see detail/parallel.hpp.
  explicit Arena(int concurrency)
      : arena(detail::kSerialForTsan ? 1
              : concurrency > 0      ? concurrency
                                     : tbb::task_arena::automatic) {}
  tbb::task_arena arena;
};

// Per weak point, across cycles: consecutive sightings, escalation from failed repairs, and the
// analyzers that reported it, as bits (it is forgotten only by a cycle in which they all ran).
struct Engine::Tracked {
  std::uint32_t cycles_seen = 0;
  std::uint32_t failure_escalation = 0;
  std::uint64_t last_seen = 0;
  std::uint64_t analyzers = 0;
};

struct Engine::InFlight {
  std::uint64_t fingerprint = 0;
  std::string weak_point;
  std::string task_type;
  std::string subject;
  bool agent = false;
};

struct Engine::Backoff {
  std::uint32_t failures = 0;
  std::chrono::nanoseconds until{0};
};

// What a repair's outcome does to its weak point's tracking: forgotten (healed) or one more
// failure escalation.
struct Engine::TrackUpdate {
  std::uint64_t fingerprint = 0;
  bool healed = false;
};

struct Engine::EarlyOutcome {
  octo::TaskEventKind kind = octo::TaskEventKind::kCancelled;
  std::string reason;
};

class Engine::Feedback final : public octo::Observer {
 public:
  explicit Feedback(Engine& e) : engine_(e) {}
  void on_event(const octo::TaskEvent& event) noexcept override {
    if (event.kind != octo::TaskEventKind::kSucceeded &&
        event.kind != octo::TaskEventKind::kDeadLettered &&
        event.kind != octo::TaskEventKind::kCancelled)
      return;
    // Relaxed: send() raises the count before the enqueue that hands this task to the worker,
    // so for a repair it is never zero here; a stale value only costs unrelated tasks a lock.
    if (engine_.in_flight_count_.load(std::memory_order_relaxed) == 0) return;
    try {
      engine_.on_outcome(event);
    } catch (...) {
      // Out of memory while auditing: the outcome is lost for the audit log only.
    }
  }
  void on_executor_destroyed(const octo::Executor& executor) noexcept override {
    engine_.executor_destroyed(executor);
  }

 private:
  Engine& engine_;
};

std::string_view to_string(DispatchStatus s) noexcept {
  switch (s) {
    case DispatchStatus::kSuggested:
      return "suggested";
    case DispatchStatus::kPendingApproval:
      return "pending-approval";
    case DispatchStatus::kDispatched:
      return "dispatched";
    case DispatchStatus::kSuppressed:
      return "suppressed";
    case DispatchStatus::kFailed:
      return "failed";
  }
  return "?";
}

std::string_view to_string(ApprovalOutcome o) noexcept {
  switch (o) {
    case ApprovalOutcome::kDispatched:
      return "dispatched";
    case ApprovalOutcome::kDispatchFailed:
      return "dispatch-failed";
    case ApprovalOutcome::kRejected:
      return "rejected";
    case ApprovalOutcome::kUnknownId:
      return "unknown-id";
  }
  return "?";
}

namespace {

void validate(const EngineConfig& c) {
  auto bad = [](const std::string& field, const std::string& value, const char* expected) {
    throw std::invalid_argument("halo::EngineConfig: " + field + " = " + value + ": expected " +
                                expected);
  };
  const auto& s = c.safety;
  if (!(s.repairs_per_second > 0) || !std::isfinite(s.repairs_per_second))
    bad("safety.repairs_per_second", std::to_string(s.repairs_per_second), "a positive rate");
  if (s.repair_burst == 0) bad("safety.repair_burst", "0", "at least 1");
  if (s.backoff_base.count() <= 0)
    bad("safety.backoff_base", std::to_string(s.backoff_base.count()) + " ns", "> 0");
  if (s.backoff_max < s.backoff_base)
    bad("safety.backoff_max", std::to_string(s.backoff_max.count()) + " ns", ">= backoff_base");
  if (!(s.blast_radius_percent > 0 && s.blast_radius_percent <= 100))
    bad("safety.blast_radius_percent", std::to_string(s.blast_radius_percent), "in (0, 100]");
  if (c.escalate_after == 0) bad("escalate_after", "0", "at least 1");
  if (c.history_limit == 0) bad("history_limit", "0", "at least 1");
  if (c.audit_capacity == 0) bad("audit_capacity", "0", "at least 1");
  if (c.concurrency < 0) bad("concurrency", std::to_string(c.concurrency), ">= 0");
  if (c.thresholds.check_timeout.count() <= 0)
    bad("thresholds.check_timeout", std::to_string(c.thresholds.check_timeout.count()) + " ns",
        "> 0");
}

// Weak points below which a cycle's side jobs (sizing beside tracking, tracking's shards, the
// audit append beside freeing) run one after another: on small states (1,000 subjects, ~10 weak
// points) spawning them cost the 2-thread cycle ~35 %.
constexpr std::size_t kParallelMin = 256;

Level raise(Level l, std::uint32_t levels) {
  const int v = std::min<int>(static_cast<int>(Level::kCritical),
                              static_cast<int>(l) + static_cast<int>(levels));
  return static_cast<Level>(v);
}

}  // namespace

Engine::Engine(SystemState& state, EngineConfig config)
    : state_(state),
      config_((validate(config), std::move(config))),
      arena_(std::make_unique<Arena>(config_.concurrency)),
      feedback_(std::make_unique<Feedback>(*this)),
      audit_(config_.audit_capacity),
      tokens_(config_.safety.repair_burst),
      tokens_at_(state.now()),
      rng_(std::random_device{}()) {
  if (config_.builtin_analyzers)
    for (auto& a : builtin_analyzers(config_.thresholds)) analyzers_.push_back(std::move(a));
  if (config_.builtin_strategies)
    for (auto& s : builtin_strategies()) strategies_.push_back(std::move(s));
  if (config_.executor != nullptr) attach(*config_.executor);
  link_->engine = this;
  worker_ = std::thread([this] { worker_loop(); });
}

Engine::~Engine() {
  {
    // Exclusive: a trigger's request in progress returns first; later ones do nothing.
    std::unique_lock lock(link_->mu);
    link_->engine = nullptr;
  }
  stop();
  {
    std::unique_lock lock(flight_mu_);
    flight_cv_.wait(lock, [&] { return !running_; });
  }
  detach();
}

void Engine::stop() {
  {
    std::lock_guard lock(flight_mu_);
    stopping_ = true;
    pending_ = false;
    pending_triggers_.clear();
  }
  flight_cv_.notify_all();
  std::lock_guard join(join_mu_);
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

void Engine::add_analyzer(std::unique_ptr<Analyzer> analyzer) {
  if (!analyzer) throw std::invalid_argument("halo::Engine::add_analyzer: null analyzer");
  std::lock_guard lock(plugins_mu_);
  analyzers_.push_back(std::move(analyzer));
}

void Engine::add_strategy(std::unique_ptr<Strategy> strategy) {
  if (!strategy) throw std::invalid_argument("halo::Engine::add_strategy: null strategy");
  std::lock_guard lock(plugins_mu_);
  strategies_.insert(strategies_.begin() + static_cast<std::ptrdiff_t>(user_strategies_++),
                     std::move(strategy));
}

void Engine::attach(octo::Executor& executor) {
  {
    std::shared_lock lock(exec_mu_);
    if (executor_ == &executor) return;
  }
  detach();
  // Registered before the executor is published to send(): no repair can be enqueued without
  // its outcome reaching the engine.
  executor.add_observer(*feedback_);
  std::unique_lock lock(exec_mu_);
  executor_ = &executor;
}

void Engine::detach() {
  octo::Executor* ex = nullptr;
  {
    // Exclusive: an enqueue in progress (shared) returns first; none starts after.
    std::unique_lock lock(exec_mu_);
    ex = std::exchange(executor_, nullptr);
  }
  // Outside exec_mu_: remove_observer waits for events in progress, whose handlers take only
  // repairs_mu_.
  if (ex != nullptr) ex->remove_observer(*feedback_);
  // The repairs it ran will not report back: forget them so their weak points can be repaired
  // through another executor.
  // (Reservations of a dispatch still settling are left to it.)
  std::lock_guard lock(repairs_mu_);
  for (const auto& [id, f] : in_flight_) {
    in_flight_by_wp_.erase(f.fingerprint);
    if (f.agent) --agents_in_flight_;
  }
  in_flight_count_.fetch_sub(in_flight_.size(), std::memory_order_relaxed);
  in_flight_.clear();
}

void Engine::executor_destroyed(const octo::Executor& executor) noexcept {
  std::unique_lock lock(exec_mu_);
  if (executor_ == &executor) executor_ = nullptr;
}

std::vector<AnalyzerResult> Engine::analyze(const Snapshot& snapshot, Mode mode) {
  std::vector<std::shared_ptr<Analyzer>> selected;
  {
    std::lock_guard lock(plugins_mu_);
    for (const auto& a : analyzers_)
      if (mode == Mode::kFull || a->light()) selected.push_back(a);
  }
  return detail::run_analyzers(arena_->arena, selected, snapshot);
}

std::vector<AnalyzerResult> Engine::analyze_state(Mode mode) {
  auto snapshot = state_.snapshot();
  return analyze(*snapshot, mode);
}

std::shared_ptr<const CycleResult> Engine::run_cycle(std::string trigger,
                                                     std::map<std::string, std::string> context,
                                                     Mode mode) {
  {
    std::lock_guard lock(flight_mu_);
    if (running_) {
      if (!stopping_) merge_pending({TriggerKind::kEvent, trigger, std::move(context), mode});
      return nullptr;
    }
    running_ = true;
  }
  std::shared_ptr<const CycleResult> result;
  try {
    result = execute(std::move(trigger), std::move(context), mode);
  } catch (...) {
    std::lock_guard lock(flight_mu_);
    running_ = false;
    flight_cv_.notify_all();
    throw;
  }
  std::lock_guard lock(flight_mu_);
  running_ = false;
  flight_cv_.notify_all();
  return result;
}

void Engine::request(const CycleRequest& request) {
  std::lock_guard lock(flight_mu_);
  if (!stopping_) merge_pending(request);
}

void Engine::merge_pending(const CycleRequest& request) {
  if (pending_) {
    ++coalesced_;
    if (request.mode == Mode::kFull) pending_request_.mode = Mode::kFull;
  } else {
    pending_request_ = request;
    pending_ = true;
    if (running_) ++coalesced_;
  }
  if (std::find(pending_triggers_.begin(), pending_triggers_.end(), request.trigger) ==
      pending_triggers_.end())
    pending_triggers_.push_back(request.trigger);
  flight_cv_.notify_all();
}

void Engine::worker_loop() {
  std::unique_lock lock(flight_mu_);
  for (;;) {
    flight_cv_.wait(lock, [&] { return stopping_ || (pending_ && !running_); });
    if (stopping_) return;
    CycleRequest r = std::move(pending_request_);
    std::vector<std::string> folded;
    for (auto& t : pending_triggers_)
      if (t != r.trigger) folded.push_back(std::move(t));
    pending_ = false;
    pending_triggers_.clear();
    running_ = true;
    lock.unlock();
    try {
      execute(r.trigger, r.context, r.mode, std::move(folded));
    } catch (...) {
      // A cycle fails only on resource exhaustion; the next request tries again.
    }
    lock.lock();
    running_ = false;
    flight_cv_.notify_all();
  }
}

bool Engine::wait_idle(std::chrono::nanoseconds timeout) {
  std::unique_lock lock(flight_mu_);
  auto idle = [&] { return !running_ && (!pending_ || stopping_); };
  if (timeout == std::chrono::nanoseconds::max()) {
    flight_cv_.wait(lock, idle);
    return true;
  }
  return flight_cv_.wait_for(lock, timeout, idle);
}

std::string Engine::new_uuid() {
  const std::uint64_t hi = (rng_() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const std::uint64_t lo = (rng_() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

std::shared_ptr<const CycleResult> Engine::execute(std::string trigger,
                                                   std::map<std::string, std::string> context,
                                                   Mode mode, std::vector<std::string> coalesced) {
  const auto t0 = std::chrono::steady_clock::now();
  auto cycle = std::make_shared<CycleResult>();
  std::uint64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = ++cycle_seq_;
    cycle->id = new_uuid();
  }
  cycle->started = std::chrono::system_clock::now();
  cycle->timestamp = format_iso8601(cycle->started);
  cycle->trigger = std::move(trigger);
  cycle->coalesced = std::move(coalesced);
  cycle->context = std::move(context);
  cycle->mode = mode;
  cycle->dry_run = config_.dry_run || (mode == Mode::kLight && config_.light_mode_dry_run);

  auto lap = [last = std::chrono::steady_clock::now()]() mutable {
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
    return ms;
  };
  auto& tm = cycle->timings;

  // The cycle this one pushes out of history is recycled: this cycle's weak points and tasks are
  // assigned over its ones (strings and vectors keep their buffers), its dispatch results lend
  // their storage (already paged in), and its analysis is freed next to serial work in dispatch.
  // Only as sole owner: it has left history, so nobody can take a new reference; otherwise the
  // last holder frees it.
  std::shared_ptr<CycleResult> evicted;
  {
    std::lock_guard lock(mu_);
    if (history_.size() >= config_.history_limit) {
      evicted = std::move(history_.back());
      history_.pop_back();
    }
  }
  CycleResult* old = evicted.use_count() == 1 ? evicted.get() : nullptr;
  const std::shared_ptr<const Snapshot> snapshot = state_.snapshot();
  tm.snapshot = lap();
  cycle->analysis = analyze(*snapshot, mode);
  tm.analyze = lap();
  arena_->arena.execute([&] {
    cycle->weak_points = detail::group_weak_points(
        cycle->analysis, /*sorted=*/false,
        old != nullptr ? std::move(old->weak_points) : std::vector<WeakPoint>{});
  });
  tm.group = lap();

  // Escalation bookkeeping (under mu_, in parallel over the tracking shards) runs beside the
  // sizing of the vectors that plan and dispatch fill in place. Tasks and audit entries are
  // assigned over (plan() and fill_audit_entry() set every field), so theirs keep their buffers;
  // dispatch results are small and start clean.
  const std::size_t n = cycle->weak_points.size();
  std::vector<AuditEntry> entries;
  auto sized = [n](auto& to, auto* from, bool clear) {
    if (from != nullptr) {
      if (clear) from->clear();
      to = std::move(*from);
    }
    to.resize(n);
  };
  arena_->arena.execute([&] {
    detail::parallel_invoke(
        n >= kParallelMin, [&] { track(*cycle, seq); },
        [&] {
          sized(cycle->generated_tasks, old != nullptr ? &old->generated_tasks : nullptr, false);
        },
        [&] {
          sized(cycle->dispatch_results, old != nullptr ? &old->dispatch_results : nullptr, true);
        },
        [&] { sized(entries, &audit_spare_, false); });
    detail::parallel_sort(cycle->weak_points.begin(), cycle->weak_points.end(),
                          detail::worse_first);
  });
  tm.track = lap();
  plan(*cycle);
  tm.plan = lap();
  // The old analysis is freed beside the audit append, dispatch's serial end: freeing does not
  // split well (the allocator's cross-thread frees contend), so it gets a stretch of its own.
  dispatch(*cycle, *snapshot, entries, [old] {
    if (old != nullptr) old->analysis = {};
  });
  evicted.reset();
  tm.dispatch = lap();

  auto& sum = cycle->summary;
  for (const auto& a : cycle->analysis)
    for (const auto& i : a.issues) sum.issues += i.severity >= Level::kMedium ? 1 : 0;
  sum.weak_points = cycle->weak_points.size();
  for (const auto& wp : cycle->weak_points) sum.critical += wp.severity == Level::kCritical;
  sum.tasks = cycle->generated_tasks.size();
  for (const auto& d : cycle->dispatch_results) {
    switch (d.status) {
      case DispatchStatus::kSuggested:
        ++sum.suggested;
        break;
      case DispatchStatus::kPendingApproval:
        ++sum.pending_approval;
        break;
      case DispatchStatus::kDispatched:
        ++sum.dispatched;
        break;
      case DispatchStatus::kSuppressed:
        ++sum.suppressed;
        break;
      case DispatchStatus::kFailed:
        ++sum.failed;
        break;
    }
  }
  sum.text = std::to_string(sum.issues) + " issues, " + std::to_string(sum.weak_points) +
             " weak points (" + std::to_string(sum.critical) + " critical), " +
             std::to_string(sum.tasks) + " tasks: " + std::to_string(sum.dispatched) +
             " dispatched, " + std::to_string(sum.suggested) + " suggested, " +
             std::to_string(sum.suppressed) + " suppressed, " +
             std::to_string(sum.pending_approval) + " awaiting approval, " +
             std::to_string(sum.failed) + " failed";

  cycle->duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  tm.record = lap();

  {
    std::lock_guard lock(mu_);
    history_.push_front(cycle);
    ++cycles_by_trigger_[cycle->trigger];
    ++served_by_trigger_[cycle->trigger];
    for (const auto& t : cycle->coalesced) ++served_by_trigger_[t];
    const double secs = cycle->duration_ms / 1000.0;
    std::size_t b = 0;
    while (b < std::size(kCycleBounds) && secs > kCycleBounds[b]) ++b;
    ++cycle_buckets_[b];
    cycle_seconds_sum_ += secs;
  }
  return cycle;
}

std::uint64_t Engine::analyzer_bit(std::string_view name) {
  for (const auto& [n, bit] : analyzer_bits_)
    if (n == name) return bit;
  // Past 63 names the rest share the top bit: such weak points are forgotten only when all of
  // those analyzers ran, which is conservative.
  const std::uint64_t bit = std::uint64_t{1} << std::min<std::size_t>(analyzer_bits_.size(), 63);
  analyzer_bits_.emplace_back(std::string(name), bit);
  return bit;
}

void Engine::track(CycleResult& cycle, std::uint64_t seq) {
  std::lock_guard lock(mu_);
  apply_track_updates();
  std::uint64_t ran = 0;
  for (const auto& a : cycle.analysis) ran |= analyzer_bit(a.name);
  auto& wps = cycle.weak_points;
  assert(std::is_sorted(wps.begin(), wps.end(), [](const WeakPoint& a, const WeakPoint& b) {
    return a.fingerprint < b.fingerprint;
  }));
  std::array<std::size_t, kTrackShards + 1> bounds{};
  for (std::size_t s = 1; s < kTrackShards; ++s) {
    bounds[s] = static_cast<std::size_t>(
        std::partition_point(wps.begin(), wps.end(),
                             [s](const WeakPoint& wp) { return track_shard(wp.fingerprint) < s; }) -
        wps.begin());
  }
  bounds[kTrackShards] = wps.size();
  // An issue naming an analyzer that has no bit yet (a user analyzer may name another) is seen
  // to after the parallel part, which must not grow analyzer_bits_. This cycle's weak points are
  // not forgotten below, so their entries are still there then.
  std::atomic<bool> unnamed{false};
  auto bits_of = [&](const WeakPoint& wp) {
    std::uint64_t bits = 0;
    for (const auto& i : wp.issues) {
      auto it = std::find_if(analyzer_bits_.begin(), analyzer_bits_.end(),
                             [&](const auto& nb) { return nb.first == i.analyzer; });
      if (it != analyzer_bits_.end()) {
        bits |= it->second;
      } else {
        unnamed.store(true, std::memory_order_relaxed);  // read after the parallel part joins
      }
    }
    return bits;
  };
  auto shards = [&](std::size_t sb, std::size_t se) {
    for (std::size_t s = sb; s != se; ++s) {
      auto& map = tracked_[s];
      for (std::size_t k = bounds[s]; k != bounds[s + 1]; ++k) {
        WeakPoint& wp = wps[k];
        Tracked& t = map[wp.fingerprint];
        t.cycles_seen += 1;
        t.last_seen = seq;
        t.analyzers = bits_of(wp);
        wp.cycles_seen = t.cycles_seen;
        wp.escalation = t.failure_escalation + (t.cycles_seen >= config_.escalate_after ? 1 : 0);
        wp.severity = raise(wp.base_severity, wp.escalation);
      }
      // Forget weak points this cycle could have seen but did not: they are healthy again.
      std::erase_if(map, [&](const auto& kv) {
        return kv.second.last_seen != seq && (kv.second.analyzers & ~ran) == 0;
      });
    }
  };
  if (wps.size() >= kParallelMin) {
    arena_->arena.execute([&] { detail::parallel_ranges(kTrackShards, 1, shards); });
  } else {
    shards(0, kTrackShards);
  }
  if (unnamed.load(std::memory_order_relaxed)) {
    for (const WeakPoint& wp : wps) {
      Tracked& t = tracked_[track_shard(wp.fingerprint)][wp.fingerprint];
      for (const auto& i : wp.issues) t.analyzers |= analyzer_bit(i.analyzer);
    }
  }
}

static_assert(detail::field_count<GeneratedTask>() == 5,
              "GeneratedTask gained a field: set it in Engine::plan, which writes tasks over "
              "recycled ones");
static_assert(detail::field_count<AuditEntry>() == 10,
              "AuditEntry gained a field: set it in Engine::fill_audit_entry");

void Engine::plan(CycleResult& cycle) {
  std::vector<std::shared_ptr<Strategy>> strategies;
  {
    std::lock_guard lock(plugins_mu_);
    strategies = strategies_;
  }
  // Strategies write in place, one slot per weak point; errors are rare and go aside.
  const std::size_t n = cycle.weak_points.size();
  auto& tasks = cycle.generated_tasks;
  tasks.resize(n);
  std::vector<char> has(n, 0);
  std::mutex errors_mu;
  arena_->arena.execute([&] {
    detail::parallel_ranges(n, 256, [&](std::size_t b, std::size_t e) {
      for (std::size_t k = b; k != e; ++k) {
        const WeakPoint& wp = cycle.weak_points[k];
        std::string error;
        for (const auto& s : strategies) {
          try {
            if (auto t = s->plan(wp)) {
              GeneratedTask& g = tasks[k];
              g.weak_point = wp.id;
              g.fingerprint = wp.fingerprint;
              g.subject_type = wp.subject_type;
              g.strategy.assign(s->name());
              g.task = std::move(*t);
              has[k] = 1;
              break;
            }
          } catch (const std::exception& ex) {
            error = "strategy " + std::string(s->name()) + " threw on " + wp.id + ": " + ex.what();
            break;
          } catch (...) {
            error = "strategy " + std::string(s->name()) + " threw on " + wp.id + ": unknown";
            break;
          }
        }
        if (!error.empty()) {
          std::lock_guard lock(errors_mu);
          cycle.errors.push_back(std::move(error));
        }
      }
    });
  });
  // Close the gaps left by weak points no strategy took (usually none), keeping the order.
  std::size_t out = 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (!has[k]) continue;
    if (out != k) tasks[out] = std::move(tasks[k]);
    ++out;
  }
  tasks.resize(out);
  std::sort(cycle.errors.begin(), cycle.errors.end());
}

void Engine::reserve(const GeneratedTask& gt) {
  in_flight_by_wp_[gt.fingerprint] = 0;
  if (gt.subject_type == "agent") ++agents_in_flight_;
  ++sends_open_;
  // Raised before the enqueue: the executor's hand-off to its worker orders this store before
  // the worker's load in Feedback, so the task's outcome cannot skip the engine.
  in_flight_count_.fetch_add(1, std::memory_order_relaxed);
}

void Engine::send(const GeneratedTask& gt, DispatchResult& result) {
  // Shared: the executor cannot be detached or destroyed during the enqueue, which with a sync
  // journal waits for an fsync; outcomes (repairs_mu_) are not held up by it.
  std::shared_lock lock(exec_mu_);
  if (executor_ == nullptr) {
    result.status = DispatchStatus::kFailed;
    result.reason = "no executor attached";
  } else if (auto r = executor_->enqueue(gt.task); r) {
    result.status = DispatchStatus::kDispatched;
    result.task_id = r.id();
  } else {
    result.status = DispatchStatus::kFailed;
    result.reason = std::string(octo::to_string(r.error()));
  }
}

void Engine::settle(const GeneratedTask& gt, const DispatchResult& result) {
  const bool agent = gt.subject_type == "agent";
  --sends_open_;
  if (result.status == DispatchStatus::kDispatched) {
    in_flight_[result.task_id] =
        InFlight{gt.fingerprint, gt.weak_point, gt.task.type, gt.task.payload, agent};
    in_flight_by_wp_[gt.fingerprint] = result.task_id;
    ++repairs_dispatched_;
    if (auto e = early_.find(result.task_id); e != early_.end()) {
      const EarlyOutcome o = std::move(e->second);
      early_.erase(e);
      apply_outcome(result.task_id, o.kind, o.reason);
    }
  } else {
    in_flight_by_wp_.erase(gt.fingerprint);
    if (agent) --agents_in_flight_;
    in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (sends_open_ == 0) early_.clear();
}

void Engine::fill_audit_entry(AuditEntry& e, const GeneratedTask& gt, const std::string& cycle_id,
                              const DispatchResult& d) {
  AuditKind kind = AuditKind::kSuppressed;
  switch (d.status) {
    case DispatchStatus::kSuggested:
      kind = AuditKind::kSuggested;
      break;
    case DispatchStatus::kPendingApproval:
      kind = AuditKind::kPendingApproval;
      break;
    case DispatchStatus::kDispatched:
      kind = AuditKind::kDispatched;
      break;
    case DispatchStatus::kSuppressed:
      kind = AuditKind::kSuppressed;
      break;
    case DispatchStatus::kFailed:
      kind = AuditKind::kDispatchFailed;
      break;
  }
  e.seq = 0;
  e.when = {};
  e.kind = kind;
  e.cycle_id = cycle_id;
  e.weak_point = gt.weak_point;
  e.task_type = gt.task.type;
  e.subject = gt.task.payload;
  e.task_id = d.task_id;
  e.approval_id = d.approval_id;
  e.reason = d.reason;
}

void Engine::dispatch(CycleResult& cycle, const Snapshot& snapshot,
                      std::vector<AuditEntry>& entries, const std::function<void()>& beside) {
  const auto& safety = config_.safety;
  const auto now = state_.now();
  const std::size_t agent_cap = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::floor(static_cast<double>(snapshot.agent_count) *
                                             safety.blast_radius_percent / 100.0)));
  const std::size_t n = cycle.generated_tasks.size();
  cycle.dispatch_results.resize(n);
  entries.resize(n);
  std::vector<std::size_t> sent;  // indices of the tasks that passed the rails

  std::lock_guard lock(mu_);
  const double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  tokens_ = std::min<double>(safety.repair_burst,
                             tokens_ + std::max(0.0, elapsed) * safety.repairs_per_second);
  tokens_at_ = now;

  // The decisions, in order (worst weak point first): cheap lookups only. repairs_mu_ is let go
  // every kDecisionRun tasks so that outcomes arriving meanwhile wait for a few microseconds at
  // most, not for the whole loop.
  static constexpr const char* kReasons[] = {"in-flight", "awaiting-approval", "backoff",
                                             "blast-radius", "rate-limited"};
  static constexpr std::size_t kDecisionRun = 256;
  std::uint64_t suppressed[std::size(kReasons)] = {};
  std::unique_lock repairs(repairs_mu_);
  for (std::size_t i = 0; i < n; ++i) {
    if (i % kDecisionRun == kDecisionRun - 1) {
      repairs.unlock();
      repairs.lock();
    }
    const GeneratedTask& gt = cycle.generated_tasks[i];
    DispatchResult& d = cycle.dispatch_results[i];
    d.task_index = i;
    int why = -1;
    if (cycle.dry_run) {
      d.status = DispatchStatus::kSuggested;
    } else if (in_flight_by_wp_.count(gt.fingerprint) != 0) {
      why = 0;
    } else if (approval_by_wp_.count(gt.fingerprint) != 0) {
      why = 1;
    } else if (auto b = backoff_.find(gt.fingerprint);
               b != backoff_.end() && now < b->second.until) {
      why = 2;
    } else if (gt.subject_type == "agent" && agents_in_flight_ >= agent_cap) {
      why = 3;
    } else if (safety.approval_required.count(gt.task.type) != 0) {
      d.status = DispatchStatus::kPendingApproval;
      d.approval_id = next_approval_id_++;
      approvals_[d.approval_id] = PendingApproval{d.approval_id, cycle.id, gt};
      approval_by_wp_[gt.fingerprint] = d.approval_id;
    } else if (tokens_ < 1.0) {
      why = 4;
    } else {
      tokens_ -= 1.0;
      reserve(gt);
      sent.push_back(i);
    }
    if (why >= 0) {
      d.status = DispatchStatus::kSuppressed;
      d.reason = kReasons[why];
      ++suppressed[why];
    }
  }
  repairs.unlock();
  for (std::size_t r = 0; r < std::size(kReasons); ++r)
    if (suppressed[r] != 0) suppressed_by_reason_[kReasons[r]] += suppressed[r];

  // Enqueued with no lock the outcome path takes (the token bucket keeps them few).
  for (const std::size_t i : sent) send(cycle.generated_tasks[i], cycle.dispatch_results[i]);

  // The audit entries (strings, mostly) are built in parallel, then appended in decision order.
  arena_->arena.execute([&] {
    detail::parallel_ranges(n, 512, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        fill_audit_entry(entries[i], cycle.generated_tasks[i], cycle.id, cycle.dispatch_results[i]);
    });
  });
  arena_->arena.execute([&] {
    detail::parallel_invoke(
        n >= kParallelMin, [&] { audit_spare_ = audit_.append(std::move(entries)); }, beside);
  });
  // Settled after the append, so an outcome's audit entry always follows its dispatch's.
  if (!sent.empty()) {
    std::lock_guard settle_lock(repairs_mu_);
    for (const std::size_t i : sent) settle(cycle.generated_tasks[i], cycle.dispatch_results[i]);
  }
}

void Engine::on_outcome(const octo::TaskEvent& event) {
  std::lock_guard lock(repairs_mu_);
  if (in_flight_.count(event.id) == 0) {
    // Not a repair, or one whose enqueue is still settling: keep it until the dispatch settles.
    if (sends_open_ > 0) early_[event.id] = EarlyOutcome{event.kind, std::string(event.reason)};
    return;
  }
  apply_outcome(event.id, event.kind, event.reason);
}

void Engine::apply_outcome(octo::TaskId id, octo::TaskEventKind kind, std::string_view reason) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  InFlight f = std::move(it->second);
  in_flight_.erase(it);
  in_flight_by_wp_.erase(f.fingerprint);
  if (f.agent) --agents_in_flight_;
  in_flight_count_.fetch_sub(1, std::memory_order_relaxed);

  AuditEntry e{.weak_point = f.weak_point,
               .task_type = f.task_type,
               .subject = f.subject,
               .task_id = id,
               .reason = std::string(reason)};
  switch (kind) {
    case octo::TaskEventKind::kSucceeded:
      e.kind = AuditKind::kSucceeded;
      ++repairs_succeeded_;
      backoff_.erase(f.fingerprint);
      track_updates_.push_back({f.fingerprint, true});
      break;
    case octo::TaskEventKind::kDeadLettered: {
      e.kind = AuditKind::kFailed;
      ++repairs_failed_;
      Backoff& b = backoff_[f.fingerprint];
      b.failures += 1;
      const auto& s = config_.safety;
      const int shift = static_cast<int>(std::min<std::uint32_t>(b.failures - 1, 30));
      const auto delay = std::min<std::chrono::nanoseconds>(
          s.backoff_max, s.backoff_base * (std::int64_t{1} << shift));
      b.until = state_.now() + delay;
      track_updates_.push_back({f.fingerprint, false});
      break;
    }
    default:
      e.kind = AuditKind::kCancelled;
      break;
  }
  audit_.append(std::move(e));
}

void Engine::apply_track_updates() const {
  std::vector<TrackUpdate> updates;
  {
    std::lock_guard lock(repairs_mu_);
    if (track_updates_.empty()) return;
    updates.swap(track_updates_);
  }
  for (const TrackUpdate& u : updates) {
    auto& map = tracked_[track_shard(u.fingerprint)];
    if (u.healed) {
      map.erase(u.fingerprint);
    } else if (auto t = map.find(u.fingerprint); t != map.end()) {
      t->second.failure_escalation += 1;
    }
  }
}

std::optional<PendingApproval> Engine::decide(std::uint64_t approval_id, AuditKind kind,
                                              std::string reason) {
  auto it = approvals_.find(approval_id);
  if (it == approvals_.end()) return std::nullopt;
  PendingApproval p = std::move(it->second);
  approvals_.erase(it);
  approval_by_wp_.erase(p.planned.fingerprint);
  audit_.append(AuditEntry{.kind = kind,
                           .cycle_id = p.cycle_id,
                           .weak_point = p.planned.weak_point,
                           .task_type = p.planned.task.type,
                           .subject = p.planned.task.payload,
                           .approval_id = approval_id,
                           .reason = std::move(reason)});
  return p;
}

ApprovalOutcome Engine::approve(std::uint64_t approval_id) {
  std::lock_guard lock(mu_);
  auto p = decide(approval_id, AuditKind::kApproved, {});
  if (!p) return ApprovalOutcome::kUnknownId;
  // Approval is a person's decision: it skips the rate limit, not the executor's own checks.
  {
    std::lock_guard repairs(repairs_mu_);
    reserve(p->planned);
  }
  DispatchResult d;
  send(p->planned, d);
  AuditEntry e;
  fill_audit_entry(e, p->planned, p->cycle_id, d);
  audit_.append(std::move(e));
  {
    std::lock_guard repairs(repairs_mu_);
    settle(p->planned, d);
  }
  return d.status == DispatchStatus::kDispatched ? ApprovalOutcome::kDispatched
                                                 : ApprovalOutcome::kDispatchFailed;
}

ApprovalOutcome Engine::reject(std::uint64_t approval_id, std::string reason) {
  std::lock_guard lock(mu_);
  return decide(approval_id, AuditKind::kRejected, std::move(reason)) ? ApprovalOutcome::kRejected
                                                                      : ApprovalOutcome::kUnknownId;
}

std::vector<PendingApproval> Engine::pending_approvals() const {
  std::lock_guard lock(mu_);
  std::vector<PendingApproval> out;
  for (const auto& [id, p] : approvals_) out.push_back(p);
  return out;
}

EngineStatus Engine::status() const {
  EngineStatus s;
  {
    std::lock_guard lock(flight_mu_);
    s.running = running_;
    s.pending_triggers = pending_triggers_;
    s.coalesced = coalesced_;
  }
  std::lock_guard lock(mu_);
  apply_track_updates();
  if (!history_.empty()) {
    s.last_summary = history_.front()->summary.text;
    s.last_run = history_.front()->started;
  }
  s.cycles_by_trigger = cycles_by_trigger_;
  s.served_by_trigger = served_by_trigger_;
  for (const auto& [t, n] : cycles_by_trigger_) s.cycles += n;
  s.pending_approvals = approvals_.size();
  s.open_weak_points = 0;
  for (const auto& map : tracked_) s.open_weak_points += map.size();
  {
    std::lock_guard repairs(repairs_mu_);
    s.repairs_in_flight = in_flight_by_wp_.size();
    s.repairs_dispatched = repairs_dispatched_;
    s.repairs_succeeded = repairs_succeeded_;
    s.repairs_failed = repairs_failed_;
  }
  s.suppressed_by_reason = suppressed_by_reason_;
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b <= std::size(kCycleBounds); ++b) {
    cumulative += cycle_buckets_[b];
    s.cycle_seconds.emplace_back(
        b < std::size(kCycleBounds) ? kCycleBounds[b] : std::numeric_limits<double>::infinity(),
        cumulative);
  }
  s.cycle_seconds_sum = cycle_seconds_sum_;
  return s;
}

std::vector<std::shared_ptr<const CycleResult>> Engine::history(std::size_t limit) const {
  std::lock_guard lock(mu_);
  const std::size_t n = std::min(limit, history_.size());
  return {history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(n)};
}

CycleCallback Engine::request_callback() const {
  return [link = link_](const CycleRequest& r) {
    std::shared_lock lock(link->mu);
    if (link->engine != nullptr) link->engine->request(r);
  };
}

LoopHandle register_loop(Engine& engine, TriggerConfig config) {
  return register_loop(std::move(config), engine.request_callback());
}

LoopHandle register_loop(Engine& engine, Signals& signals, TriggerConfig config) {
  return register_loop(signals, std::move(config), engine.request_callback());
}

}  // namespace halo

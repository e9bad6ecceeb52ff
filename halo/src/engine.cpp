#include "halo/engine.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "detail/analysis_graph.hpp"
#include "detail/engine_internals.hpp"
#include "detail/field_count.hpp"
#include "detail/fleet_link.hpp"
#include "detail/grouping.hpp"
#include "detail/issue_validation.hpp"
#include "detail/parallel.hpp"
#include "detail/safety_rails.hpp"
#include "detail/subject_types.hpp"
#include "octo/detail/thread_name.hpp"

namespace halo {

using octo::detail::LockGuard;
using octo::detail::SharedLock;
using octo::detail::UniqueLock;

// The engine's observer: outcomes go to the rails, the executor's end to the seam.
class Engine::Feedback final : public octo::Observer {
 public:
  explicit Feedback(Engine& e) : engine_(e) {}
  void on_event(const octo::TaskEvent& event) noexcept override {
    if (engine_.rails_->outcome(event)) engine_.wake_worker();
  }
  void on_executor_destroyed(const octo::Executor& executor) noexcept override {
    engine_.executor_destroyed(executor);
  }

 private:
  Engine& engine_;
};

namespace {

// A Mode cast from outside input is refused by name (misuse on a cold path).
void check_mode(Mode mode, const char* who) {
  if (mode != Mode::kFull && mode != Mode::kLight)
    throw std::invalid_argument(std::string("halo::Engine::") + who + ": mode " +
                                std::to_string(static_cast<int>(mode)) +
                                " is neither kFull nor kLight");
}

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
  auto positive = [&](const char* field, std::chrono::nanoseconds v, bool zero_ok) {
    if (v.count() < 0 || (!zero_ok && v.count() == 0))
      bad(std::string("safety.") + field, std::to_string(v.count()) + " ns",
          zero_ok ? ">= 0" : "> 0");
  };
  positive("verify_timeout", s.verify_timeout, true);
  positive("verify_interval", s.verify_interval, true);
  positive("repair_timeout", s.repair_timeout, false);
  positive("budget_window", s.budget_window, false);
  positive("auto_clear_after", s.auto_clear_after, true);
  positive("flap_window", s.flap_window, false);
  positive("breaker_window", s.breaker_window, false);
  positive("breaker_settle", s.breaker_settle, true);
  positive("approval_ttl", s.approval_ttl, true);
  if (s.max_repairs == 0) bad("safety.max_repairs", "0", "at least 1");
  if (!(s.max_unhealthy_percent > 0 && s.max_unhealthy_percent <= 100))
    bad("safety.max_unhealthy_percent", std::to_string(s.max_unhealthy_percent), "in (0, 100]");
  if (s.breaker_min_subjects == 0) bad("safety.breaker_min_subjects", "0", "at least 1");
  if (s.breaker_min_repairs == 0) bad("safety.breaker_min_repairs", "0", "at least 1");
  if (!(s.breaker_failure_ratio > 0 && s.breaker_failure_ratio < 1))
    bad("safety.breaker_failure_ratio", std::to_string(s.breaker_failure_ratio), "in (0, 1)");
  if (c.concurrency < 0) bad("concurrency", std::to_string(c.concurrency), ">= 0");
  if (c.thresholds.check_timeout.count() <= 0)
    bad("thresholds.check_timeout", std::to_string(c.thresholds.check_timeout.count()) + " ns",
        "> 0");
}

}  // namespace

Engine::Engine(SystemState& state, EngineConfig config)
    : state_(state),
      config_((validate(config), std::move(config))),
      arena_(std::make_unique<Arena>(config_.concurrency)),
      audit_(config_.audit_capacity),
      rails_(std::make_unique<detail::SafetyRails>(
          config_.safety,
          config_.safety.verify_timeout.count() > 0
              ? config_.safety.verify_timeout
              : std::max<std::chrono::nanoseconds>(2 * state_.endpoint_window(),
                                                   std::chrono::seconds(30)),
          SystemState::EvidenceNeeds{config_.thresholds.endpoint_min_requests,
                                     config_.thresholds.squad_min_tasks},
          state_, audit_, [this](Event e) { emit(std::move(e)); })),
      feedback_(std::make_unique<Feedback>(*this)),
      events_(std::make_unique<Events>()),
      fleet_(config_.fleet != nullptr ? std::make_unique<detail::FleetLink>(config_.fleet)
                                      : nullptr),
      rng_(std::random_device{}()) {
  // The constructor runs alone: the locks below only satisfy the thread-safety analysis.
  {
    // The triggers' cycles are counted from zero (exported before the first one runs).
    LockGuard lock(mu_);
    std::vector<std::string> names{"deploy-verify", "verify"};
    for (int k = 0; k < kTriggerKinds; ++k)
      names.emplace_back(to_string(static_cast<TriggerKind>(k)));
    for (const auto& name : names) cycles_by_trigger_[name] = served_by_trigger_[name] = 0;
  }
  LockGuard plugins(plugins_mu_);
  if (config_.builtin_analyzers)
    for (auto& a : builtin_analyzers(config_.thresholds)) analyzers_.push_back(std::move(a));
  builtin_analyzer_count_ = analyzers_.size();
  if (config_.builtin_strategies)
    for (auto& s : builtin_strategies()) strategies_.push_back(std::move(s));
  if (config_.executor != nullptr) attach(*config_.executor);
  {
    LockGuard link(link_->mu);
    link_->engine = this;
  }
  LockGuard join(join_mu_);
  worker_ = std::thread([this] {
    octo::detail::name_this_thread("halo-engine");
    worker_loop();
  });
}

Engine::~Engine() {
  {
    // Exclusive: a trigger's request in progress returns first; later ones do nothing.
    LockGuard lock(link_->mu);
    link_->engine = nullptr;
  }
  stop();
  {
    UniqueLock lock(flight_mu_);
    while (running_) flight_cv_.wait(lock.native());
  }
  detach();
  events_->stop();
}

void Engine::stop() {
  {
    LockGuard lock(flight_mu_);
    stopping_ = true;
    pending_ = false;
    pending_triggers_.clear();
  }
  flight_cv_.notify_all();
  LockGuard join(join_mu_);
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

void Engine::add_analyzer(std::unique_ptr<Analyzer> analyzer) {
  if (!analyzer) throw std::invalid_argument("halo::Engine::add_analyzer: null analyzer");
  LockGuard lock(plugins_mu_);
  analyzers_.push_back(std::move(analyzer));
}

void Engine::add_strategy(std::unique_ptr<Strategy> strategy) {
  if (!strategy) throw std::invalid_argument("halo::Engine::add_strategy: null strategy");
  LockGuard lock(plugins_mu_);
  strategies_.insert(strategies_.begin() + static_cast<std::ptrdiff_t>(user_strategies_++),
                     std::move(strategy));
}

void Engine::attach(octo::Executor& executor) {
  {
    SharedLock lock(exec_mu_);
    if (executor_ == &executor) return;
  }
  detach();
  // Registered before the executor is published to send(): no repair can be enqueued without
  // its outcome reaching the engine.
  executor.add_observer(*feedback_);
  LockGuard lock(exec_mu_);
  executor_ = &executor;
}

void Engine::detach() {
  octo::Executor* ex = nullptr;
  {
    // Exclusive: an enqueue in progress (shared) returns first; none starts after.
    LockGuard lock(exec_mu_);
    ex = std::exchange(executor_, nullptr);
  }
  // Outside exec_mu_: remove_observer waits for events in progress, whose handlers take only
  // the rails' outcome lock.
  if (ex != nullptr) ex->remove_observer(*feedback_);
  // The repairs it ran will not report back: forget them so their weak points can be repaired
  // through another executor.
  rails_->forget_in_flight();
}

void Engine::executor_destroyed(const octo::Executor& executor) noexcept {
  LockGuard lock(exec_mu_);
  if (executor_ == &executor) executor_ = nullptr;
}

std::vector<AnalyzerResult> Engine::analyze(const Snapshot& snapshot, Mode mode) {
  std::vector<std::shared_ptr<Analyzer>> selected;
  std::vector<bool> trusted;
  {
    LockGuard lock(plugins_mu_);
    for (std::size_t i = 0; i < analyzers_.size(); ++i) {
      if (mode != Mode::kFull && !analyzers_[i]->light()) continue;
      selected.push_back(analyzers_[i]);
      trusted.push_back(i < builtin_analyzer_count_);
    }
  }
  auto results = detail::run_analyzers(arena_->arena, selected, snapshot);
  detail::validate_results(results, trusted, snapshot, state_);
  return results;
}

void Engine::audit_analysis(const CycleResult& cycle) {
  // One entry for the run ("agent-health 2, endpoint-health 0; errors: none"), one per analyzer
  // with refused issues; counted per analyzer for status().
  AuditEntry run;
  run.kind = AuditKind::kAnalysis;
  run.cycle_id = cycle.id;
  std::string errors;
  std::vector<AuditEntry> batch;
  for (const auto& a : cycle.analysis) {
    if (!run.reason.empty()) run.reason += ", ";
    run.reason += a.name + ' ' + std::to_string(a.issues.size());
    if (!a.error.empty()) errors += (errors.empty() ? "" : "; ") + a.name + ": " + a.error;
    if (a.rejected == 0) continue;
    AuditEntry r;
    r.kind = AuditKind::kIssuesRejected;
    r.cycle_id = cycle.id;
    r.subject = a.name;
    r.reason = std::to_string(a.rejected) + " rejected: ";
    for (std::size_t i = 0; i < a.rejections.size(); ++i)
      r.reason += (i == 0 ? "" : "; ") + a.rejections[i];
    if (a.rejected > a.rejections.size()) r.reason += "; ...";
    batch.push_back(std::move(r));
  }
  if (run.reason.empty()) run.reason = "no analyzers";
  run.reason += "; errors: " + (errors.empty() ? std::string("none") : errors);
  batch.insert(batch.begin(), std::move(run));
  {
    LockGuard lock(mu_);
    for (const auto& a : cycle.analysis)
      if (a.rejected != 0) rejected_issues_[a.name] += a.rejected;
  }
  audit_.append(std::move(batch));
}

std::vector<AnalyzerResult> Engine::analyze_state(Mode mode) {
  auto snapshot = state_.snapshot();
  return analyze(*snapshot, mode);
}

std::shared_ptr<const CycleResult> Engine::run_cycle(std::string trigger,
                                                     std::map<std::string, std::string> context,
                                                     Mode mode) {
  check_mode(mode, "run_cycle");
  {
    LockGuard lock(flight_mu_);
    if (running_) {
      if (!stopping_) merge_pending({TriggerKind::kEvent, trigger, std::move(context), mode});
      return nullptr;
    }
    running_ = true;
    last_cycle_at_ = state_.now();
  }
  std::shared_ptr<const CycleResult> result;
  try {
    result = execute(std::move(trigger), std::move(context), mode);
  } catch (...) {
    LockGuard lock(flight_mu_);
    running_ = false;
    flight_cv_.notify_all();
    throw;
  }
  LockGuard lock(flight_mu_);
  running_ = false;
  flight_cv_.notify_all();
  return result;
}

void Engine::request(const CycleRequest& request) {
  check_mode(request.mode, "request");
  LockGuard lock(flight_mu_);
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

void Engine::wake_worker() noexcept {
  // Through the mutex: the worker reads the rails' state and waits under it, so this notify
  // comes either before its check (which then sees the new state) or while it waits. Without
  // the lock, an outcome landing between its check and its wait went unseen, and with no
  // trigger running, a verifying repair never got its verify cycle.
  { LockGuard lock(flight_mu_); }
  flight_cv_.notify_all();
}

void Engine::worker_loop() {
  const std::chrono::nanoseconds every = config_.safety.verify_interval;
  UniqueLock lock(flight_mu_);
  for (;;) {
    while (!stopping_ && !(pending_ && !running_)) {
      if (every.count() == 0 || !rails_->watching()) {
        flight_cv_.wait(lock.native());
        continue;
      }
      // A repair is in flight or verifying: a full "verify" cycle every verify_interval on the
      // state's clock (woken at least that often in real time to look). Every cycle's end and
      // every repair outcome notify (wake_worker), so a repair dispatched, or one that began
      // verifying, while this thread waited untimed is seen then.
      if (!running_ && state_.now() - last_cycle_at_ >= every) {
        merge_pending({TriggerKind::kEvent, "verify", {}, Mode::kFull});
        break;
      }
      flight_cv_.wait_for(lock.native(), every);
    }
    if (stopping_) return;
    CycleRequest r = std::move(pending_request_);
    std::vector<std::string> folded;
    for (auto& t : pending_triggers_)
      if (t != r.trigger) folded.push_back(std::move(t));
    pending_ = false;
    pending_triggers_.clear();
    running_ = true;
    last_cycle_at_ = state_.now();
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
  const bool forever = timeout == std::chrono::nanoseconds::max();
  const auto deadline = forever ? std::chrono::steady_clock::time_point::max()
                                : std::chrono::steady_clock::now() + timeout;
  UniqueLock lock(flight_mu_);
  while (running_ || (pending_ && !stopping_)) {
    if (forever) {
      flight_cv_.wait(lock.native());
    } else if (flight_cv_.wait_until(lock.native(), deadline) == std::cv_status::timeout) {
      return !running_ && (!pending_ || stopping_);
    }
  }
  return true;
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
    LockGuard lock(mu_);
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
    LockGuard lock(mu_);
    if (history_.size() >= config_.history_limit) {
      evicted = std::move(history_.back());
      history_.pop_back();
    }
  }
  CycleResult* old = evicted.use_count() == 1 ? evicted.get() : nullptr;
  const std::shared_ptr<const Snapshot> snapshot = state_.snapshot();
  tm.snapshot = lap();
  cycle->analysis = analyze(*snapshot, mode);
  audit_analysis(*cycle);
  tm.analyze = lap();
  arena_->arena.execute([&] {
    cycle->weak_points = detail::group_weak_points(
        cycle->analysis, /*sorted=*/false,
        old != nullptr ? std::move(old->weak_points) : std::vector<WeakPoint>{});
  });
  if (fleet_ != nullptr) fleet_detect(*cycle);
  tm.group = lap();

  // Escalation bookkeeping (in parallel over the tracking shards) runs beside the
  // sizing of the vectors that plan and dispatch fill in place. Tasks and audit entries are
  // assigned over (plan() and fill_audit_entry() set every field), so theirs keep their buffers;
  // dispatch results are small and start clean.
  const std::size_t n = cycle->weak_points.size();
  std::vector<AuditEntry> entries;
  detail::TypeCounts unhealthy{};
  std::vector<octo::TaskId> timed_out;
  std::vector<Event> events;
  std::vector<Event>* const noticed = events_wanted() ? &events : nullptr;
  auto sized = [n](auto& to, auto* from, bool clear) {
    if (from != nullptr) {
      if (clear) from->clear();
      to = std::move(*from);
    }
    to.resize(n);
  };
  arena_->arena.execute([&] {
    detail::parallel_invoke(
        n >= detail::kParallelMin, [&] { track(*cycle, seq, unhealthy, noticed); },
        [&] {
          sized(cycle->generated_tasks, old != nullptr ? &old->generated_tasks : nullptr, false);
        },
        [&] {
          sized(cycle->dispatch_results, old != nullptr ? &old->dispatch_results : nullptr, true);
        },
        [&] { sized(entries, &audit_spare_, false); });
    // The lives the rails remember, against this cycle's weak points (still in fingerprint
    // order): verification, flaps, lost repairs, the breaker; states and steps for planning.
    rails_->review(*cycle, *snapshot, state_.now(), unhealthy, timed_out);
    detail::parallel_sort(cycle->weak_points.begin(), cycle->weak_points.end(),
                          detail::worse_first);
  });
  cancel_repairs(timed_out);
  // Opened and critical weak points reach subscribers before this cycle's repairs do.
  if (noticed != nullptr) emit(events);
  tm.track = lap();
  plan(*cycle);
  tm.plan = lap();
  // The old analysis is freed beside the audit append, dispatch's serial end: freeing does not
  // split well (the allocator's cross-thread frees contend), so it gets a stretch of its own.
  dispatch(*cycle, entries, [old] {
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
    LockGuard lock(mu_);
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
  if (noticed != nullptr)
    emit(Event{.kind = EventKind::kCycleCompleted,
               .when = std::chrono::system_clock::now(),
               .reason = cycle->trigger + ": " + sum.text,
               .cycle_id = cycle->id});
  return cycle;
}

static_assert(detail::field_count<GeneratedTask>() == 5,
              "GeneratedTask gained a field: set it in Engine::plan, which writes tasks over "
              "recycled ones");
static_assert(detail::field_count<AuditEntry>() == 10,
              "AuditEntry gained a field: set it in Engine::fill_audit_entry");

void Engine::plan(CycleResult& cycle) {
  std::vector<std::shared_ptr<Strategy>> strategies;
  {
    LockGuard lock(plugins_mu_);
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

void Engine::send(const GeneratedTask& gt, DispatchResult& result) {
  // Shared: the executor cannot be detached or destroyed during the enqueue, which with a sync
  // journal waits for an fsync; outcomes (the rails' locks) are not held up by it.
  SharedLock lock(exec_mu_);
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

void Engine::cancel_repairs(const std::vector<octo::TaskId>& ids) {
  if (ids.empty()) return;
  SharedLock lock(exec_mu_);
  if (executor_ == nullptr) return;
  // Not started: cancelled (its event finds nothing in flight). Running: left to finish; its
  // outcome is ignored, the repair already counted failed.
  for (const octo::TaskId id : ids) executor_->cancel(id);
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

void Engine::dispatch(CycleResult& cycle, std::vector<AuditEntry>& entries,
                      const std::function<void()>& beside) {
  std::vector<std::size_t> sent;  // indices of the tasks that passed the rails
  rails_->decide(cycle, state_.now(), sent);
  // Shared repairs need the fleet's lease: the refused ones are suppressed (and settled below).
  if (fleet_ != nullptr) fleet_claim(cycle, sent);

  // Enqueued with no lock the outcome path takes (the token bucket keeps them few).
  for (const std::size_t i : sent)
    if (cycle.dispatch_results[i].status != DispatchStatus::kSuppressed)
      send(cycle.generated_tasks[i], cycle.dispatch_results[i]);

  // The audit entries (strings, mostly) are built in parallel, then appended in decision order.
  const std::size_t n = cycle.generated_tasks.size();
  entries.resize(n);
  arena_->arena.execute([&] {
    detail::parallel_ranges(n, 512, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        fill_audit_entry(entries[i], cycle.generated_tasks[i], cycle.id, cycle.dispatch_results[i]);
    });
  });
  arena_->arena.execute([&] {
    detail::parallel_invoke(
        n >= detail::kParallelMin, [&] { audit_spare_ = audit_.append(std::move(entries)); },
        beside);
  });
  // Settled after the append, so an outcome's audit entry always follows its dispatch's.
  rails_->settle(cycle, sent);
}

CycleCallback Engine::request_callback() const {
  return [link = link_](const CycleRequest& r) {
    SharedLock lock(link->mu);
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

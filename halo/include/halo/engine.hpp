// halo/engine.hpp — the HALO engine: analyze, group into weak points, plan repairs, dispatch
// them to Octopus safely, learn from their outcomes.
//
// A cycle takes a snapshot of the SystemState, runs the selected analyzers as a parallel
// tbb::flow::graph, groups their issues into weak points (escalating the ones that persist),
// reviews the subjects it has repaired (verification, flaps, lost repairs, the breaker: see
// lifecycle.hpp), asks the strategies for one task per weak point and passes each task through
// the safety rails before it reaches the executor:
//   dry run          light cycles (by default) and dry_run mark tasks "suggested" only;
//   silenced         a silence (silence()) matches: reported, never repaired;
//   inhibited        a subject it depends on (add_dependency()) is unhealthy or under repair;
//   in flight        a weak point with a repair running (or awaiting approval) is not repaired
//                    again;
//   verifying        a repair reported success: nothing more until a cycle sees fresh evidence;
//   escalated        over max_repairs within budget_window, or flapping too often: until clear();
//   backoff, flapping  after a failed repair (or a flap) its subject waits, doubling each time;
//   breaker          too much of a subject type unhealthy, or most repairs failing: only suggest;
//   blast radius     at most blast_radius_percent of each subject type under repair at once;
//   approval         configured task types wait for approve(id) / reject(id);
//   rate limit       a token bucket (repairs_per_second, repair_burst) on dispatches.
// Every decision and state change lands in the audit log. Repair outcomes come back through the
// observer that attach() registers with the executor: success moves the weak point to
// verifying (healed once a full cycle finds the subject healthy on evidence after the repair),
// failure to the next ladder step with a backoff, one escalation level, and past the budget to
// escalated.
//
// Cycles are single-flight: a request() or run_cycle() that arrives while a cycle runs is
// coalesced, with all others arriving meanwhile, into exactly one follow-up cycle.
//
//   halo::SystemState state;
//   octo::Executor executor(std::move(executor_config));   // handlers for the repair arms
//   halo::Engine engine(state, {.safety = {.approval_required = {"env.sync"}}});
//   engine.attach(executor);                         // the one wiring call (outcomes included)
//   auto loop = halo::register_loop(engine);          // the five triggers start cycles
//   auto result = engine.run_cycle("manual");         // or run one by hand
//
// Lifetime: engine and executor may be destroyed in either order (one after the other, not
// both at once from two threads), with cycles running and repairs in flight: the engine's
// destructor detaches it (waits for the executor's calls into it to return); an executor
// destroyed first tells the engine, which then dispatches nothing more (repairs fail "no
// executor attached"). Declaring the executor first, as above, is the
// cheapest order: the engine goes first and the executor's shutdown needs no engine.
// Thread safety: every member may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "halo/analyzer.hpp"
#include "halo/audit.hpp"
#include "halo/event.hpp"
#include "halo/fleet.hpp"
#include "halo/lifecycle.hpp"
#include "halo/maintenance_window.hpp"
#include "halo/silence.hpp"
#include "halo/state.hpp"
#include "halo/strategy.hpp"
#include "halo/triggers.hpp"
#include "halo/weak_point.hpp"
#include "octo/detail/annotated_mutex.hpp"
#include "octo/executor.hpp"
#include "octo/observer.hpp"

namespace halo {

struct SafetyConfig {
  // Token bucket on dispatched repairs.
  double repairs_per_second = 5.0;
  std::uint32_t repair_burst = 20;
  // Per-subject wait after a failed repair: min(backoff_max, backoff_base * 2^(failures-1)).
  std::chrono::nanoseconds backoff_base = std::chrono::seconds(30);
  std::chrono::nanoseconds backoff_max = std::chrono::minutes(10);
  // Agents under repair at once, as a share of the snapshot's agents (always at least one).
  double blast_radius_percent = 10.0;
  // Task types that wait for approve()/reject().
  std::set<std::string, std::less<>> approval_required{};
  // A pending approval nobody decided within this (state clock) is rejected as expired at the
  // next cycle (audited); the weak point, if still there, asks again. 0: never expires.
  std::chrono::nanoseconds approval_ttl = std::chrono::hours(1);
  // The UTC time maintenance windows (maintenance_window.hpp) are planned on; empty = the system
  // clock. Tests give a manual one.
  std::function<std::chrono::system_clock::time_point()> wall_clock{};

  // Verification. A repair that reports success leaves its weak point `verifying`; a full cycle
  // heals it once the subject is healthy on evidence gathered after the repair finished
  // (SystemState::evidence_at). Still unhealthy at verify_timeout = a failed repair.
  // 0 = max(2 x the state's endpoint window, 30 s).
  std::chrono::nanoseconds verify_timeout{0};
  // While a repair is in flight or verifying, the engine's worker runs a full "verify" cycle
  // this often (on the state's clock); 0 = only the triggers' cycles verify.
  std::chrono::nanoseconds verify_interval = std::chrono::seconds(2);
  // A repair without an outcome this long after its dispatch counts as failed and is cancelled
  // (if it has not started): a lost outcome or a hung handler cannot hold a subject.
  std::chrono::nanoseconds repair_timeout = std::chrono::minutes(5);
  // Repair budget: at most max_repairs dispatches per subject (ladder steps included) within
  // budget_window; beyond it the weak point is escalated until Engine::clear() or until it has
  // been healthy for auto_clear_after (0 = only clear()).
  std::uint32_t max_repairs = 3;
  std::chrono::nanoseconds budget_window = std::chrono::hours(1);
  std::chrono::nanoseconds auto_clear_after = std::chrono::hours(1);
  // Flapping: broken again within flap_window of healing. Each flap doubles the wait before the
  // next repair (backoff_base * 2^(flaps-1), at most backoff_max); more than flap_threshold
  // flaps within the window escalate.
  std::chrono::nanoseconds flap_window = std::chrono::minutes(10);
  std::uint32_t flap_threshold = 3;
  // Systemic breaker: automatic repair pauses (cycles only suggest) while more than
  // max_unhealthy_percent of a subject type is unhealthy (types with at least
  // breaker_min_subjects subjects), or while more than breaker_failure_ratio of the repairs
  // judged within breaker_window failed (once at least breaker_min_repairs were). It resumes
  // after breaker_settle below both levels.
  double max_unhealthy_percent = 50.0;
  std::size_t breaker_min_subjects = 5;
  std::chrono::nanoseconds breaker_window = std::chrono::minutes(10);
  std::uint32_t breaker_min_repairs = 6;
  double breaker_failure_ratio = 0.5;
  std::chrono::nanoseconds breaker_settle = std::chrono::seconds(30);
};

struct EngineConfig {
  Thresholds thresholds;
  bool builtin_analyzers = true;
  bool builtin_strategies = true;
  SafetyConfig safety;
  // Every task is only suggested.
  bool dry_run = false;
  // Light cycles only suggest (the original's behaviour).
  bool light_mode_dry_run = true;
  // A weak point seen in this many consecutive cycles is escalated one level.
  std::uint32_t escalate_after = 3;
  std::size_t history_limit = 20;
  std::size_t audit_capacity = 10'000;
  // Threads of the arena analyzers run in; 0 = TBB's default concurrency.
  int concurrency = 0;
  // Where repairs go; may also be set later with attach(). Not owned.
  octo::Executor* executor = nullptr;
  // The other instances of this service (halo/fleet.hpp): quorum on shared subjects, one repair
  // of each across the fleet, fleet-wide rails and silences. Null: every subject is local.
  std::shared_ptr<Fleet> fleet{};
  // How many reporters must see a shared subject unhealthy; 0 = a majority of those reporting.
  // A lone reporter decides alone either way.
  std::uint32_t fleet_quorum = 0;
};

enum class DispatchStatus : std::uint8_t {
  kSuggested,
  kPendingApproval,
  kDispatched,
  kSuppressed,
  kFailed,  // the executor refused the task (reason says why) or none is attached
};
std::string_view to_string(DispatchStatus s) noexcept;

// Engine::plan writes tasks over the recycled ones of an old cycle, every field; engine.cpp
// checks the field count at compile time.
struct GeneratedTask {
  std::string weak_point{};  // WeakPoint::id
  std::uint64_t fingerprint = 0;
  std::string subject_type{};
  std::string strategy{};
  octo::Task task{};
};

struct DispatchResult {
  std::size_t task_index = 0;  // into CycleResult::generated_tasks
  DispatchStatus status = DispatchStatus::kSuggested;
  octo::TaskId task_id = 0;       // kDispatched
  std::uint64_t approval_id = 0;  // kPendingApproval
  // kSuppressed: "in-flight", "awaiting-approval", "verifying", "escalated", "backoff",
  // "flapping", "silenced by <silence id>", "inhibited by <parent weak point id>",
  // "blast-radius", "rate-limited"; shared subjects also "repairing elsewhere (<holder>)",
  // "fleet-budget (<n> repairs in the window)", "fleet-rate-limited", "fleet-breaker-open
  // (<failed> of <judged> failed)", "repaired elsewhere since this instance last looked
  // (<instance>)", "fleet-unavailable: <why>"; kSuggested while the breaker is open:
  // "breaker-open";
  // kFailed: the error.
  std::string reason{};
};

struct CycleSummary {
  std::size_t issues = 0;  // of kMedium or worse
  std::size_t weak_points = 0;
  std::size_t critical = 0;
  std::size_t tasks = 0;
  std::size_t dispatched = 0;
  std::size_t suggested = 0;
  std::size_t suppressed = 0;
  std::size_t pending_approval = 0;
  std::size_t failed = 0;
  std::string text{};
};

// Where a cycle's time went, in milliseconds. The cycle that falls out of history is recycled:
// its dispatch results are freed during `track`, its analysis during `dispatch` (next to the
// audit append); its weak points, tasks and the audit entries the last cycle pushed out are
// assigned over (`group`, `plan`, `dispatch`). `record` is the bookkeeping after dispatch.
struct CycleTimings {
  double snapshot = 0, analyze = 0, group = 0, track = 0, plan = 0, dispatch = 0, record = 0;
};

struct CycleResult {
  std::string id{};         // UUID v4
  std::string timestamp{};  // ISO-8601 UTC, when the cycle started
  std::chrono::system_clock::time_point started{};
  std::string trigger{};
  // Other triggers that arrived while this one was queued or the previous cycle ran, and were
  // folded into this cycle.
  std::vector<std::string> coalesced{};
  std::map<std::string, std::string> context{};
  Mode mode = Mode::kFull;
  bool dry_run = false;
  std::vector<AnalyzerResult> analysis{};
  std::vector<WeakPoint> weak_points{};  // worst first
  std::vector<GeneratedTask> generated_tasks{};
  std::vector<DispatchResult> dispatch_results{};
  std::vector<std::string> errors{};  // strategies that threw
  // Why the systemic breaker held this cycle's repairs back; empty when it was closed.
  std::string breaker{};
  CycleSummary summary{};
  double duration_ms = 0.0;
  CycleTimings timings{};
};

struct PendingApproval {
  std::uint64_t id = 0;
  std::string cycle_id{};
  GeneratedTask planned{};
  // State clock time after which it expires (SafetyConfig::approval_ttl); max() when never.
  std::chrono::nanoseconds expires_at = std::chrono::nanoseconds::max();
};

enum class ApprovalOutcome : std::uint8_t { kDispatched, kDispatchFailed, kRejected, kUnknownId };
std::string_view to_string(ApprovalOutcome o) noexcept;

// A shared subject as the fleet saw it in the last cycle.
struct FleetSubjectStatus {
  std::string subject{};  // "<type>:<id>"
  std::uint32_t reporters = 0;
  std::uint32_t unhealthy = 0;
  std::uint32_t quorum = 0;    // needed for a shared weak point
  bool local_verdict = false;  // this instance saw it unhealthy
  std::string holder{};        // the repair lease's holder, if any
};

struct FleetStatus {
  bool enabled = false;    // EngineConfig::fleet set
  bool available = false;  // the last call reached it
  std::string instance{};
  std::string reason{};  // why not available
  std::vector<std::string> peers{};
  std::size_t shared_subjects = 0;  // declared with share()
  // Shared subjects some instance saw unhealthy, or with a lease: the fleet's weak points.
  std::vector<FleetSubjectStatus> subjects{};
  std::size_t leases_held = 0;
  std::uint64_t leases_granted = 0;
  std::uint64_t leases_lost = 0;  // expired or taken over before the outcome
  std::uint64_t outcomes_written = 0;
  std::uint64_t outcomes_rejected = 0;    // stale fencing token
  std::uint64_t repairing_elsewhere = 0;  // repairs not dispatched: another instance holds it
  std::uint64_t path_weak_points = 0;     // shared verdicts the quorum did not confirm
  std::uint64_t unavailable_cycles = 0;
  std::uint64_t round_trips = 0;
};

struct EngineStatus {
  std::optional<std::chrono::system_clock::time_point> last_run{};
  std::string last_summary{};
  bool running = false;
  // Triggers coalesced into the follow-up cycle that has not started yet.
  std::vector<std::string> pending_triggers{};
  // By the cycle's own trigger; the triggers' names (time, request-volume, error-rate, deploy,
  // deploy-verify, event, verify) are present from the start, at zero.
  std::map<std::string, std::uint64_t> cycles_by_trigger{};
  // Cycles that served each trigger, whether as their own or coalesced into them.
  std::map<std::string, std::uint64_t> served_by_trigger{};
  std::uint64_t cycles = 0;
  std::uint64_t coalesced = 0;  // requests folded into another cycle
  std::size_t pending_approvals = 0;
  std::size_t repairs_in_flight = 0;
  std::size_t open_weak_points = 0;
  std::uint64_t repairs_dispatched = 0;
  std::uint64_t repairs_succeeded = 0;
  std::uint64_t repairs_failed = 0;
  std::map<std::string, std::uint64_t> suppressed_by_reason{};  // every rail, from zero
  // Weak points per state and per flag (see lifecycle.hpp): the last cycle's, and the
  // remembered subjects it did not see (verifying, escalated, healed).
  std::map<std::string, std::size_t> weak_points_by_state{};
  std::map<std::string, std::size_t> weak_points_by_flag{};
  // Every subject the safety rails remember (repaired within budget_window, escalated, flapping).
  std::vector<WeakPointLife> lifecycle{};
  bool breaker_open = false;
  std::string breaker_reason{};
  std::size_t silences = 0;  // active or scheduled
  std::size_t maintenance_windows = 0;
  std::uint64_t escalations = 0;
  std::uint64_t heals = 0;  // verified
  // Issues refused per analyzer since start (halo/issue.hpp, AnalyzerResult::rejected).
  std::map<std::string, std::uint64_t> rejected_issues{};
  std::uint64_t events_delivered = 0;
  std::uint64_t events_dropped = 0;  // the queue was full
  std::uint64_t events_failed = 0;   // a handler threw
  // Cycle wall time: cumulative counts per upper bound in seconds (the last bound is +inf), as
  // a Prometheus histogram wants them.
  std::vector<std::pair<double, std::uint64_t>> cycle_seconds{};
  double cycle_seconds_sum = 0.0;
  FleetStatus fleet{};
};

namespace detail {
class SafetyRails;
struct FleetLink;
using TypeCounts = std::array<std::size_t, 9>;  // see detail/subject_types.hpp
}  // namespace detail

class Engine {
 public:
  // Throws std::invalid_argument on a bad configuration (names the field and value).
  explicit Engine(SystemState& state, EngineConfig config = {});
  // Stops the cycle worker; waits for a running cycle; delivers the events still queued to
  // the subscribers, then stops the event thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // User analyzers run with the built-ins; user strategies are asked before the built-ins.
  void add_analyzer(std::unique_ptr<Analyzer> analyzer);
  void add_strategy(std::unique_ptr<Strategy> strategy);
  // Sends repairs to `executor` and registers the engine's observer with it, so that repair
  // outcomes flow back (the observer costs the executor one relaxed load per event while no
  // repair is in flight, a short mutex per terminal event otherwise; it never waits for a
  // cycle). Replaces an executor attached before (detaching from it). Not owned: `executor`
  // may be destroyed before the engine.
  void attach(octo::Executor& executor);
  // Stops sending repairs and unregisters the observer; waits for calls in progress (an
  // enqueue, an event) to return. Repairs still in flight are forgotten, not cancelled: their
  // weak points are open again.
  // Idempotent.
  void detach();

  // Runs the analyzers only (no weak points, no tasks, nothing recorded).
  std::vector<AnalyzerResult> analyze_state(Mode mode = Mode::kFull);
  // Runs one cycle on the calling thread and returns it; returns nullptr when a cycle was
  // already running, in which case this request joins the one follow-up cycle (none after
  // stop()). Both throw std::invalid_argument for a Mode that is not kFull or kLight.
  std::shared_ptr<const CycleResult> run_cycle(std::string trigger = "manual",
                                               std::map<std::string, std::string> context = {},
                                               Mode mode = Mode::kFull);
  // Asks the engine's worker thread for a cycle (what the triggers call). Never blocks on a
  // cycle: requests arriving while one is queued or running are coalesced.
  void request(const CycleRequest& request);
  // A callback that calls request() while the engine lives and does nothing once it has been
  // destroyed (the engine's destructor waits for a call in progress), so triggers holding it may
  // outlive the engine. register_loop(engine) uses it.
  CycleCallback request_callback() const;
  // Blocks until no cycle is running or queued, or the timeout passes; true when idle.
  bool wait_idle(std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max());

  // Ends an escalation (or a flapping history): the weak point is open again with a fresh
  // repair budget, audited. False when it is neither escalated nor flapping.
  bool clear(std::string_view weak_point_id);
  // Marks a weak point escalated as a previous run of the service left it (what a HistoryStore
  // restores at start): no automatic repair until clear() or auto_clear_after, audited and
  // announced as an escalation. False when `weak_point_id` is not "wp-" + 16 hex digits or the
  // engine already tracks it.
  bool restore_escalation(std::string_view weak_point_id, std::string_view subject_type,
                          std::string_view subject_id, std::string_view reason);

  // Declares a subject shared with the other instances of the service (halo/fleet.hpp): its
  // weak points need the fleet's quorum and its repairs the fleet's lease. Throws
  // std::invalid_argument for an empty type or id, or when EngineConfig::fleet is null.
  void share(const SubjectRef& subject);
  bool unshare(const SubjectRef& subject);

  // Silences (see silence.hpp). Throws std::invalid_argument when until <= from, the reason is
  // empty, or 10,000 silences are active or scheduled already. Returns the silence's id. A
  // silence with `fleet` set goes to the fleet first (throws std::invalid_argument with the
  // fleet's error when that fails, or without a fleet) and holds on every instance from their
  // next cycle; unsilence() ends it fleet-wide.
  std::uint64_t silence(Silence silence);
  bool unsilence(std::uint64_t silence_id);
  // Active and scheduled ones (expired silences end by themselves).
  std::vector<Silence> silences() const;

  // Recurring silences (see maintenance_window.hpp). Throws std::invalid_argument naming the
  // window and the field; adding and removing are audited, and removing a window ends its
  // silence if it is still on. At most 1,000 windows.
  void add_maintenance_window(MaintenanceWindow window);
  bool remove_maintenance_window(std::string_view name);
  std::vector<MaintenanceWindowStatus> maintenance_windows() const;

  // `child` depends on `parent` (an endpoint on the agent serving it): while the parent is
  // unhealthy or under repair, the child's repairs are inhibited. Throws std::invalid_argument
  // for an empty type or id, or a subject depending on itself.
  void add_dependency(const SubjectRef& child, const SubjectRef& parent);
  bool remove_dependency(const SubjectRef& child, const SubjectRef& parent);

  // Events (see event.hpp); returns the subscription's id.
  std::uint64_t subscribe(EventHandler handler);
  bool unsubscribe(std::uint64_t subscription_id);

  ApprovalOutcome approve(std::uint64_t approval_id);
  ApprovalOutcome reject(std::uint64_t approval_id, std::string reason = {});
  std::vector<PendingApproval> pending_approvals() const;

  EngineStatus status() const;
  // Newest first. While a cycle runs, the oldest cycle has already left (limit - 1 entries); a
  // cycle someone still holds stays intact.
  std::vector<std::shared_ptr<const CycleResult>> history(std::size_t limit = 20) const;
  const AuditLog& audit() const noexcept { return audit_; }
  SystemState& state() const noexcept { return state_; }

  // Stops the worker: request() is ignored from here on; run_cycle() still works.
  void stop();

 private:
  class Feedback;
  struct Arena;
  struct Tracked;
  struct Events;

  std::shared_ptr<const CycleResult> execute(std::string trigger,
                                             std::map<std::string, std::string> context, Mode mode,
                                             std::vector<std::string> coalesced = {})
      OCTO_EXCLUDES(mu_);
  // Runs the analyzers the mode selects and validates their results (detail/issue_validation).
  std::vector<AnalyzerResult> analyze(const Snapshot& snapshot, Mode mode)
      OCTO_EXCLUDES(plugins_mu_);
  // The cycle's analysis-run audit entry and its analyzers' rejections.
  void audit_analysis(const CycleResult& cycle) OCTO_EXCLUDES(mu_);
  // Also counts the cycle's weak points per subject type into `unhealthy`.
  // With `events`, also the weak points opened or raised to critical (at most kEventQueue).
  void track(CycleResult& cycle, std::uint64_t seq, detail::TypeCounts& unhealthy,
             std::vector<Event>* events) OCTO_EXCLUDES(mu_);
  // Queues an event for the subscribers (nothing when there are none). Never blocks on them.
  void emit(Event event);
  // Queues a batch under one lock (moved from; cleared); what does not fit is counted dropped.
  void emit(std::vector<Event>& batch);
  // Whether there are subscribers: a cycle builds its events only then.
  bool events_wanted() const noexcept;
  // Cancels the repairs the rails timed out.
  void cancel_repairs(const std::vector<octo::TaskId>& ids) OCTO_EXCLUDES(exec_mu_);
  void plan(CycleResult& cycle) OCTO_EXCLUDES(plugins_mu_);
  // The rails decide, the repairs that passed are sent, the audit entries appended, then the
  // sent ones settled. `beside` runs next to the audit append (work for the other thread).
  void dispatch(CycleResult& cycle, std::vector<AuditEntry>& entries,
                const std::function<void()>& beside);
  // The fleet's part of a cycle (engine_fleet.cpp). After grouping: publishes the verdicts on
  // shared subjects, renews the held leases, mirrors the fleet's silences, and turns shared weak
  // points the quorum does not confirm into local path ones (re-sorted by fingerprint).
  void fleet_detect(CycleResult& cycle);
  // After the rails' decisions: writes the outcomes of held leases, claims the leases of the
  // shared repairs in `sent`, and marks the refused ones suppressed (their tokens refunded).
  void fleet_claim(CycleResult& cycle, const std::vector<std::size_t>& sent);
  // Enqueues a repair the rails reserved, under no lock the outcome path takes, into `result`.
  void send(const GeneratedTask& gt, DispatchResult& result) OCTO_EXCLUDES(exec_mu_);
  // Assigns every field of `e` (a reused entry keeps its strings' buffers).
  static void fill_audit_entry(AuditEntry& e, const GeneratedTask& gt, const std::string& cycle_id,
                               const DispatchResult& d);
  // Folds the tracking changes the rails' outcomes made into tracked_.
  void apply_track_updates() const OCTO_REQUIRES(mu_);
  // The executor went away (its destructor, through the observer).
  void executor_destroyed(const octo::Executor& executor) noexcept OCTO_EXCLUDES(exec_mu_);
  // This analyzer's bit in Tracked::analyzers.
  std::uint64_t analyzer_bit(std::string_view name) OCTO_REQUIRES(mu_);
  void worker_loop() OCTO_EXCLUDES(flight_mu_);
  // A repair's outcome changed the rails' state: the worker looks again.
  void wake_worker() noexcept OCTO_EXCLUDES(flight_mu_);
  // Folds `request` into the one pending follow-up cycle, creating it if none.
  void merge_pending(const CycleRequest& request) OCTO_REQUIRES(flight_mu_);
  std::string new_uuid() OCTO_REQUIRES(mu_);

  // What request_callback() holds: the engine while it lives (null from its destructor on).
  struct Link {
    octo::detail::SharedMutex mu;
    Engine* engine OCTO_GUARDED_BY(mu) = nullptr;
  };
  const std::shared_ptr<Link> link_ = std::make_shared<Link>();

  SystemState& state_;
  const EngineConfig config_;
  std::unique_ptr<Arena> arena_;
  AuditLog audit_;
  // The repairs' safety rails and what is in flight: the outcome path's state, with its own
  // locks (see detail/safety_rails.hpp).
  std::unique_ptr<detail::SafetyRails> rails_;
  std::unique_ptr<Feedback> feedback_;
  std::unique_ptr<Events> events_;
  // Null without EngineConfig::fleet.
  std::unique_ptr<detail::FleetLink> fleet_;
  // The audit entries the last cycle pushed out: the next cycle writes its own batch over them
  // (their strings keep their buffers). Touched by the cycle in flight only.
  std::vector<AuditEntry> audit_spare_;

  mutable octo::detail::Mutex plugins_mu_;
  std::vector<std::shared_ptr<Analyzer>> analyzers_ OCTO_GUARDED_BY(plugins_mu_);
  // The first this many analyzers_ are the built-in ones (trusted about their subjects).
  std::size_t builtin_analyzer_count_ OCTO_GUARDED_BY(plugins_mu_) = 0;
  // User strategies first, then built-ins.
  std::vector<std::shared_ptr<Strategy>> strategies_ OCTO_GUARDED_BY(plugins_mu_);
  std::size_t user_strategies_ OCTO_GUARDED_BY(plugins_mu_) = 0;

  // Single flight.
  mutable octo::detail::Mutex flight_mu_;
  std::condition_variable flight_cv_;
  bool running_ OCTO_GUARDED_BY(flight_mu_) = false;
  bool pending_ OCTO_GUARDED_BY(flight_mu_) = false;
  bool stopping_ OCTO_GUARDED_BY(flight_mu_) = false;
  CycleRequest pending_request_ OCTO_GUARDED_BY(flight_mu_);
  std::vector<std::string> pending_triggers_ OCTO_GUARDED_BY(flight_mu_);
  std::uint64_t coalesced_ OCTO_GUARDED_BY(flight_mu_) = 0;
  // State-clock time the last cycle started: the worker's verify cycles keep verify_interval.
  std::chrono::nanoseconds last_cycle_at_ OCTO_GUARDED_BY(flight_mu_){0};
  octo::detail::Mutex join_mu_;
  std::thread worker_ OCTO_GUARDED_BY(join_mu_);

  // The executor seam: shared across each enqueue, exclusive in attach(), detach() and when the
  // executor is destroyed. Never taken with the rails' locks held.
  mutable octo::detail::SharedMutex exec_mu_;
  octo::Executor* executor_ OCTO_GUARDED_BY(exec_mu_) = nullptr;

  // Tracking, history and the cycle counters. Neither the outcome path nor an enqueue takes it.
  mutable octo::detail::Mutex mu_;
  // Weak points being tracked, in shards by the fingerprint's top bits: track() updates the
  // shards in parallel (a cycle's weak points come in fingerprint order, so each shard's are
  // contiguous). Mutable: status() folds in the outcomes' updates first.
  static constexpr std::size_t kTrackShards = 16;
  static std::size_t track_shard(std::uint64_t fingerprint) noexcept { return fingerprint >> 60; }
  mutable std::array<std::unordered_map<std::uint64_t, Tracked>, kTrackShards> tracked_
      OCTO_GUARDED_BY(mu_);
  // Read without allocating by track()'s parallel part; grown only by analyzer_bit().
  std::vector<std::pair<std::string, std::uint64_t>> analyzer_bits_ OCTO_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<CycleResult>> history_ OCTO_GUARDED_BY(mu_);  // handed out as const
  std::uint64_t cycle_seq_ OCTO_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::uint64_t> cycles_by_trigger_ OCTO_GUARDED_BY(mu_);
  std::map<std::string, std::uint64_t> rejected_issues_ OCTO_GUARDED_BY(mu_);
  std::map<std::string, std::uint64_t> served_by_trigger_ OCTO_GUARDED_BY(mu_);
  static constexpr double kCycleBounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25,  0.5,   1.0,  2.5,   5.0};
  std::uint64_t cycle_buckets_[std::size(kCycleBounds) + 1] OCTO_GUARDED_BY(mu_) = {};
  double cycle_seconds_sum_ OCTO_GUARDED_BY(mu_) = 0.0;
  std::mt19937_64 rng_ OCTO_GUARDED_BY(mu_);
};

// Registers the five triggers with `engine.request` as their callback.
LoopHandle register_loop(Engine& engine, TriggerConfig config = {});
LoopHandle register_loop(Engine& engine, Signals& signals, TriggerConfig config = {});

}  // namespace halo

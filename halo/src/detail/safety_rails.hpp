// The safety rails between a cycle's planned repairs and the executor, and each repaired
// subject's life cycle (halo/lifecycle.hpp). decide() gives each planned repair its verdict:
// dry run or breaker open (suggested), silenced, inhibited by a parent, in flight, awaiting
// approval, verifying, escalated, backing off or flapping, over its type's blast radius, over
// the repair rate (suppressed), approval required (pending) or passed. The repairs that pass
// are reserved in flight; the engine enqueues them and then settle()s them. Outcomes come from
// the executor through outcome(); a repair that reports success is verified by review(), which
// each cycle runs over the subjects the rails remember: healed on fresh evidence, failed when
// still unhealthy (the next ladder step, backoff, or escalation once the budget is spent),
// flapping when broken again soon after healing; it also times out lost repairs and opens or
// closes the systemic breaker.
//
//   detail::SafetyRails rails(config.safety, verify_timeout, state, audit, emit);
//   rails.review(cycle, snapshot, now, unhealthy, to_cancel);  // weak points by fingerprint
//   std::vector<std::size_t> sent;
//   rails.decide(cycle, now, sent);                // verdicts; `sent` reserved in flight
//   for (auto i : sent) enqueue(cycle.generated_tasks[i], cycle.dispatch_results[i]);
//   rails.settle(cycle, sent);                     // after their audit entries
//
// Thread safety: every member may be called from any thread; review() and decide() by one
// cycle at a time. Two locks: decisions_mu_ (the token bucket, approvals, silences,
// dependencies: what a cycle's or a person's decision reads) is taken before outcomes_mu_
// (repairs in flight and the subjects' lives: what an outcome changes). An outcome takes
// outcomes_mu_ only; decide() lets it go every few hundred tasks; no enqueue happens under
// either. The state's lock and the engine's event queue lock are taken inside them (leaves).
#pragma once

#include <octo/detail/annotated_mutex.hpp>
#include <octo/executor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "detail/maintenance_calendar.hpp"
#include "detail/subject_types.hpp"
#include "halo/audit.hpp"
#include "halo/engine.hpp"
#include "halo/event.hpp"
#include "halo/lifecycle.hpp"
#include "halo/maintenance_window.hpp"
#include "halo/silence.hpp"
#include "halo/state.hpp"

namespace halo::detail {

// What the rails' verdicts do to a weak point's tracking: forgotten (verified healed) or one
// more failure escalation.
struct TrackUpdate {
  std::uint64_t fingerprint = 0;
  bool healed = false;
};

// "90 s": durations in audit reasons and verdicts.
inline std::string seconds_text(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

class SafetyRails {
 public:
  using Emit = std::function<void(Event)>;
  // `config`, `state` (its clock times everything), `audit` and `emit` must outlive the rails.
  // The token bucket starts full.
  SafetyRails(const SafetyConfig& config, std::chrono::nanoseconds verify_timeout,
              SystemState::EvidenceNeeds needs, SystemState& state, AuditLog& audit, Emit emit);

  // Before planning; cycle.weak_points in fingerprint order, `unhealthy` their count per
  // subject type. Judges the remembered subjects (full cycles only: a light one runs too few
  // analyzers to call anything healthy), writes each seen weak point's state, flags and ladder
  // step, opens or closes the breaker (cycle.breaker), and appends to `cancel` the repairs that
  // passed repair_timeout (now counted failed).
  void review(CycleResult& cycle, const Snapshot& snapshot, std::chrono::nanoseconds now,
              const TypeCounts& unhealthy, std::vector<octo::TaskId>& cancel)
      OCTO_EXCLUDES(decisions_mu_, outcomes_mu_);
  // The verdict for each of cycle.generated_tasks, in order (the worst weak point first), into
  // cycle.dispatch_results (resized to match); sets the silenced and inhibited flags of
  // cycle.weak_points. A passed repair is reserved in flight and its index appended to `sent`.
  void decide(CycleResult& cycle, std::chrono::nanoseconds now, std::vector<std::size_t>& sent)
      OCTO_EXCLUDES(decisions_mu_, outcomes_mu_);
  // The repairs at `sent` after their enqueue, whose results are in cycle.dispatch_results:
  // records each dispatched task id (and applies an outcome that arrived before it), or undoes
  // the reservation.
  void settle(const CycleResult& cycle, const std::vector<std::size_t>& sent)
      OCTO_EXCLUDES(outcomes_mu_);
  void settle(const GeneratedTask& task, const DispatchResult& result) OCTO_EXCLUDES(outcomes_mu_);

  // A person approved `approval_id`: removed from the pending ones, audited and reserved in
  // flight (the rate limit and the breaker are skipped: the person decided); the caller
  // enqueues and settles it. nullopt for an unknown id.
  std::optional<PendingApproval> approve(std::uint64_t approval_id)
      OCTO_EXCLUDES(decisions_mu_, outcomes_mu_);
  // Removes and audits a rejected approval; false for an unknown id.
  bool reject(std::uint64_t approval_id, std::string reason) OCTO_EXCLUDES(decisions_mu_);
  std::vector<PendingApproval> pending_approvals() const OCTO_EXCLUDES(decisions_mu_);

  bool clear(std::string_view weak_point_id) OCTO_EXCLUDES(outcomes_mu_);
  // Engine::restore_escalation, with the id's fingerprint.
  bool restore_escalation(std::uint64_t fingerprint, std::string_view subject_type,
                          std::string_view subject_id, std::string_view reason)
      OCTO_EXCLUDES(outcomes_mu_);
  std::uint64_t silence(Silence silence) OCTO_EXCLUDES(decisions_mu_);
  bool unsilence(std::uint64_t id) OCTO_EXCLUDES(decisions_mu_);
  // Not const: the maintenance windows due open their silences first.
  std::vector<Silence> silences() OCTO_EXCLUDES(decisions_mu_);
  // Engine::add_maintenance_window and friends (halo/maintenance_window.hpp). Removing a window
  // ends its silence if it is still on (audited).
  void add_maintenance_window(MaintenanceWindow window) OCTO_EXCLUDES(decisions_mu_);
  bool remove_maintenance_window(std::string_view name) OCTO_EXCLUDES(decisions_mu_);
  std::vector<MaintenanceWindowStatus> maintenance_windows() OCTO_EXCLUDES(decisions_mu_);
  void add_dependency(const SubjectRef& child, const SubjectRef& parent)
      OCTO_EXCLUDES(decisions_mu_);
  bool remove_dependency(const SubjectRef& child, const SubjectRef& parent)
      OCTO_EXCLUDES(decisions_mu_);

  // A task reached a terminal event. Cheap for tasks that are not repairs. True when it was a
  // repair's outcome and changed its weak point's state (the engine's worker is then woken: a
  // repair that starts verifying must get its verify cycles).
  bool outcome(const octo::TaskEvent& event) noexcept OCTO_EXCLUDES(outcomes_mu_);
  // False when no repair is in flight, without a lock: the observer skips unrelated tasks.
  bool any_in_flight() const noexcept {
    // Relaxed: reserve raises the count before the enqueue that hands the task to a worker, so
    // for a repair it is never zero at its outcome; a stale value only costs a lock.
    return in_flight_count_.load(std::memory_order_relaxed) != 0;
  }
  // True while a repair is in flight or verifying: the engine's worker runs verify cycles.
  bool watching() const noexcept {
    // Relaxed: a hint for the worker's next wake-up; a stale value delays one verify cycle.
    return any_in_flight() || verifying_count_.load(std::memory_order_relaxed) != 0;
  }
  // The executor went away: its repairs will not report back, so their weak points are no
  // longer in flight (open again, not failed). Reservations still settling are left to them.
  void forget_in_flight() OCTO_EXCLUDES(outcomes_mu_);
  // The state of the subject the rails remember under `fingerprint`; nullopt when they do not.
  std::optional<WeakPointState> life_state(std::uint64_t fingerprint) const
      OCTO_EXCLUDES(outcomes_mu_);
  // Gives back `n` tokens decide() took for repairs that were then not sent (the fleet refused
  // them), up to the burst.
  void refund(std::size_t n) OCTO_EXCLUDES(decisions_mu_);
  // Moves the tracking changes verdicts made since the last call into `out` (appended).
  void take_track_updates(std::vector<TrackUpdate>& out) OCTO_EXCLUDES(outcomes_mu_);

  struct Counts {
    std::size_t in_flight = 0;
    std::size_t pending_approvals = 0;
    std::uint64_t dispatched = 0;
    std::uint64_t succeeded = 0;
    std::uint64_t failed = 0;
    std::uint64_t escalations = 0;
    std::uint64_t heals = 0;
    std::map<std::string, std::uint64_t> suppressed_by_reason;
    std::map<std::string, std::size_t> by_state;
    std::map<std::string, std::size_t> by_flag;
    std::vector<WeakPointLife> lives;
    bool breaker_open = false;
    std::string breaker_reason;
    std::size_t silences = 0;
    std::size_t maintenance_windows = 0;
  };
  // Not const, as silences() is not.
  Counts counts() OCTO_EXCLUDES(decisions_mu_, outcomes_mu_);

 private:
  using ns = std::chrono::nanoseconds;
  struct InFlight {
    std::uint64_t fingerprint = 0;
    std::string weak_point;
    std::string task_type;
    std::string subject;
    std::size_t type = 0;  // subject_type_index
    ns dispatched_at{0};
  };
  // A subject the rails remember: from its first dispatch until it has been healthy, without
  // repairs or flaps in their windows, for a while.
  struct Life {
    WeakPointState state = WeakPointState::kOpen;
    std::uint8_t flags = 0;  // kFlapping only: silenced and inhibited are per cycle
    std::string weak_point, subject_type, subject_id;
    std::deque<ns> repairs;  // dispatch times within budget_window
    std::deque<ns> flaps;    // within flap_window
    std::uint32_t step = 0;
    std::uint32_t failures = 0;  // since it was last healthy: the backoff's exponent
    ns hold_until{0};            // backoff or flap wait: no repair before
    ns since{0};
    std::chrono::system_clock::time_point since_wall{};
    ns finished{0};  // verifying: the repair reported success then
    ns healed_at{-1};
    ns healthy_since{-1};  // escalated: not seen since
    std::string reason;
  };
  struct EarlyOutcome {
    octo::TaskEventKind kind = octo::TaskEventKind::kCancelled;
    std::string reason;
  };
  struct Dependency {
    std::uint64_t parent = 0;
    std::string parent_weak_point;
  };

  // Removes a pending approval and audits the decision; nullopt for an unknown id.
  std::optional<PendingApproval> take_approval(std::uint64_t approval_id, AuditKind kind,
                                               std::string reason) OCTO_REQUIRES(decisions_mu_);
  void reserve(const GeneratedTask& task) OCTO_REQUIRES(outcomes_mu_);
  void settle_one(const GeneratedTask& task, const DispatchResult& result)
      OCTO_REQUIRES(outcomes_mu_);
  void apply_outcome(octo::TaskId id, octo::TaskEventKind kind, std::string_view reason)
      OCTO_REQUIRES(outcomes_mu_);
  void release(const InFlight& f) OCTO_REQUIRES(outcomes_mu_);
  Life& life_of(std::uint64_t fingerprint, std::string_view weak_point,
                std::string_view subject_type, std::string_view subject_id)
      OCTO_REQUIRES(outcomes_mu_);
  // Moves `life` to `to`, audits the change with `reason`, emits escalated / healed.
  void transition(Life& life, WeakPointState to, std::string reason, ns now)
      OCTO_REQUIRES(outcomes_mu_);
  // A repair dispatched or finished, for the subscribers (the life's current state).
  void emit_repair(EventKind kind, const Life& life, std::string task_type, octo::TaskId id,
                   std::string reason) OCTO_REQUIRES(outcomes_mu_);
  // A repair failed (its task, its verification, or its timeout): backoff, the next ladder
  // step, and escalation once the budget is spent.
  void repair_failed(std::uint64_t fingerprint, Life& life, std::string reason, ns now)
      OCTO_REQUIRES(outcomes_mu_);
  void healed(std::uint64_t fingerprint, Life& life, std::string reason, ns now)
      OCTO_REQUIRES(outcomes_mu_);
  // Why `life` holds a repair back, as decide()'s reason index, or -1.
  int held_by_life(Life& life, ns now) OCTO_REQUIRES(outcomes_mu_);
  // Dispatches within budget_window (older ones dropped).
  std::size_t repairs_in_budget(Life& life, ns now) const OCTO_REQUIRES(outcomes_mu_);
  void judged(bool failed, ns now) OCTO_REQUIRES(outcomes_mu_);
  void review_breaker(CycleResult& cycle, const Snapshot& snapshot, ns now,
                      const TypeCounts& unhealthy) OCTO_REQUIRES(outcomes_mu_);
  void audit_change(AuditKind kind, const Life* life, std::string reason);
  // Adds a validated silence (audited); 0 when kMaxSilences are in use.
  std::uint64_t insert_silence(Silence s) OCTO_REQUIRES(decisions_mu_);
  // Opens the silences of the maintenance windows due at this moment (state time `now`).
  void open_windows(ns now) OCTO_REQUIRES(decisions_mu_);
  std::chrono::system_clock::time_point wall_now() const;

  const SafetyConfig& config_;
  const ns verify_timeout_;
  const SystemState::EvidenceNeeds needs_;
  SystemState& state_;
  AuditLog& audit_;
  const Emit emit_;

  mutable octo::detail::Mutex decisions_mu_;
  double tokens_ OCTO_GUARDED_BY(decisions_mu_);
  ns tokens_at_ OCTO_GUARDED_BY(decisions_mu_);
  std::map<std::uint64_t, PendingApproval> approvals_ OCTO_GUARDED_BY(decisions_mu_);
  std::unordered_map<std::uint64_t, std::uint64_t> approval_by_wp_ OCTO_GUARDED_BY(decisions_mu_);
  std::uint64_t next_approval_id_ OCTO_GUARDED_BY(decisions_mu_) = 1;
  std::map<std::string, std::uint64_t> suppressed_by_reason_ OCTO_GUARDED_BY(decisions_mu_);
  // Bounded: a token holder cannot grow it without limit over HTTP.
  static constexpr std::size_t kMaxSilences = 10'000;
  std::map<std::uint64_t, Silence> silences_ OCTO_GUARDED_BY(decisions_mu_);
  std::uint64_t next_silence_id_ OCTO_GUARDED_BY(decisions_mu_) = 1;
  MaintenanceCalendar calendar_ OCTO_GUARDED_BY(decisions_mu_);
  // By the child's fingerprint.
  std::unordered_map<std::uint64_t, std::vector<Dependency>> parents_
      OCTO_GUARDED_BY(decisions_mu_);
  // Parents that the last review found unhealthy or under repair.
  std::unordered_set<std::uint64_t> unhealthy_parents_ OCTO_GUARDED_BY(decisions_mu_);
  // Parents healed within verify_timeout, and the children their heal already covered: a child
  // that turns up as a weak point in that time (its window still holds the outage's evidence, or
  // its records arrived late) verifies instead of being repaired, once per heal.
  struct HealedParent {
    std::chrono::nanoseconds at{};
    std::unordered_set<std::uint64_t> covered;
  };
  std::unordered_map<std::uint64_t, HealedParent> healed_parents_ OCTO_GUARDED_BY(decisions_mu_);
  // The last review's blast-radius caps per subject type.
  TypeCounts caps_ OCTO_GUARDED_BY(decisions_mu_){};

  mutable octo::detail::Mutex outcomes_mu_ OCTO_ACQUIRED_AFTER(decisions_mu_);
  std::unordered_map<octo::TaskId, InFlight> in_flight_ OCTO_GUARDED_BY(outcomes_mu_);
  // By weak point: the task id, or 0 while reserved (enqueue not yet settled).
  std::unordered_map<std::uint64_t, octo::TaskId> in_flight_by_wp_ OCTO_GUARDED_BY(outcomes_mu_);
  TypeCounts in_flight_by_type_ OCTO_GUARDED_BY(outcomes_mu_){};
  std::unordered_map<std::uint64_t, Life> lives_ OCTO_GUARDED_BY(outcomes_mu_);
  std::vector<TrackUpdate> track_updates_ OCTO_GUARDED_BY(outcomes_mu_);
  // Outcomes of tasks whose enqueue has not settled yet (they ran faster than the dispatch
  // finished); kept only while sends are open, then dropped (they were not repairs).
  std::unordered_map<octo::TaskId, EarlyOutcome> early_ OCTO_GUARDED_BY(outcomes_mu_);
  std::size_t sends_open_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t dispatched_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t succeeded_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t failed_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t escalations_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t heals_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  // Verdicts within breaker_window: (when, failed).
  std::deque<std::pair<ns, bool>> verdicts_ OCTO_GUARDED_BY(outcomes_mu_);
  bool breaker_open_ OCTO_GUARDED_BY(outcomes_mu_) = false;
  std::string breaker_reason_ OCTO_GUARDED_BY(outcomes_mu_);
  ns below_since_ OCTO_GUARDED_BY(outcomes_mu_){-1};
  // The last cycle's weak points per state and flag, and the lives it did not see.
  std::array<std::size_t, kWeakPointStates> by_state_ OCTO_GUARDED_BY(outcomes_mu_){};
  std::array<std::size_t, 3> by_flag_ OCTO_GUARDED_BY(outcomes_mu_){};
  // Read by any_in_flight() and watching() without a lock; written under outcomes_mu_.
  std::atomic<std::size_t> in_flight_count_{0};
  std::atomic<std::size_t> verifying_count_{0};
};

}  // namespace halo::detail

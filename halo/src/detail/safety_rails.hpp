// The safety rails between a cycle's planned repairs and the executor: what is already in
// flight, awaiting approval, backing off after a failure, over the blast-radius cap for agents or
// over the repair rate; the repairs in flight and what their outcomes change. The engine asks
// decide() for a cycle's verdicts, enqueues the repairs that passed, then settle()s them; the
// executor's outcome events come in through outcome().
//
//   detail::SafetyRails rails(config.safety, state, audit);
//   std::vector<std::size_t> sent;
//   rails.decide(cycle, now, agent_count, sent);   // verdicts; `sent` reserved in flight
//   for (auto i : sent) enqueue(cycle.generated_tasks[i], cycle.dispatch_results[i]);
//   rails.settle(cycle, sent);                     // after their audit entries
//
// Thread safety: every member may be called from any thread. Two locks: decisions_mu_ (the token
// bucket and the approvals: what a cycle's or a person's decision reads) is taken before
// outcomes_mu_ (the repairs in flight: what an outcome changes). An outcome takes outcomes_mu_
// only, for a lookup and a few updates; decide() lets it go every few hundred tasks, and no
// enqueue happens under either.
#pragma once

#include <octo/detail/annotated_mutex.hpp>
#include <octo/executor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "halo/audit.hpp"
#include "halo/engine.hpp"
#include "halo/state.hpp"

namespace halo::detail {

// What a repair's outcome does to its weak point's tracking: forgotten (healed) or one more
// failure escalation.
struct TrackUpdate {
  std::uint64_t fingerprint = 0;
  bool healed = false;
};

class SafetyRails {
 public:
  // `config`, `state` (its clock times the backoff) and `audit` must outlive the rails. The
  // token bucket starts full.
  SafetyRails(const SafetyConfig& config, const SystemState& state, AuditLog& audit);

  // The verdict for each of cycle.generated_tasks, in order (the worst weak point first), into
  // cycle.dispatch_results (resized to match): suggested when the cycle is a dry run, suppressed
  // with its reason, pending approval (recorded), or passed. A passed repair is reserved in
  // flight and its index appended to `sent`; the caller enqueues it and then settles it.
  void decide(CycleResult& cycle, std::chrono::nanoseconds now, std::size_t agent_count,
              std::vector<std::size_t>& sent) OCTO_EXCLUDES(decisions_mu_, outcomes_mu_);
  // The repairs at `sent` after their enqueue, whose results are in cycle.dispatch_results:
  // records each dispatched task id (and applies an outcome that arrived before it), or undoes
  // the reservation.
  void settle(const CycleResult& cycle, const std::vector<std::size_t>& sent)
      OCTO_EXCLUDES(outcomes_mu_);
  void settle(const GeneratedTask& task, const DispatchResult& result) OCTO_EXCLUDES(outcomes_mu_);

  // A person approved `approval_id`: removed from the pending ones, audited and reserved in
  // flight (the rate limit is skipped: the person decided); the caller enqueues and settles it.
  // nullopt for an unknown id.
  std::optional<PendingApproval> approve(std::uint64_t approval_id)
      OCTO_EXCLUDES(decisions_mu_, outcomes_mu_);
  // Removes and audits a rejected approval; false for an unknown id.
  bool reject(std::uint64_t approval_id, std::string reason) OCTO_EXCLUDES(decisions_mu_);
  std::vector<PendingApproval> pending_approvals() const OCTO_EXCLUDES(decisions_mu_);

  // A task reached a terminal event. Cheap for tasks that are not repairs.
  void outcome(const octo::TaskEvent& event) noexcept OCTO_EXCLUDES(outcomes_mu_);
  // False when no repair is in flight, without a lock: the observer skips unrelated tasks.
  bool any_in_flight() const noexcept {
    // Relaxed: reserve raises the count before the enqueue that hands the task to a worker, so
    // for a repair it is never zero at its outcome; a stale value only costs a lock.
    return in_flight_count_.load(std::memory_order_relaxed) != 0;
  }
  // The executor went away: its repairs will not report back, so their weak points are no
  // longer in flight. Reservations of a dispatch still settling are left to it.
  void forget_in_flight() OCTO_EXCLUDES(outcomes_mu_);
  // Moves the tracking changes outcomes made since the last call into `out` (appended).
  void take_track_updates(std::vector<TrackUpdate>& out) OCTO_EXCLUDES(outcomes_mu_);

  struct Counts {
    std::size_t in_flight = 0;
    std::size_t pending_approvals = 0;
    std::uint64_t dispatched = 0;
    std::uint64_t succeeded = 0;
    std::uint64_t failed = 0;
    std::map<std::string, std::uint64_t> suppressed_by_reason;
  };
  Counts counts() const OCTO_EXCLUDES(decisions_mu_, outcomes_mu_);

 private:
  struct InFlight {
    std::uint64_t fingerprint = 0;
    std::string weak_point;
    std::string task_type;
    std::string subject;
    bool agent = false;
  };
  struct Backoff {
    std::uint32_t failures = 0;
    std::chrono::nanoseconds until{0};
  };
  struct EarlyOutcome {
    octo::TaskEventKind kind = octo::TaskEventKind::kCancelled;
    std::string reason;
  };

  // Removes a pending approval and audits the decision; nullopt for an unknown id.
  std::optional<PendingApproval> decide(std::uint64_t approval_id, AuditKind kind,
                                        std::string reason) OCTO_REQUIRES(decisions_mu_);
  void reserve(const GeneratedTask& task) OCTO_REQUIRES(outcomes_mu_);
  void settle_one(const GeneratedTask& task, const DispatchResult& result)
      OCTO_REQUIRES(outcomes_mu_);
  void apply_outcome(octo::TaskId id, octo::TaskEventKind kind, std::string_view reason)
      OCTO_REQUIRES(outcomes_mu_);

  const SafetyConfig& config_;
  const SystemState& state_;
  AuditLog& audit_;

  mutable octo::detail::Mutex decisions_mu_;
  double tokens_ OCTO_GUARDED_BY(decisions_mu_);
  std::chrono::nanoseconds tokens_at_ OCTO_GUARDED_BY(decisions_mu_);
  std::map<std::uint64_t, PendingApproval> approvals_ OCTO_GUARDED_BY(decisions_mu_);
  std::unordered_map<std::uint64_t, std::uint64_t> approval_by_wp_ OCTO_GUARDED_BY(decisions_mu_);
  std::uint64_t next_approval_id_ OCTO_GUARDED_BY(decisions_mu_) = 1;
  std::map<std::string, std::uint64_t> suppressed_by_reason_ OCTO_GUARDED_BY(decisions_mu_);

  mutable octo::detail::Mutex outcomes_mu_ OCTO_ACQUIRED_AFTER(decisions_mu_);
  std::unordered_map<octo::TaskId, InFlight> in_flight_ OCTO_GUARDED_BY(outcomes_mu_);
  // By weak point: the task id, or 0 while reserved (enqueue not yet settled).
  std::unordered_map<std::uint64_t, octo::TaskId> in_flight_by_wp_ OCTO_GUARDED_BY(outcomes_mu_);
  std::size_t agents_in_flight_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::unordered_map<std::uint64_t, Backoff> backoff_ OCTO_GUARDED_BY(outcomes_mu_);
  std::vector<TrackUpdate> track_updates_ OCTO_GUARDED_BY(outcomes_mu_);
  // Outcomes of tasks whose enqueue has not settled yet (they ran faster than the dispatch
  // finished); kept only while sends are open, then dropped (they were not repairs).
  std::unordered_map<octo::TaskId, EarlyOutcome> early_ OCTO_GUARDED_BY(outcomes_mu_);
  std::size_t sends_open_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t dispatched_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t succeeded_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  std::uint64_t failed_ OCTO_GUARDED_BY(outcomes_mu_) = 0;
  // Read by any_in_flight() without a lock; written under outcomes_mu_.
  std::atomic<std::size_t> in_flight_count_{0};
};

}  // namespace halo::detail

#include "detail/safety_rails.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace halo::detail {

using octo::detail::LockGuard;
using octo::detail::UniqueLock;

SafetyRails::SafetyRails(const SafetyConfig& config, const SystemState& state, AuditLog& audit)
    : config_(config),
      state_(state),
      audit_(audit),
      tokens_(config.repair_burst),
      tokens_at_(state.now()) {}

void SafetyRails::decide(CycleResult& cycle, std::chrono::nanoseconds now, std::size_t agent_count,
                         std::vector<std::size_t>& sent) {
  const std::size_t agent_cap = std::max<std::size_t>(
      1, static_cast<std::size_t>(
             std::floor(static_cast<double>(agent_count) * config_.blast_radius_percent / 100.0)));
  const std::size_t n = cycle.generated_tasks.size();
  cycle.dispatch_results.resize(n);

  LockGuard decisions(decisions_mu_);
  const double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  tokens_ = std::min<double>(config_.repair_burst,
                             tokens_ + std::max(0.0, elapsed) * config_.repairs_per_second);
  tokens_at_ = now;

  // Cheap lookups only. outcomes_mu_ is let go every kDecisionRun tasks so that outcomes
  // arriving meanwhile wait for a few microseconds at most, not for the whole loop.
  static constexpr const char* kReasons[] = {"in-flight", "awaiting-approval", "backoff",
                                             "blast-radius", "rate-limited"};
  static constexpr std::size_t kDecisionRun = 256;
  std::uint64_t suppressed[std::size(kReasons)] = {};
  UniqueLock outcomes(outcomes_mu_);
  for (std::size_t i = 0; i < n; ++i) {
    if (i % kDecisionRun == kDecisionRun - 1) {
      outcomes.unlock();
      outcomes.lock();
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
    } else if (config_.approval_required.count(gt.task.type) != 0) {
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
  outcomes.unlock();
  for (std::size_t r = 0; r < std::size(kReasons); ++r)
    if (suppressed[r] != 0) suppressed_by_reason_[kReasons[r]] += suppressed[r];
}

void SafetyRails::reserve(const GeneratedTask& task) {
  in_flight_by_wp_[task.fingerprint] = 0;
  if (task.subject_type == "agent") ++agents_in_flight_;
  ++sends_open_;
  // Raised before the enqueue: the executor's hand-off to its worker orders this store before
  // the worker's load in any_in_flight(), so the task's outcome cannot skip the rails.
  in_flight_count_.fetch_add(1, std::memory_order_relaxed);
}

void SafetyRails::settle(const CycleResult& cycle, const std::vector<std::size_t>& sent) {
  if (sent.empty()) return;
  LockGuard lock(outcomes_mu_);
  for (const std::size_t i : sent) settle_one(cycle.generated_tasks[i], cycle.dispatch_results[i]);
}

void SafetyRails::settle(const GeneratedTask& task, const DispatchResult& result) {
  LockGuard lock(outcomes_mu_);
  settle_one(task, result);
}

void SafetyRails::settle_one(const GeneratedTask& task, const DispatchResult& result) {
  const bool agent = task.subject_type == "agent";
  --sends_open_;
  if (result.status == DispatchStatus::kDispatched) {
    in_flight_[result.task_id] =
        InFlight{task.fingerprint, task.weak_point, task.task.type, task.task.payload, agent};
    in_flight_by_wp_[task.fingerprint] = result.task_id;
    ++dispatched_;
    if (auto e = early_.find(result.task_id); e != early_.end()) {
      const EarlyOutcome o = std::move(e->second);
      early_.erase(e);
      apply_outcome(result.task_id, o.kind, o.reason);
    }
  } else {
    in_flight_by_wp_.erase(task.fingerprint);
    if (agent) --agents_in_flight_;
    in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (sends_open_ == 0) early_.clear();
}

std::optional<PendingApproval> SafetyRails::decide(std::uint64_t approval_id, AuditKind kind,
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

std::optional<PendingApproval> SafetyRails::approve(std::uint64_t approval_id) {
  LockGuard decisions(decisions_mu_);
  auto p = decide(approval_id, AuditKind::kApproved, {});
  if (!p) return std::nullopt;
  // Reserved before decisions_mu_ is let go: no cycle can dispatch the same weak point between.
  LockGuard outcomes(outcomes_mu_);
  reserve(p->planned);
  return p;
}

bool SafetyRails::reject(std::uint64_t approval_id, std::string reason) {
  LockGuard decisions(decisions_mu_);
  return decide(approval_id, AuditKind::kRejected, std::move(reason)).has_value();
}

std::vector<PendingApproval> SafetyRails::pending_approvals() const {
  LockGuard decisions(decisions_mu_);
  std::vector<PendingApproval> out;
  out.reserve(approvals_.size());
  for (const auto& [id, p] : approvals_) out.push_back(p);
  return out;
}

void SafetyRails::outcome(const octo::TaskEvent& event) noexcept {
  if (event.kind != octo::TaskEventKind::kSucceeded &&
      event.kind != octo::TaskEventKind::kDeadLettered &&
      event.kind != octo::TaskEventKind::kCancelled)
    return;
  if (!any_in_flight()) return;
  LockGuard lock(outcomes_mu_);
  try {
    if (in_flight_.count(event.id) == 0) {
      // Not a repair, or one whose enqueue is still settling: kept until the dispatch settles.
      if (sends_open_ > 0) early_[event.id] = EarlyOutcome{event.kind, std::string(event.reason)};
      return;
    }
    apply_outcome(event.id, event.kind, event.reason);
  } catch (...) {
    // Out of memory while auditing: the outcome is lost for the audit log only (apply_outcome
    // updates the bookkeeping before it builds the entry).
  }
}

void SafetyRails::apply_outcome(octo::TaskId id, octo::TaskEventKind kind,
                                std::string_view reason) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  InFlight f = std::move(it->second);
  in_flight_.erase(it);
  in_flight_by_wp_.erase(f.fingerprint);
  if (f.agent) --agents_in_flight_;
  in_flight_count_.fetch_sub(1, std::memory_order_relaxed);

  AuditKind audit_kind = AuditKind::kCancelled;
  switch (kind) {
    case octo::TaskEventKind::kSucceeded:
      audit_kind = AuditKind::kSucceeded;
      ++succeeded_;
      backoff_.erase(f.fingerprint);
      track_updates_.push_back({f.fingerprint, true});
      break;
    case octo::TaskEventKind::kDeadLettered: {
      audit_kind = AuditKind::kFailed;
      ++failed_;
      Backoff& b = backoff_[f.fingerprint];
      b.failures += 1;
      const int shift = static_cast<int>(std::min<std::uint32_t>(b.failures - 1, 30));
      const auto delay = std::min<std::chrono::nanoseconds>(
          config_.backoff_max, config_.backoff_base * (std::int64_t{1} << shift));
      b.until = state_.now() + delay;
      track_updates_.push_back({f.fingerprint, false});
      break;
    }
    default:
      break;
  }
  audit_.append(AuditEntry{.kind = audit_kind,
                           .weak_point = std::move(f.weak_point),
                           .task_type = std::move(f.task_type),
                           .subject = std::move(f.subject),
                           .task_id = id,
                           .reason = std::string(reason)});
}

void SafetyRails::forget_in_flight() {
  LockGuard lock(outcomes_mu_);
  for (const auto& [id, f] : in_flight_) {
    in_flight_by_wp_.erase(f.fingerprint);
    if (f.agent) --agents_in_flight_;
  }
  in_flight_count_.fetch_sub(in_flight_.size(), std::memory_order_relaxed);
  in_flight_.clear();
}

void SafetyRails::take_track_updates(std::vector<TrackUpdate>& out) {
  LockGuard lock(outcomes_mu_);
  if (out.empty()) {
    out.swap(track_updates_);
  } else {
    out.insert(out.end(), track_updates_.begin(), track_updates_.end());
    track_updates_.clear();
  }
}

SafetyRails::Counts SafetyRails::counts() const {
  Counts c;
  {
    LockGuard decisions(decisions_mu_);
    c.pending_approvals = approvals_.size();
    c.suppressed_by_reason = suppressed_by_reason_;
  }
  LockGuard lock(outcomes_mu_);
  c.in_flight = in_flight_by_wp_.size();
  c.dispatched = dispatched_;
  c.succeeded = succeeded_;
  c.failed = failed_;
  return c;
}

}  // namespace halo::detail

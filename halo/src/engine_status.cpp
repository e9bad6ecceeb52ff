// What the engine reports and what people decide: approvals, status and history.
#include <algorithm>
#include <charconv>
#include <limits>

#include "detail/engine_internals.hpp"
#include "detail/fleet_link.hpp"
#include "detail/safety_rails.hpp"
#include "halo/engine.hpp"

namespace halo {

using octo::detail::LockGuard;

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

ApprovalOutcome Engine::approve(std::uint64_t approval_id) {
  auto p = rails_->approve(approval_id);
  if (!p) return ApprovalOutcome::kUnknownId;
  DispatchResult d;
  send(p->planned, d);
  AuditEntry e;
  fill_audit_entry(e, p->planned, p->cycle_id, d);
  audit_.append(std::move(e));
  rails_->settle(p->planned, d);
  return d.status == DispatchStatus::kDispatched ? ApprovalOutcome::kDispatched
                                                 : ApprovalOutcome::kDispatchFailed;
}

ApprovalOutcome Engine::reject(std::uint64_t approval_id, std::string reason) {
  return rails_->reject(approval_id, std::move(reason)) ? ApprovalOutcome::kRejected
                                                        : ApprovalOutcome::kUnknownId;
}

std::vector<PendingApproval> Engine::pending_approvals() const {
  return rails_->pending_approvals();
}

bool Engine::clear(std::string_view weak_point_id) { return rails_->clear(weak_point_id); }

bool Engine::restore_escalation(std::string_view weak_point_id, std::string_view subject_type,
                                std::string_view subject_id, std::string_view reason) {
  constexpr std::string_view kPrefix = "wp-";
  if (weak_point_id.size() != kPrefix.size() + 16 || !weak_point_id.starts_with(kPrefix))
    return false;
  std::uint64_t fp = 0;
  const char* first = weak_point_id.data() + kPrefix.size();
  const auto [end, ec] = std::from_chars(first, first + 16, fp, 16);
  if (ec != std::errc() || end != first + 16 || weak_point_id != halo::weak_point_id(fp))
    return false;
  return rails_->restore_escalation(fp, subject_type, subject_id, reason);
}

std::vector<Silence> Engine::silences() const { return rails_->silences(); }

void Engine::add_maintenance_window(MaintenanceWindow window) {
  rails_->add_maintenance_window(std::move(window));
}

bool Engine::remove_maintenance_window(std::string_view name) {
  return rails_->remove_maintenance_window(name);
}

std::vector<MaintenanceWindowStatus> Engine::maintenance_windows() const {
  return rails_->maintenance_windows();
}

void Engine::add_dependency(const SubjectRef& child, const SubjectRef& parent) {
  rails_->add_dependency(child, parent);
}

bool Engine::remove_dependency(const SubjectRef& child, const SubjectRef& parent) {
  return rails_->remove_dependency(child, parent);
}

EngineStatus Engine::status() const {
  EngineStatus s;
  {
    LockGuard lock(flight_mu_);
    s.running = running_;
    s.pending_triggers = pending_triggers_;
    s.coalesced = coalesced_;
  }
  const detail::SafetyRails::Counts c = rails_->counts();
  s.pending_approvals = c.pending_approvals;
  s.repairs_in_flight = c.in_flight;
  s.repairs_dispatched = c.dispatched;
  s.repairs_succeeded = c.succeeded;
  s.repairs_failed = c.failed;
  s.suppressed_by_reason = c.suppressed_by_reason;
  s.weak_points_by_state = c.by_state;
  s.weak_points_by_flag = c.by_flag;
  s.lifecycle = c.lives;
  s.breaker_open = c.breaker_open;
  s.breaker_reason = c.breaker_reason;
  s.silences = c.silences;
  s.maintenance_windows = c.maintenance_windows;
  s.escalations = c.escalations;
  s.heals = c.heals;
  if (fleet_ != nullptr) {
    FleetStatus& fs = s.fleet;
    fs.enabled = true;
    fs.instance = fleet_->fleet->instance();
    fs.round_trips = fleet_->fleet->round_trips();
    LockGuard lock(fleet_->mu);
    fs.available = fleet_->available;
    fs.reason = fleet_->known ? fleet_->reason : "no cycle has reached the fleet yet";
    fs.peers = fleet_->peers;
    fs.shared_subjects = fleet_->shared.size();
    fs.subjects = fleet_->views;
    fs.leases_held = fleet_->held.size();
    fs.leases_granted = fleet_->leases_granted;
    fs.leases_lost = fleet_->leases_lost;
    fs.outcomes_written = fleet_->outcomes_written;
    fs.outcomes_rejected = fleet_->outcomes_rejected;
    fs.repairing_elsewhere = fleet_->repairing_elsewhere;
    fs.path_weak_points = fleet_->path_weak_points;
    fs.unavailable_cycles = fleet_->unavailable_cycles;
    for (const auto& [why, n] : fleet_->suppressed) s.suppressed_by_reason[why] += n;
  }
  {
    LockGuard lock(events_->mu);
    s.events_delivered = events_->delivered;
    s.events_dropped = events_->dropped;
    s.events_failed = events_->failed;
  }
  LockGuard lock(mu_);
  apply_track_updates();
  if (!history_.empty()) {
    s.last_summary = history_.front()->summary.text;
    s.last_run = history_.front()->started;
  }
  s.cycles_by_trigger = cycles_by_trigger_;
  s.rejected_issues = rejected_issues_;
  s.served_by_trigger = served_by_trigger_;
  for (const auto& [t, n] : cycles_by_trigger_) s.cycles += n;
  s.open_weak_points = 0;
  for (const auto& map : tracked_) s.open_weak_points += map.size();
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
  LockGuard lock(mu_);
  const std::size_t n = std::min(limit, history_.size());
  return {history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(n)};
}

}  // namespace halo

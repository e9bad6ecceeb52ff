#include "detail/safety_rails.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>

namespace halo::detail {

using octo::detail::LockGuard;
using octo::detail::UniqueLock;

namespace {

// decide()'s verdicts that hold a repair back, and their reasons.
enum Why : int {
  kWhyInFlight,
  kWhyAwaiting,
  kWhyVerifying,
  kWhyEscalated,
  kWhyBackoff,
  kWhyFlapping,
  kWhySilenced,
  kWhyInhibited,
  kWhyBlast,
  kWhyRate,
  kWhyBreaker,
  kWhyReasonCount
};
constexpr const char* kReasons[] = {"in-flight",    "awaiting-approval", "verifying",   "escalated",
                                    "backoff",      "flapping",          "silenced",    "inhibited",
                                    "blast-radius", "rate-limited",      "breaker-open"};

}  // namespace

SafetyRails::SafetyRails(const SafetyConfig& config, ns verify_timeout,
                         SystemState::EvidenceNeeds needs, SystemState& state, AuditLog& audit,
                         Emit emit)
    : config_(config),
      verify_timeout_(verify_timeout),
      needs_(needs),
      state_(state),
      audit_(audit),
      emit_(std::move(emit)),
      tokens_(config.repair_burst),
      tokens_at_(state.now()) {
  LockGuard decisions(decisions_mu_);
  caps_.fill(1);
  // Every reason is exported from the start (at zero), so a rate over it exists before it fires.
  for (const char* why : kReasons) suppressed_by_reason_[why] = 0;
}

void SafetyRails::decide(CycleResult& cycle, ns now, std::vector<std::size_t>& sent) {
  const std::size_t n = cycle.generated_tasks.size();
  cycle.dispatch_results.resize(n);

  LockGuard decisions(decisions_mu_);
  const double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  tokens_ = std::min<double>(config_.repair_burst,
                             tokens_ + std::max(0.0, elapsed) * config_.repairs_per_second);
  tokens_at_ = now;
  std::erase_if(silences_, [&](const auto& kv) { return kv.second.until <= now; });
  open_windows(now);
  // Approvals nobody decided in time: rejected (audited), so the weak point can ask again.
  std::vector<std::uint64_t> expired;
  for (const auto& [id, p] : approvals_)
    if (p.expires_at <= now) expired.push_back(id);
  for (const std::uint64_t id : expired)
    take_approval(id, AuditKind::kRejected,
                  "expired: not approved within " + seconds_text(config_.approval_ttl));
  const bool any_silence = std::any_of(silences_.begin(), silences_.end(),
                                       [&](const auto& kv) { return kv.second.from <= now; });
  const bool any_parent = !unhealthy_parents_.empty();

  // Cheap lookups only. outcomes_mu_ is let go every kDecisionRun tasks so that outcomes
  // arriving meanwhile wait for a few microseconds at most, not for the whole loop.
  static constexpr std::size_t kDecisionRun = 256;
  std::uint64_t suppressed[kWhyReasonCount] = {};
  // The silenced / inhibited flag of each task's verdict, sized on the first one (usually
  // never): their weak points get the flags.
  std::vector<std::uint8_t> held_flags;
  UniqueLock outcomes(outcomes_mu_);
  // Types already at their blast-radius cap: the common case, none, costs one test per task.
  std::size_t types_at_cap = 0;
  for (std::size_t t = 0; t < in_flight_by_type_.size(); ++t)
    types_at_cap += in_flight_by_type_[t] >= caps_[t] ? 1 : 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % kDecisionRun == kDecisionRun - 1) {
      outcomes.unlock();
      outcomes.lock();
    }
    const GeneratedTask& gt = cycle.generated_tasks[i];
    DispatchResult& d = cycle.dispatch_results[i];
    d.task_index = i;
    int why = -1;
    std::string detail;
    if (cycle.dry_run) {
      d.status = DispatchStatus::kSuggested;
      continue;
    }
    if (any_silence) {
      for (const auto& [id, s] : silences_) {
        if (s.from > now || !glob_match(s.match.subject_type, gt.subject_type) ||
            !glob_match(s.match.subject_id, gt.task.payload) ||
            !glob_match(s.match.task_type, gt.task.type))
          continue;
        why = kWhySilenced;
        detail = "silenced by " + std::to_string(id);
        break;
      }
    }
    if (why < 0 && any_parent) {
      if (auto p = parents_.find(gt.fingerprint); p != parents_.end()) {
        for (const Dependency& dep : p->second) {
          if (unhealthy_parents_.count(dep.parent) == 0) continue;
          why = kWhyInhibited;
          detail = "inhibited by " + dep.parent_weak_point;
          break;
        }
      }
    }
    if (why >= 0) {
      if (held_flags.empty()) held_flags.resize(n, 0);
      held_flags[i] = why == kWhySilenced ? WeakPointFlag::kSilenced : WeakPointFlag::kInhibited;
    } else if (in_flight_by_wp_.count(gt.fingerprint) != 0) {
      why = kWhyInFlight;
    } else if (approval_by_wp_.count(gt.fingerprint) != 0) {
      why = kWhyAwaiting;
    } else if (auto l = lives_.find(gt.fingerprint);
               l != lives_.end() && (why = held_by_life(l->second, now)) >= 0) {
      // held: escalated, verifying, over its budget (escalated now), backing off or flapping
    } else if (breaker_open_) {
      // The cycle is a dry run for what would otherwise go out.
      d.status = DispatchStatus::kSuggested;
      d.reason = kReasons[kWhyBreaker];
      ++suppressed[kWhyBreaker];
      continue;
    } else if (types_at_cap != 0 && in_flight_by_type_[subject_type_index(gt.subject_type)] >=
                                        caps_[subject_type_index(gt.subject_type)]) {
      why = kWhyBlast;
    } else if (config_.approval_required.count(gt.task.type) != 0) {
      d.status = DispatchStatus::kPendingApproval;
      d.approval_id = next_approval_id_++;
      approvals_[d.approval_id] = PendingApproval{
          d.approval_id, cycle.id, gt,
          config_.approval_ttl.count() > 0 ? now + config_.approval_ttl : ns::max()};
      approval_by_wp_[gt.fingerprint] = d.approval_id;
    } else if (tokens_ < 1.0) {
      why = kWhyRate;
    } else {
      tokens_ -= 1.0;
      reserve(gt);
      const std::size_t t = subject_type_index(gt.subject_type);
      if (in_flight_by_type_[t] == caps_[t]) ++types_at_cap;
      sent.push_back(i);
    }
    if (why >= 0) {
      d.status = DispatchStatus::kSuppressed;
      if (detail.empty()) {
        d.reason = kReasons[why];
      } else {
        d.reason = std::move(detail);
      }
      ++suppressed[why];
    }
  }
  // Flags of the weak points whose repairs a silence or a parent held back: tasks follow their
  // weak points' order (with gaps), so one walk pairs them.
  by_flag_[1] = by_flag_[2] = 0;
  if (!held_flags.empty()) {
    std::size_t t = 0;
    for (WeakPoint& wp : cycle.weak_points) {
      if (t == n) break;
      if (cycle.generated_tasks[t].fingerprint != wp.fingerprint) continue;
      wp.flags |= held_flags[t];
      by_flag_[1] += (held_flags[t] & WeakPointFlag::kSilenced) != 0 ? 1 : 0;
      by_flag_[2] += (held_flags[t] & WeakPointFlag::kInhibited) != 0 ? 1 : 0;
      ++t;
    }
  }
  outcomes.unlock();
  for (int r = 0; r < kWhyReasonCount; ++r)
    if (suppressed[r] != 0) suppressed_by_reason_[kReasons[r]] += suppressed[r];
}

int SafetyRails::held_by_life(Life& life, ns now) {
  if (life.state == WeakPointState::kEscalated) return kWhyEscalated;
  if (life.state == WeakPointState::kVerifying) return kWhyVerifying;
  if (repairs_in_budget(life, now) >= config_.max_repairs) {
    transition(life, WeakPointState::kEscalated,
               "repair budget spent: " + std::to_string(life.repairs.size()) + " repairs within " +
                   seconds_text(config_.budget_window),
               now);
    return kWhyEscalated;
  }
  if (now < life.hold_until)
    return (life.flags & WeakPointFlag::kFlapping) != 0 ? kWhyFlapping : kWhyBackoff;
  return -1;
}

std::size_t SafetyRails::repairs_in_budget(Life& life, ns now) const {
  while (!life.repairs.empty() && now - life.repairs.front() >= config_.budget_window)
    life.repairs.pop_front();
  return life.repairs.size();
}

SafetyRails::Life& SafetyRails::life_of(std::uint64_t fingerprint, std::string_view weak_point,
                                        std::string_view subject_type,
                                        std::string_view subject_id) {
  auto [it, inserted] = lives_.try_emplace(fingerprint);
  if (inserted) {
    it->second.weak_point = std::string(weak_point);
    it->second.subject_type = std::string(subject_type);
    it->second.subject_id = std::string(subject_id);
    it->second.since = state_.now();
    it->second.since_wall = std::chrono::system_clock::now();
  }
  return it->second;
}

void SafetyRails::reserve(const GeneratedTask& task) {
  in_flight_by_wp_[task.fingerprint] = 0;
  ++in_flight_by_type_[subject_type_index(task.subject_type)];
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

std::optional<WeakPointState> SafetyRails::life_state(std::uint64_t fingerprint) const {
  LockGuard lock(outcomes_mu_);
  const auto it = lives_.find(fingerprint);
  if (it == lives_.end()) return std::nullopt;
  return it->second.state;
}

void SafetyRails::refund(std::size_t n) {
  if (n == 0) return;
  LockGuard lock(decisions_mu_);
  tokens_ = std::min<double>(config_.repair_burst, tokens_ + static_cast<double>(n));
}

void SafetyRails::settle(const GeneratedTask& task, const DispatchResult& result) {
  LockGuard lock(outcomes_mu_);
  settle_one(task, result);
}

void SafetyRails::settle_one(const GeneratedTask& task, const DispatchResult& result) {
  --sends_open_;
  const std::size_t type = subject_type_index(task.subject_type);
  if (result.status == DispatchStatus::kDispatched) {
    const ns now = state_.now();
    in_flight_[result.task_id] =
        InFlight{task.fingerprint, task.weak_point, task.task.type, task.task.payload, type, now};
    in_flight_by_wp_[task.fingerprint] = result.task_id;
    ++dispatched_;
    Life& life = life_of(task.fingerprint, task.weak_point, task.subject_type, task.task.payload);
    life.repairs.push_back(now);
    transition(life, WeakPointState::kRepairing,
               task.task.type + " dispatched (task " + std::to_string(result.task_id) +
                   ", repair " + std::to_string(life.repairs.size()) + " of " +
                   std::to_string(config_.max_repairs) + ")",
               now);
    emit_repair(EventKind::kRepairDispatched, life, task.task.type, result.task_id,
                "repair " + std::to_string(life.repairs.size()) + " of " +
                    std::to_string(config_.max_repairs));
    if (auto e = early_.find(result.task_id); e != early_.end()) {
      const EarlyOutcome o = std::move(e->second);
      early_.erase(e);
      apply_outcome(result.task_id, o.kind, o.reason);
    }
  } else {
    in_flight_by_wp_.erase(task.fingerprint);
    --in_flight_by_type_[type];
    in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (sends_open_ == 0) early_.clear();
}

std::optional<PendingApproval> SafetyRails::take_approval(std::uint64_t approval_id, AuditKind kind,
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
  auto p = take_approval(approval_id, AuditKind::kApproved, {});
  if (!p) return std::nullopt;
  // Reserved before decisions_mu_ is let go: no cycle can dispatch the same weak point between.
  LockGuard outcomes(outcomes_mu_);
  reserve(p->planned);
  return p;
}

bool SafetyRails::reject(std::uint64_t approval_id, std::string reason) {
  LockGuard decisions(decisions_mu_);
  return take_approval(approval_id, AuditKind::kRejected, std::move(reason)).has_value();
}

std::vector<PendingApproval> SafetyRails::pending_approvals() const {
  LockGuard decisions(decisions_mu_);
  std::vector<PendingApproval> out;
  out.reserve(approvals_.size());
  for (const auto& [id, p] : approvals_) out.push_back(p);
  return out;
}

bool SafetyRails::outcome(const octo::TaskEvent& event) noexcept {
  if (event.kind != octo::TaskEventKind::kSucceeded &&
      event.kind != octo::TaskEventKind::kDeadLettered &&
      event.kind != octo::TaskEventKind::kCancelled)
    return false;
  if (!any_in_flight()) return false;
  LockGuard lock(outcomes_mu_);
  try {
    if (in_flight_.count(event.id) == 0) {
      // Not a repair, or one whose enqueue is still settling: kept until the dispatch settles.
      if (sends_open_ > 0) early_[event.id] = EarlyOutcome{event.kind, std::string(event.reason)};
      return false;
    }
    apply_outcome(event.id, event.kind, event.reason);
  } catch (...) {
    // Out of memory while auditing: the outcome is lost for the audit log only (apply_outcome
    // updates the bookkeeping before it builds the entry).
  }
  return true;
}

void SafetyRails::release(const InFlight& f) {
  in_flight_by_wp_.erase(f.fingerprint);
  --in_flight_by_type_[f.type];
  in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
}

void SafetyRails::apply_outcome(octo::TaskId id, octo::TaskEventKind kind,
                                std::string_view reason) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  InFlight f = std::move(it->second);
  in_flight_.erase(it);
  release(f);
  const ns now = state_.now();
  Life& life = life_of(f.fingerprint, f.weak_point, {}, f.subject);

  AuditKind audit_kind = AuditKind::kCancelled;
  if (kind == octo::TaskEventKind::kSucceeded) {
    audit_kind = AuditKind::kSucceeded;
    ++succeeded_;
  } else if (kind == octo::TaskEventKind::kDeadLettered) {
    audit_kind = AuditKind::kFailed;
    ++failed_;
  }
  // The outcome first, then the state change it causes.
  audit_.append(AuditEntry{.kind = audit_kind,
                           .weak_point = f.weak_point,
                           .task_type = f.task_type,
                           .subject = f.subject,
                           .task_id = id,
                           .reason = std::string(reason)});
  const std::string finished = kind == octo::TaskEventKind::kSucceeded ? std::string("succeeded")
                               : kind == octo::TaskEventKind::kDeadLettered
                                   ? "failed: " + std::string(reason)
                                   : std::string("cancelled");
  if (kind == octo::TaskEventKind::kSucceeded) {
    // Evidence from before this moment no longer counts (an endpoint's old errors).
    state_.mark_repaired(life.subject_type, life.subject_id);
    life.finished = now;
    transition(life, WeakPointState::kVerifying, f.task_type + " reported success", now);
  } else if (kind == octo::TaskEventKind::kDeadLettered) {
    repair_failed(f.fingerprint, life, f.task_type + " failed: " + std::string(reason), now);
  } else {
    transition(life, WeakPointState::kOpen, f.task_type + " was cancelled", now);
  }
  // After the state change, so the event carries the state it led to.
  emit_repair(EventKind::kRepairFinished, life, f.task_type, id, finished);
}

void SafetyRails::audit_change(AuditKind kind, const Life* life, std::string reason) {
  AuditEntry e{.kind = kind, .reason = std::move(reason)};
  if (life != nullptr) {
    e.weak_point = life->weak_point;
    e.subject = life->subject_id;
  }
  audit_.append(std::move(e));
}

void SafetyRails::transition(Life& life, WeakPointState to, std::string reason, ns now) {
  const WeakPointState from = life.state;
  if (from == WeakPointState::kVerifying) verifying_count_.fetch_sub(1, std::memory_order_relaxed);
  if (to == WeakPointState::kVerifying) verifying_count_.fetch_add(1, std::memory_order_relaxed);
  life.state = to;
  life.since = now;
  life.since_wall = std::chrono::system_clock::now();
  life.reason = reason;
  audit_change(AuditKind::kStateChanged, &life,
               std::string(to_string(from)) + " -> " + std::string(to_string(to)) + ": " + reason);
  if (to == WeakPointState::kEscalated) {
    ++escalations_;
    life.healthy_since = ns{-1};
  }
  if ((to == WeakPointState::kEscalated || to == WeakPointState::kHealed) && emit_) {
    emit_(
        Event{.kind = to == WeakPointState::kEscalated ? EventKind::kEscalated : EventKind::kHealed,
              .when = life.since_wall,
              .weak_point = life.weak_point,
              .subject_type = life.subject_type,
              .subject_id = life.subject_id,
              .reason = std::move(reason),
              .state = to});
  }
}

void SafetyRails::emit_repair(EventKind kind, const Life& life, std::string task_type,
                              octo::TaskId id, std::string reason) {
  if (!emit_) return;
  emit_(Event{.kind = kind,
              .when = std::chrono::system_clock::now(),
              .weak_point = life.weak_point,
              .subject_type = life.subject_type,
              .subject_id = life.subject_id,
              .reason = std::move(reason),
              .state = life.state,
              .task_type = std::move(task_type),
              .task_id = id});
}

void SafetyRails::repair_failed(std::uint64_t fingerprint, Life& life, std::string reason, ns now) {
  judged(true, now);
  life.failures += 1;
  life.step += 1;
  const int shift = static_cast<int>(std::min<std::uint32_t>(life.failures - 1, 30));
  life.hold_until = std::max(
      life.hold_until,
      now + std::min<ns>(config_.backoff_max, config_.backoff_base * (std::int64_t{1} << shift)));
  track_updates_.push_back({fingerprint, false});
  if (repairs_in_budget(life, now) >= config_.max_repairs) {
    transition(life, WeakPointState::kEscalated,
               reason + "; repair budget spent (" + std::to_string(life.repairs.size()) +
                   " repairs within " + seconds_text(config_.budget_window) + ")",
               now);
  } else {
    transition(life, WeakPointState::kOpen, std::move(reason), now);
  }
}

void SafetyRails::healed(std::uint64_t fingerprint, Life& life, std::string reason, ns now) {
  if (life.state == WeakPointState::kVerifying) {
    judged(false, now);
    ++heals_;
  }
  life.failures = 0;
  life.step = 0;
  life.hold_until = ns{0};
  life.healed_at = now;
  track_updates_.push_back({fingerprint, true});
  transition(life, WeakPointState::kHealed, std::move(reason), now);
}

void SafetyRails::judged(bool failed, ns now) { verdicts_.emplace_back(now, failed); }

bool SafetyRails::clear(std::string_view weak_point_id) {
  LockGuard lock(outcomes_mu_);
  for (auto& [fp, life] : lives_) {
    if (life.weak_point != weak_point_id) continue;
    if (life.state != WeakPointState::kEscalated && (life.flags & kFlapping) == 0) return false;
    life.repairs.clear();
    life.flaps.clear();
    life.flags = 0;
    life.step = 0;
    life.failures = 0;
    life.hold_until = ns{0};
    transition(life, WeakPointState::kOpen, "cleared by an operator", state_.now());
    return true;
  }
  return false;
}

bool SafetyRails::restore_escalation(std::uint64_t fingerprint, std::string_view subject_type,
                                     std::string_view subject_id, std::string_view reason) {
  LockGuard lock(outcomes_mu_);
  if (lives_.contains(fingerprint)) return false;
  Life& life = life_of(fingerprint, weak_point_id(fingerprint), subject_type, subject_id);
  transition(life, WeakPointState::kEscalated, "restored after a restart: " + std::string(reason),
             state_.now());
  return true;
}

std::uint64_t SafetyRails::silence(Silence s) {
  if (s.until <= s.from)
    throw std::invalid_argument("halo::Engine::silence: until (" + std::to_string(s.until.count()) +
                                " ns) is not after from (" + std::to_string(s.from.count()) +
                                " ns)");
  if (s.reason.empty()) throw std::invalid_argument("halo::Engine::silence: reason is empty");
  LockGuard lock(decisions_mu_);
  const std::uint64_t id = insert_silence(std::move(s));
  if (id == 0)
    throw std::invalid_argument("halo::Engine::silence: " + std::to_string(kMaxSilences) +
                                " silences already; end some first");
  return id;
}

std::uint64_t SafetyRails::insert_silence(Silence s) {
  if (silences_.size() >= kMaxSilences) return 0;
  s.id = next_silence_id_++;
  audit_change(AuditKind::kSilenced, nullptr,
               "silence " + std::to_string(s.id) + " by " +
                   (s.author.empty() ? std::string("(unknown)") : s.author) + " for " +
                   seconds_text(s.until - s.from) + ": " + s.reason);
  const std::uint64_t id = s.id;
  silences_.emplace(id, std::move(s));
  return id;
}

std::chrono::system_clock::time_point SafetyRails::wall_now() const {
  return config_.wall_clock ? config_.wall_clock() : std::chrono::system_clock::now();
}

void SafetyRails::open_windows(ns now) {
  if (calendar_.empty()) return;
  const auto wall = wall_now();
  for (const auto& o : calendar_.due(wall)) {
    const MaintenanceWindow& w = *o.window;
    if (o.previous != 0 && silences_.erase(o.previous) != 0) {
      audit_change(
          AuditKind::kSilenced, nullptr,
          "silence " + std::to_string(o.previous) + " ended: " + w.reason + " started again");
    }
    const ns until = now + std::chrono::duration_cast<ns>(o.end - wall);
    calendar_.opened(o, insert_silence(Silence{.match = w.match,
                                               .from = now,
                                               .until = until,
                                               .reason = w.reason,
                                               .author = w.author}));
  }
}

void SafetyRails::add_maintenance_window(MaintenanceWindow window) {
  const std::string name = window.name;
  LockGuard lock(decisions_mu_);
  calendar_.add(std::move(window), wall_now());
  audit_change(AuditKind::kSilenced, nullptr, "maintenance window '" + name + "' added");
  open_windows(state_.now());
}

bool SafetyRails::remove_maintenance_window(std::string_view name) {
  LockGuard lock(decisions_mu_);
  const auto last = calendar_.remove(name);
  if (!last) return false;
  std::string what = "maintenance window '" + std::string(name) + "' removed";
  if (*last != 0 && silences_.erase(*last) != 0)
    what += ", ending silence " + std::to_string(*last);
  audit_change(AuditKind::kSilenced, nullptr, std::move(what));
  return true;
}

std::vector<MaintenanceWindowStatus> SafetyRails::maintenance_windows() {
  const ns now = state_.now();
  LockGuard lock(decisions_mu_);
  open_windows(now);
  std::vector<MaintenanceWindowStatus> out = calendar_.status();
  for (auto& st : out) {
    const auto it = silences_.find(st.silence_id);
    st.active = it != silences_.end() && it->second.until > now;
  }
  return out;
}

bool SafetyRails::unsilence(std::uint64_t id) {
  LockGuard lock(decisions_mu_);
  if (silences_.erase(id) == 0) return false;
  audit_change(AuditKind::kSilenced, nullptr, "silence " + std::to_string(id) + " ended early");
  return true;
}

std::vector<Silence> SafetyRails::silences() {
  const ns now = state_.now();
  LockGuard lock(decisions_mu_);
  open_windows(now);
  std::vector<Silence> out;
  for (const auto& [id, s] : silences_)
    if (s.until > now) out.push_back(s);
  return out;
}

void SafetyRails::add_dependency(const SubjectRef& child, const SubjectRef& parent) {
  for (const SubjectRef* r : {&child, &parent})
    if (r->type.empty() || r->id.empty())
      throw std::invalid_argument("halo::Engine::add_dependency: empty subject type or id ('" +
                                  r->type + "', '" + r->id + "')");
  if (child.type == parent.type && child.id == parent.id)
    throw std::invalid_argument("halo::Engine::add_dependency: " + child.type + " " + child.id +
                                " cannot depend on itself");
  const std::uint64_t c = fingerprint(child.type, child.id);
  const std::uint64_t p = fingerprint(parent.type, parent.id);
  LockGuard lock(decisions_mu_);
  auto& deps = parents_[c];
  for (const Dependency& d : deps)
    if (d.parent == p) return;
  deps.push_back({p, weak_point_id(p)});
}

bool SafetyRails::remove_dependency(const SubjectRef& child, const SubjectRef& parent) {
  const std::uint64_t c = fingerprint(child.type, child.id);
  const std::uint64_t p = fingerprint(parent.type, parent.id);
  LockGuard lock(decisions_mu_);
  auto it = parents_.find(c);
  if (it == parents_.end()) return false;
  const auto before = it->second.size();
  std::erase_if(it->second, [&](const Dependency& d) { return d.parent == p; });
  const bool removed = it->second.size() != before;
  if (it->second.empty()) parents_.erase(it);
  if (parents_.empty()) unhealthy_parents_.clear();
  return removed;
}

void SafetyRails::forget_in_flight() {
  LockGuard lock(outcomes_mu_);
  const ns now = state_.now();
  for (const auto& [id, f] : in_flight_) {
    in_flight_by_wp_.erase(f.fingerprint);
    --in_flight_by_type_[f.type];
    if (auto l = lives_.find(f.fingerprint); l != lives_.end())
      transition(l->second, WeakPointState::kOpen, "the executor went away", now);
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

SafetyRails::Counts SafetyRails::counts() {
  Counts c;
  {
    const ns now = state_.now();
    LockGuard decisions(decisions_mu_);
    open_windows(now);
    c.pending_approvals = approvals_.size();
    c.suppressed_by_reason = suppressed_by_reason_;
    c.silences = silences_.size();
    c.maintenance_windows = calendar_.size();
  }
  LockGuard lock(outcomes_mu_);
  c.in_flight = in_flight_by_wp_.size();
  c.dispatched = dispatched_;
  c.succeeded = succeeded_;
  c.failed = failed_;
  c.escalations = escalations_;
  c.heals = heals_;
  c.breaker_open = breaker_open_;
  c.breaker_reason = breaker_reason_;
  for (std::size_t s = 0; s < kWeakPointStates; ++s)
    c.by_state[std::string(to_string(static_cast<WeakPointState>(s)))] = by_state_[s];
  for (std::size_t f = 0; f < std::size(kWeakPointFlags); ++f)
    c.by_flag[std::string(to_string(kWeakPointFlags[f]))] = by_flag_[f];
  c.lives.reserve(lives_.size());
  for (const auto& [fp, l] : lives_) {
    c.lives.push_back(WeakPointLife{.weak_point = l.weak_point,
                                    .subject_type = l.subject_type,
                                    .subject_id = l.subject_id,
                                    .state = l.state,
                                    .flags = l.flags,
                                    .repairs = static_cast<std::uint32_t>(l.repairs.size()),
                                    .step = l.step,
                                    .flaps = static_cast<std::uint32_t>(l.flaps.size()),
                                    .since = l.since_wall,
                                    .reason = l.reason});
  }
  std::sort(c.lives.begin(), c.lives.end(), [](const WeakPointLife& a, const WeakPointLife& b) {
    return a.weak_point < b.weak_point;
  });
  return c;
}

}  // namespace halo::detail

// The rails' per-cycle review: verification of repairs that reported success, flapping,
// escalation's automatic clearing, lost repairs, the systemic breaker and the dependency
// parents that inhibit their children (see detail/safety_rails.hpp).
#include <algorithm>
#include <cmath>

#include "detail/safety_rails.hpp"

namespace halo::detail {

using octo::detail::LockGuard;

namespace {

// The weak point with this fingerprint in a fingerprint-ordered cycle, or nullptr.
WeakPoint* find_weak_point(std::vector<WeakPoint>& wps, std::uint64_t fp) {
  auto it = std::lower_bound(wps.begin(), wps.end(), fp, [](const WeakPoint& wp, std::uint64_t f) {
    return wp.fingerprint < f;
  });
  return it != wps.end() && it->fingerprint == fp ? &*it : nullptr;
}

}  // namespace

void SafetyRails::review(CycleResult& cycle, const Snapshot& snapshot, ns now,
                         const TypeCounts& unhealthy, std::vector<octo::TaskId>& cancel) {
  auto& wps = cycle.weak_points;
  const bool judge = cycle.mode == Mode::kFull;
  LockGuard decisions(decisions_mu_);
  LockGuard lock(outcomes_mu_);

  // Lost repairs: no outcome within repair_timeout.
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (now - it->second.dispatched_at < config_.repair_timeout) {
      ++it;
      continue;
    }
    InFlight f = std::move(it->second);
    cancel.push_back(it->first);
    it = in_flight_.erase(it);
    release(f);
    ++failed_;
    Life& life = life_of(f.fingerprint, f.weak_point, {}, f.subject);
    repair_failed(f.fingerprint, life,
                  f.task_type + " had no outcome within " + seconds_text(config_.repair_timeout),
                  now);
  }

  by_state_.fill(0);
  by_flag_.fill(0);
  std::vector<std::uint64_t> healed_now;  // parents whose children verify with them
  for (auto it = lives_.begin(); it != lives_.end();) {
    Life& life = it->second;
    const std::uint64_t fp = it->first;
    WeakPoint* wp = find_weak_point(wps, fp);
    const WeakPointState before = life.state;
    while (!life.flaps.empty() && now - life.flaps.front() >= config_.flap_window)
      life.flaps.pop_front();
    if (life.flaps.empty()) life.flags &= static_cast<std::uint8_t>(~kFlapping);
    if (judge) {
      switch (life.state) {
        case WeakPointState::kVerifying: {
          const auto ev = state_.evidence_at(snapshot, life.subject_type, life.subject_id, needs_);
          const bool fresh = ev && *ev > life.finished;
          const bool timed_out = now - life.finished >= verify_timeout_;
          if (fresh && wp == nullptr) {
            healed(fp, life, "healthy on evidence gathered after the repair", now);
          } else if (fresh || (timed_out && wp != nullptr)) {
            repair_failed(fp, life,
                          std::string(fresh ? "still unhealthy after the repair: "
                                            : "still unhealthy at verify_timeout: ") +
                              wp->summary,
                          now);
          } else if (timed_out) {
            healed(fp, life, "healthy at verify_timeout (no newer evidence)", now);
          }
          break;
        }
        case WeakPointState::kHealed:
          if (wp != nullptr) {
            // Broken again: a flap when it healed within flap_window.
            std::string why = "unhealthy again";
            if (now - life.healed_at < config_.flap_window) {
              life.flaps.push_back(now);
              life.flags |= kFlapping;
              const int shift = static_cast<int>(std::min<std::size_t>(life.flaps.size() - 1, 30));
              life.hold_until =
                  now + std::min<ns>(config_.backoff_max,
                                     config_.backoff_base * (std::int64_t{1} << shift));
              why += " " + seconds_text(now - life.healed_at) + " after healing (flap " +
                     std::to_string(life.flaps.size()) + " within " +
                     seconds_text(config_.flap_window) + ")";
            }
            if (life.flaps.size() > config_.flap_threshold) {
              transition(life, WeakPointState::kEscalated, why + ": over flap_threshold", now);
            } else {
              transition(life, WeakPointState::kOpen, why, now);
            }
          }
          break;
        case WeakPointState::kEscalated:
          if (wp != nullptr) {
            life.healthy_since = ns{-1};
          } else if (life.healthy_since < ns{0}) {
            life.healthy_since = now;
          } else if (config_.auto_clear_after > ns{0} &&
                     now - life.healthy_since >= config_.auto_clear_after) {
            life.repairs.clear();
            life.flaps.clear();
            life.flags = 0;
            healed(fp, life, "healthy for " + seconds_text(config_.auto_clear_after) + ": cleared",
                   now);
          }
          break;
        case WeakPointState::kOpen:
          if (wp == nullptr) healed(fp, life, "healthy again without a repair", now);
          break;
        case WeakPointState::kRepairing:
          break;
      }
    }
    if (before != WeakPointState::kHealed && life.state == WeakPointState::kHealed &&
        !parents_.empty())
      healed_now.push_back(fp);
    // Forgotten once nothing about it counts any more: healed, no repair in the budget window,
    // no flap in its window, and quiet for a flap window.
    if (life.state == WeakPointState::kHealed && wp == nullptr && life.flaps.empty() &&
        repairs_in_budget(life, now) == 0 && now - life.since >= config_.flap_window) {
      it = lives_.erase(it);
      continue;
    }
    if (wp != nullptr) {
      wp->state = life.state;
      wp->flags = life.flags;
      wp->step = life.step;
    }
    if ((life.flags & kFlapping) != 0) ++by_flag_[0];
    ++it;
  }
  // A healed parent's repair covers its children: those unhealthy now, or turning up unhealthy
  // within verify_timeout of the heal (evidence from the outage lingers in their windows, and
  // records can arrive late), verify on evidence after this moment instead of being repaired
  // themselves. Once per child and heal: a child still unhealthy at its verify_timeout is repaired.
  for (const std::uint64_t parent : healed_now) healed_parents_[parent] = HealedParent{now, {}};
  for (auto hp = healed_parents_.begin(); hp != healed_parents_.end();) {
    const std::uint64_t parent = hp->first;
    auto l = lives_.find(parent);
    if (now - hp->second.at >= verify_timeout_ || l == lives_.end() ||
        l->second.state != WeakPointState::kHealed) {
      hp = healed_parents_.erase(hp);  // too long ago, forgotten, or broken again
      continue;
    }
    for (const auto& [child, deps] : parents_) {
      if (hp->second.covered.count(child) != 0 ||
          std::none_of(deps.begin(), deps.end(),
                       [&](const Dependency& d) { return d.parent == parent; }))
        continue;
      WeakPoint* wp = find_weak_point(wps, child);
      if (wp == nullptr || in_flight_by_wp_.count(child) != 0) continue;
      Life& life = life_of(child, wp->id, wp->subject_type, wp->subject_id);
      hp->second.covered.insert(child);
      if (life.state == WeakPointState::kVerifying || life.state == WeakPointState::kEscalated)
        continue;
      state_.mark_repaired(life.subject_type, life.subject_id);
      life.finished = now;
      transition(life, WeakPointState::kVerifying,
                 "its parent " + l->second.weak_point + " healed " +
                     seconds_text(now - hp->second.at) +
                     " ago: verifying without a repair of its own",
                 now);
      wp->state = life.state;
    }
    ++hp;
  }
  // Per state: every weak point without a life is open; the lives (few) count their own, seen
  // or not. Not a pass over the weak points: a million of them cost milliseconds to touch.
  std::size_t seen = 0;
  for (const auto& [fp, life] : lives_) {
    ++by_state_[static_cast<std::size_t>(life.state)];
    seen += find_weak_point(wps, fp) != nullptr ? 1 : 0;
  }
  by_state_[static_cast<std::size_t>(WeakPointState::kOpen)] += wps.size() - seen;

  // Parents whose children are inhibited: unhealthy now, or under repair.
  unhealthy_parents_.clear();
  for (const auto& [child, deps] : parents_) {
    for (const Dependency& d : deps) {
      bool bad = find_weak_point(wps, d.parent) != nullptr;
      if (!bad) {
        auto l = lives_.find(d.parent);
        bad = l != lives_.end() && l->second.state != WeakPointState::kHealed &&
              l->second.state != WeakPointState::kOpen;
      }
      if (bad) unhealthy_parents_.insert(d.parent);
    }
  }

  // Blast-radius caps: a share of each type's subjects (at least one; user types: of their
  // weak points).
  TypeCounts subjects = subject_counts(snapshot);
  subjects[kOtherType] = unhealthy[kOtherType];
  for (std::size_t t = 0; t < caps_.size(); ++t)
    caps_[t] = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::floor(static_cast<double>(subjects[t]) *
                                               config_.blast_radius_percent / 100.0)));
  review_breaker(cycle, snapshot, now, unhealthy);
}

void SafetyRails::review_breaker(CycleResult& cycle, const Snapshot& snapshot, ns now,
                                 const TypeCounts& unhealthy) {
  std::string reason;
  const TypeCounts subjects = subject_counts(snapshot);
  for (std::size_t t = 0; t < kSubjectTypes.size() && reason.empty(); ++t) {
    if (subjects[t] < config_.breaker_min_subjects) continue;
    if (static_cast<double>(unhealthy[t]) * 100.0 >
        config_.max_unhealthy_percent * static_cast<double>(subjects[t]))
      reason = std::to_string(unhealthy[t]) + " of " + std::to_string(subjects[t]) + " " +
               std::string(kSubjectTypes[t]) + " subjects unhealthy (over " +
               std::to_string(static_cast<int>(config_.max_unhealthy_percent)) + "%)";
  }
  while (!verdicts_.empty() && now - verdicts_.front().first >= config_.breaker_window)
    verdicts_.pop_front();
  const auto failed = static_cast<std::size_t>(
      std::count_if(verdicts_.begin(), verdicts_.end(), [](const auto& v) { return v.second; }));
  if (reason.empty() && verdicts_.size() >= config_.breaker_min_repairs &&
      static_cast<double>(failed) >
          config_.breaker_failure_ratio * static_cast<double>(verdicts_.size()))
    reason = std::to_string(failed) + " of the last " + std::to_string(verdicts_.size()) +
             " repairs failed within " + seconds_text(config_.breaker_window);

  auto event = [&](EventKind kind, std::string why) {
    audit_change(AuditKind::kBreaker, nullptr, std::string(to_string(kind)) + ": " + why);
    if (emit_)
      emit_(
          Event{.kind = kind, .when = std::chrono::system_clock::now(), .reason = std::move(why)});
  };
  if (!reason.empty()) {
    below_since_ = ns{-1};
    if (!breaker_open_) {
      breaker_open_ = true;
      event(EventKind::kBreakerOpened, reason);
    }
    breaker_reason_ = std::move(reason);
  } else if (breaker_open_) {
    if (below_since_ < ns{0}) below_since_ = now;
    if (now - below_since_ >= config_.breaker_settle) {
      breaker_open_ = false;
      event(EventKind::kBreakerClosed, "below the levels for " + seconds_text(now - below_since_) +
                                           " (was: " + breaker_reason_ + ")");
      breaker_reason_.clear();
      below_since_ = ns{-1};
    }
  }
  cycle.breaker = breaker_open_ ? breaker_reason_ : std::string();
}

}  // namespace halo::detail

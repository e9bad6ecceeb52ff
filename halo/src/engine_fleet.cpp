// The engine's fleet part (halo/fleet.hpp): quorum on shared subjects, their leases, the
// fleet's silences mirrored into the rails.
#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>

#include "detail/engine_internals.hpp"
#include "detail/fleet_link.hpp"
#include "detail/safety_rails.hpp"
#include "halo/engine.hpp"

namespace halo {

using octo::detail::LockGuard;

namespace {

std::string subject_key(std::string_view type, std::string_view id) {
  std::string key;
  key.reserve(type.size() + 1 + id.size());
  key.append(type).append(":").append(id);
  return key;
}

// Saturates: a silence "until nanoseconds::max()" (forever) lands on time_point::max(), which the
// fleet then refuses by name, instead of overflowing into a time in the past.
std::chrono::system_clock::time_point to_wall(std::chrono::nanoseconds t,
                                              std::chrono::nanoseconds state_now,
                                              std::chrono::system_clock::time_point wall_now) {
  using Wall = std::chrono::system_clock::time_point;
  std::int64_t offset = 0;
  std::int64_t at = 0;
  if (__builtin_sub_overflow(t.count(), state_now.count(), &offset))
    return t > state_now ? Wall::max() : Wall::min();
  const auto d = std::chrono::duration_cast<Wall::duration>(std::chrono::nanoseconds(offset));
  if (__builtin_add_overflow(wall_now.time_since_epoch().count(), d.count(), &at))
    return d.count() > 0 ? Wall::max() : Wall::min();
  return Wall(Wall::duration(at));
}

std::chrono::nanoseconds to_state(std::chrono::system_clock::time_point t,
                                  std::chrono::nanoseconds state_now,
                                  std::chrono::system_clock::time_point wall_now) {
  return state_now + std::chrono::duration_cast<std::chrono::nanoseconds>(t - wall_now);
}

AuditEntry fleet_entry(std::string cycle_id, std::string subject, std::string reason) {
  return AuditEntry{.kind = AuditKind::kFleet,
                    .cycle_id = std::move(cycle_id),
                    .subject = std::move(subject),
                    .reason = std::move(reason)};
}

}  // namespace

void Engine::share(const SubjectRef& subject) {
  if (fleet_ == nullptr)
    throw std::invalid_argument("halo::Engine::share: " + subject_key(subject.type, subject.id) +
                                ": no fleet configured (EngineConfig::fleet)");
  if (subject.type.empty() || subject.id.empty())
    throw std::invalid_argument("halo::Engine::share: subject '" +
                                subject_key(subject.type, subject.id) + "' needs a type and an id");
  LockGuard lock(fleet_->mu);
  fleet_->shared[fingerprint(subject.type, subject.id)] = {subject_key(subject.type, subject.id)};
}

bool Engine::unshare(const SubjectRef& subject) {
  if (fleet_ == nullptr) return false;
  LockGuard lock(fleet_->mu);
  return fleet_->shared.erase(fingerprint(subject.type, subject.id)) != 0;
}

std::uint64_t Engine::silence(Silence silence) {
  if (!silence.fleet) return rails_->silence(std::move(silence));
  if (fleet_ == nullptr)
    throw std::invalid_argument(
        "halo::Engine::silence: fleet = true without a fleet configured "
        "(EngineConfig::fleet)");
  if (silence.until <= silence.from)
    throw std::invalid_argument("halo::Engine::silence: until (" +
                                std::to_string(silence.until.count()) + " ns) is not after from (" +
                                std::to_string(silence.from.count()) + " ns)");
  if (silence.reason.empty()) throw std::invalid_argument("halo::Engine::silence: reason is empty");
  const auto now = state_.now();
  const auto wall = std::chrono::system_clock::now();
  FleetSilence f{.match = silence.match,
                 .from = to_wall(silence.from, now, wall),
                 .until = to_wall(silence.until, now, wall),
                 .reason = silence.reason,
                 .author = silence.author};
  std::string error;
  const std::string fleet_id = fleet_->fleet->add_silence(f, error);
  if (fleet_id.empty())
    throw std::invalid_argument("halo::Engine::silence: the fleet refused it: " + error);
  const std::uint64_t id = rails_->silence(std::move(silence));
  LockGuard lock(fleet_->mu);
  fleet_->mirrored[fleet_id] = id;
  return id;
}

bool Engine::unsilence(std::uint64_t silence_id) {
  if (fleet_ != nullptr) {
    std::string fleet_id;
    {
      LockGuard lock(fleet_->mu);
      for (auto it = fleet_->mirrored.begin(); it != fleet_->mirrored.end(); ++it)
        if (it->second == silence_id) {
          fleet_id = it->first;
          fleet_->mirrored.erase(it);
          break;
        }
    }
    if (!fleet_id.empty()) fleet_->fleet->remove_silence(fleet_id);
  }
  return rails_->unsilence(silence_id);
}

void Engine::fleet_detect(CycleResult& cycle) {
  detail::FleetLink& f = *fleet_;
  auto& wps = cycle.weak_points;  // in fingerprint order
  auto find = [&](std::uint64_t fp) -> WeakPoint* {
    auto it = std::lower_bound(wps.begin(), wps.end(), fp, [](const WeakPoint& w, std::uint64_t v) {
      return w.fingerprint < v;
    });
    return it != wps.end() && it->fingerprint == fp ? &*it : nullptr;
  };
  std::vector<FleetVerdict> verdicts;
  std::vector<WeakPoint*> seen;  // per verdict: this instance's weak point, or null
  std::vector<FleetLease> renew;
  std::vector<std::uint64_t> renew_fps;
  // A light cycle skips the analyzers that are not light(), and an analyzer that threw looked at
  // nothing: then that the cycle found no weak point on a subject says nothing of the subject's
  // health, so it publishes its unhealthy verdicts only.
  const bool partial = cycle.mode == Mode::kLight ||
                       std::any_of(cycle.analysis.begin(), cycle.analysis.end(),
                                   [](const AnalyzerResult& a) { return !a.error.empty(); });
  {
    LockGuard lock(f.mu);
    verdicts.reserve(f.shared.size());
    seen.reserve(f.shared.size());
    for (const auto& [fp, s] : f.shared) {
      WeakPoint* wp = find(fp);
      if (partial && wp == nullptr) continue;
      verdicts.push_back({s.key, wp != nullptr});
      seen.push_back(wp);
    }
    for (const auto& [fp, h] : f.held) {
      if (h.lost) continue;
      renew.push_back(h.lease);
      renew_fps.push_back(fp);
    }
  }
  FleetSyncResult r = f.fleet->sync(verdicts, renew);

  std::vector<AuditEntry> audits;
  std::vector<Event> events;
  std::vector<FleetSilence> to_mirror;
  std::vector<std::uint64_t> to_end;
  bool rewritten = false;
  {
    LockGuard lock(f.mu);
    if (!r.ok) {
      ++f.unavailable_cycles;
      if (f.available || !f.known) {
        audits.push_back(fleet_entry(
            cycle.id, {}, "fleet unavailable: " + r.error + "; shared subjects are only reported"));
        events.push_back(Event{.kind = EventKind::kFleetUnavailable,
                               .when = std::chrono::system_clock::now(),
                               .reason = r.error,
                               .cycle_id = cycle.id});
      }
      f.available = false;
      f.known = true;
      f.reason = std::move(r.error);
      // Detection goes on alone (every shared weak point stays); fleet_claim refuses repairs.
    } else {
      if (!f.available && f.known) {
        audits.push_back(fleet_entry(cycle.id, {}, "fleet rejoined"));
        events.push_back(Event{.kind = EventKind::kFleetRejoined,
                               .when = std::chrono::system_clock::now(),
                               .reason = "fleet rejoined after: " + f.reason,
                               .cycle_id = cycle.id});
      }
      f.available = true;
      f.known = true;
      f.reason.clear();
      f.peers = std::move(r.peers);
      if (partial) {
        // The subjects it did not publish keep their last view.
        std::set<std::string_view> sent;
        for (const auto& v : verdicts) sent.insert(v.subject);
        std::erase_if(f.views, [&](const FleetSubjectStatus& v) { return sent.count(v.subject); });
      } else {
        f.views.clear();
      }
      for (std::size_t k = 0; k < verdicts.size(); ++k) {
        const FleetSubjectView& v = r.views[k];
        const std::uint32_t quorum =
            config_.fleet_quorum != 0 ? config_.fleet_quorum : v.reporters / 2 + 1;
        // A lone reporter decides alone; otherwise the quorum of the reporters.
        const bool confirmed = v.reporters <= 1 || v.unhealthy >= quorum;
        if (v.unhealthy > 0 || !v.holder.empty())
          f.views.push_back({verdicts[k].subject, v.reporters, v.unhealthy, quorum,
                             verdicts[k].unhealthy, v.holder});
        WeakPoint* wp = seen[k];
        if (wp == nullptr || confirmed) continue;
        // Seen broken here only: this instance's own path to it is the weak point.
        ++f.path_weak_points;
        wp->summary = "dependency unreachable from this instance: " + verdicts[k].subject +
                      " (unhealthy for " + std::to_string(v.unhealthy) + " of " +
                      std::to_string(v.reporters) + " instances, quorum " + std::to_string(quorum) +
                      ")";
        wp->subject_id = verdicts[k].subject;
        wp->subject_type = "path";
        wp->fingerprint = fingerprint(wp->subject_type, wp->subject_id);
        wp->id = weak_point_id(wp->fingerprint);
        rewritten = true;
      }
      for (std::size_t k = 0; k < renew.size(); ++k) {
        if (r.renewed[k]) continue;
        auto it = f.held.find(renew_fps[k]);
        if (it == f.held.end()) continue;
        it->second.lost = true;
        ++f.leases_lost;
        audits.push_back(fleet_entry(cycle.id, renew[k].subject,
                                     "lease on " + renew[k].subject + " (token " +
                                         std::to_string(renew[k].token) +
                                         ") lost: expired or taken over"));
      }
      std::set<std::string> live;
      for (auto& s : r.silences) {
        live.insert(s.id);
        if (f.mirrored.count(s.id) == 0) to_mirror.push_back(std::move(s));
      }
      for (auto it = f.mirrored.begin(); it != f.mirrored.end();) {
        if (live.count(it->first) != 0) {
          ++it;
          continue;
        }
        to_end.push_back(it->second);
        it = f.mirrored.erase(it);
      }
    }
  }
  if (rewritten)
    std::sort(wps.begin(), wps.end(),
              [](const WeakPoint& a, const WeakPoint& b) { return a.fingerprint < b.fingerprint; });
  for (const std::uint64_t id : to_end) rails_->unsilence(id);
  if (!to_mirror.empty()) {
    const auto now = state_.now();
    const auto wall = std::chrono::system_clock::now();
    for (auto& s : to_mirror) {
      Silence local{.match = s.match,
                    .from = to_state(s.from, now, wall),
                    .until = to_state(s.until, now, wall),
                    .reason = s.reason + " (fleet silence " + s.id + " from " + s.instance + ")",
                    .author = s.author,
                    .fleet = true};
      if (local.until <= local.from) continue;
      try {
        const std::uint64_t id = rails_->silence(std::move(local));
        LockGuard lock(f.mu);
        f.mirrored[s.id] = id;
      } catch (const std::invalid_argument& e) {
        audits.push_back(
            fleet_entry(cycle.id, {}, "fleet silence " + s.id + " not mirrored: " + e.what()));
      }
    }
  }
  if (!audits.empty()) audit_.append(std::move(audits));
  for (auto& e : events) emit(std::move(e));
}

void Engine::fleet_claim(CycleResult& cycle, const std::vector<std::size_t>& sent) {
  detail::FleetLink& f = *fleet_;
  // Held leases whose repair has ended (healed, failed, or never sent) are settled now.
  std::vector<std::pair<std::uint64_t, FleetLease>> held;
  std::vector<std::size_t> shared;  // indices into cycle.generated_tasks
  std::vector<std::string> claims;
  bool available = false;
  std::string reason;
  {
    LockGuard lock(f.mu);
    available = f.available;
    reason = f.reason;
    for (const auto& [fp, h] : f.held) held.emplace_back(fp, h.lease);
    for (const std::size_t i : sent) {
      const auto it = f.shared.find(cycle.generated_tasks[i].fingerprint);
      if (it == f.shared.end()) continue;
      shared.push_back(i);
      claims.push_back(it->second.key);
    }
  }
  std::vector<FleetOutcome> outcomes;
  std::vector<std::uint64_t> outcome_fps;
  for (const auto& [fp, lease] : held) {
    const auto state = rails_->life_state(fp);
    if (state == WeakPointState::kRepairing || state == WeakPointState::kVerifying) continue;
    outcomes.push_back({lease, state == WeakPointState::kHealed});
    outcome_fps.push_back(fp);
  }
  if (outcomes.empty() && claims.empty()) return;

  auto refuse = [&](std::size_t i, std::string why) {
    DispatchResult& d = cycle.dispatch_results[i];
    d.status = DispatchStatus::kSuppressed;
    d.reason = std::move(why);
  };
  FleetExchangeResult r;
  if (available) {
    const SafetyConfig& s = config_.safety;
    auto ms = [](std::chrono::nanoseconds d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d);
    };
    r = f.fleet->exchange(outcomes, claims,
                          FleetRails{.max_repairs = s.max_repairs,
                                     .budget_window = ms(s.budget_window),
                                     .repairs_per_second = s.repairs_per_second,
                                     .repair_burst = s.repair_burst,
                                     .breaker_window = ms(s.breaker_window),
                                     .breaker_min_repairs = s.breaker_min_repairs,
                                     .breaker_failure_ratio = s.breaker_failure_ratio});
    if (!r.ok) reason = r.error;
  }
  std::vector<AuditEntry> audits;
  std::size_t refused = 0;
  {
    LockGuard lock(f.mu);
    if (!r.ok) {
      // Outcomes wait for the next exchange; no shared repair without the fleet.
      if (available) {
        f.available = false;
        f.reason = reason;
        audits.push_back(fleet_entry(cycle.id, {}, "fleet unavailable: " + reason));
      }
      for (const std::size_t i : shared) {
        refuse(i, "fleet-unavailable: " + reason);
        ++f.suppressed["fleet-unavailable"];
      }
      refused = shared.size();
    } else {
      for (std::size_t k = 0; k < outcomes.size(); ++k) {
        const FleetOutcome& o = outcomes[k];
        f.held.erase(outcome_fps[k]);
        const std::string what = std::string(o.healed ? "healed" : "failed") + " (token " +
                                 std::to_string(o.lease.token) + ")";
        if (r.accepted[k]) {
          ++f.outcomes_written;
          audits.push_back(fleet_entry(cycle.id, o.lease.subject,
                                       "outcome of " + o.lease.subject + " written: " + what));
        } else {
          ++f.outcomes_rejected;
          audits.push_back(fleet_entry(cycle.id, o.lease.subject,
                                       "outcome of " + o.lease.subject + " rejected as stale: " +
                                           what + "; another instance took the repair over"));
        }
      }
      for (std::size_t k = 0; k < shared.size(); ++k) {
        const FleetClaimResult& c = r.claims[k];
        const std::size_t i = shared[k];
        const GeneratedTask& gt = cycle.generated_tasks[i];
        if (c.refusal == FleetRefusal::kNone) {
          f.held[gt.fingerprint] = {FleetLease{claims[k], c.token}, false};
          ++f.leases_granted;
          audits.push_back(fleet_entry(
              cycle.id, claims[k],
              "lease on " + claims[k] + " granted (token " + std::to_string(c.token) + ")"));
          continue;
        }
        ++refused;
        ++f.suppressed[std::string(to_string(c.refusal))];
        switch (c.refusal) {
          case FleetRefusal::kHeldElsewhere:
            ++f.repairing_elsewhere;
            refuse(i, "repairing elsewhere (" + c.holder + ")");
            break;
          case FleetRefusal::kBudget:
            refuse(i, "fleet-budget (" + c.holder + " repairs in the window)");
            break;
          case FleetRefusal::kBreakerOpen:
            refuse(i, "fleet-breaker-open (" + c.holder + " failed)");
            break;
          case FleetRefusal::kStaleEvidence:
            refuse(i, "repaired elsewhere since this instance last looked (" + c.holder + ")");
            break;
          default:
            refuse(i, std::string(to_string(c.refusal)));
            break;
        }
      }
    }
  }
  rails_->refund(refused);
  if (!audits.empty()) audit_.append(std::move(audits));
}

}  // namespace halo

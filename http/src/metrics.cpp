#include "halo/http/metrics.hpp"

#include "halo/utf8.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

namespace halo {

namespace {

// Label values escape backslash, quote and newline (exposition format 0.0.4) and are valid UTF-8.
std::string label(std::string_view raw) {
  // Label values must be UTF-8: invalid bytes become U+FFFD first.
  const std::string v = to_valid_utf8(raw);
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The shortest text that reads back as the same double: a bucket bound of 0.005 is
// le="0.005", which a query's exact `le` matches (%.17g printed 0.0050000000000000001).
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

struct Out {
  std::string s;
  void family(const char* name, const char* type, const char* help) {
    s += "# HELP ";
    s += name;
    s += ' ';
    s += help;
    s += "\n# TYPE ";
    s += name;
    s += ' ';
    s += type;
    s += '\n';
  }
  void sample(const std::string& name, const std::string& labels, double v) {
    s += name;
    if (!labels.empty()) s += "{" + labels + "}";
    s += ' ';
    s += num(v);
    s += '\n';
  }
  // One histogram's samples (its family written already): a cumulative bucket per bound in
  // seconds (at_most(bound) counts the values up to it), +Inf, _sum and _count.
  template <class AtMost>
  void histogram(const std::string& name, const std::string& labels, std::span<const double> bounds,
                 AtMost at_most, std::uint64_t count, double sum_seconds) {
    const std::string bucket = name + "_bucket";
    for (const double b : bounds)
      sample(bucket, labels + ",le=\"" + num(b) + "\"", static_cast<double>(at_most(b)));
    sample(bucket, labels + ",le=\"+Inf\"", static_cast<double>(count));
    sample(name + "_sum", labels, sum_seconds);
    sample(name + "_count", labels, static_cast<double>(count));
  }
};

// The per-subject families, bounded by config.top_subjects plus config.subjects.
void subject_families(Out& o, const SystemState& state, const MetricsConfig& config) {
  const auto snap = state.snapshot();
  const auto now = state.now();
  const std::unordered_set<std::string_view> listed(config.subjects.begin(), config.subjects.end());
  // The indices of the rows to export: the listed ones, then the worst by `worse` (on indices)
  // up to the cap.
  auto pick = [&](const auto& table, auto worse) {
    std::vector<std::size_t> chosen, rest;
    for (std::size_t i = 0; i < table.size(); ++i) {
      if (!table[i].present) continue;
      (listed.contains(table[i].id) ? chosen : rest).push_back(i);
    }
    const std::size_t top = std::min(config.top_subjects, rest.size());
    std::partial_sort(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(top), rest.end(),
                      worse);
    chosen.insert(chosen.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(top));
    return chosen;
  };
  struct Traffic {
    std::uint64_t requests = 0, errors = 0;
  };
  std::vector<Traffic> traffic(snap->endpoints.size());
  for (std::size_t i = 0; i < snap->endpoints.size(); ++i)
    if (const auto& c = snap->endpoints[i].counters) {
      const auto w = c->window_counts();
      traffic[i] = {w.requests, w.errors};
    }
  const auto endpoints = pick(snap->endpoints, [&](std::size_t a, std::size_t b) {
    const Traffic& ta = traffic[a];
    const Traffic& tb = traffic[b];
    return ta.errors != tb.errors ? ta.errors > tb.errors : ta.requests > tb.requests;
  });
  const double window_s = std::chrono::duration<double>(state.endpoint_window()).count();
  o.family("octohalo_endpoint_requests_per_second", "gauge",
           "Requests per second over the endpoint window (worst endpoints and listed ones).");
  for (const std::size_t i : endpoints)
    o.sample("octohalo_endpoint_requests_per_second",
             "endpoint=\"" + label(snap->endpoints[i].id) + "\"",
             static_cast<double>(traffic[i].requests) / window_s);
  o.family("octohalo_endpoint_error_ratio", "gauge",
           "Errors / requests over the endpoint window (0 without requests).");
  for (const std::size_t i : endpoints)
    o.sample("octohalo_endpoint_error_ratio", "endpoint=\"" + label(snap->endpoints[i].id) + "\"",
             traffic[i].requests == 0 ? 0.0
                                      : static_cast<double>(traffic[i].errors) /
                                            static_cast<double>(traffic[i].requests));
  // All time (a histogram's buckets are counters; histogram_quantile over a rate() gives a
  // window's percentiles). Bounds in seconds; each count is exact to the endpoint histogram's
  // bucket (1/16) at the bound.
  static constexpr double kLatencyBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,    1,     2.5,  5,     10};
  o.family("octohalo_endpoint_latency_seconds", "histogram",
           "Request latency recorded through the endpoint's counters, all time.");
  for (const std::size_t i : endpoints) {
    const auto& c = snap->endpoints[i].counters;
    if (!c) continue;  // probes only
    const LatencyWindow h = c->latency_total();
    o.histogram(
        "octohalo_endpoint_latency_seconds", "endpoint=\"" + label(snap->endpoints[i].id) + "\"",
        kLatencyBounds, [&](double b) { return h.count_at_most(b * 1000.0); }, h.count,
        static_cast<double>(c->total_latency_sum_us()) / 1e6);
  }
  const auto agents = pick(snap->agents, [&](std::size_t i, std::size_t j) {
    const AgentInfo& a = snap->agents[i];
    const AgentInfo& b = snap->agents[j];
    if (a.online != b.online) return !a.online;
    return a.last_heartbeat < b.last_heartbeat;
  });
  o.family("octohalo_agent_heartbeat_age_seconds", "gauge",
           "Time since the agent's last heartbeat (oldest agents and listed ones).");
  for (const std::size_t i : agents)
    o.sample("octohalo_agent_heartbeat_age_seconds", "agent=\"" + label(snap->agents[i].id) + "\"",
             std::chrono::duration<double>(now - snap->agents[i].last_heartbeat).count());
  o.family("octohalo_agent_online", "gauge", "1 while the agent reports online.");
  for (const std::size_t i : agents)
    o.sample("octohalo_agent_online", "agent=\"" + label(snap->agents[i].id) + "\"",
             snap->agents[i].online ? 1.0 : 0.0);
}

}  // namespace

std::string prometheus_text(const Engine* engine, const octo::Executor* executor,
                            const Triggers* triggers, const MetricsConfig& config) {
  Out o;
  if (executor != nullptr) {
    const auto st = executor->status();
    auto per_arm = [&](const char* name, const char* type, const char* help, auto field) {
      o.family(name, type, help);
      for (const auto& a : st.arms)
        o.sample(name, "arm=\"" + label(a.name) + "\"", static_cast<double>(field(a)));
    };
    using A = octo::ArmStatus;
    per_arm("octohalo_arm_tasks_accepted_total", "counter", "Tasks accepted by the arm.",
            [](const A& a) { return a.accepted; });
    per_arm("octohalo_arm_tasks_succeeded_total", "counter", "Tasks that succeeded.",
            [](const A& a) { return a.succeeded; });
    per_arm("octohalo_arm_tasks_failed_total", "counter", "Failed attempts (each retry too).",
            [](const A& a) { return a.failed; });
    per_arm("octohalo_arm_tasks_retried_total", "counter", "Attempts scheduled for retry.",
            [](const A& a) { return a.retried; });
    per_arm("octohalo_arm_tasks_dead_lettered_total", "counter", "Tasks dead-lettered.",
            [](const A& a) { return a.dead_lettered; });
    per_arm("octohalo_arm_tasks_rejected_total", "counter", "Enqueues refused (full, disabled).",
            [](const A& a) { return a.rejected; });
    per_arm("octohalo_arm_tasks_cancelled_total", "counter", "Tasks cancelled before running.",
            [](const A& a) { return a.cancelled; });
    per_arm("octohalo_arm_pending", "gauge", "Tasks accepted and not finished.",
            [](const A& a) { return a.pending; });
    per_arm("octohalo_arm_delayed", "gauge", "Tasks waiting for a retry delay or their run_at.",
            [](const A& a) { return a.delayed; });
    per_arm("octohalo_arm_waiting_on_key", "gauge",
            "Tasks parked until their key is below the arm's per-key limit.",
            [](const A& a) { return a.waiting_on_key; });
    per_arm("octohalo_arm_enabled", "gauge", "1 while the arm accepts tasks.",
            [](const A& a) { return a.enabled ? 1 : 0; });
    per_arm("octohalo_arm_active", "gauge", "Drainers running tasks now.",
            [](const A& a) { return a.active; });
    per_arm("octohalo_arm_queued", "gauge", "Tasks waiting in the arm's queues.",
            [](const A& a) { return a.queued; });
    per_arm("octohalo_arm_max_parallel", "gauge", "The arm's parallel limit.",
            [](const A& a) { return a.max_parallel; });
    per_arm("octohalo_arm_tasks_expired_total", "counter",
            "Tasks not started by their deadline (dead-lettered as expired).",
            [](const A& a) { return a.expired; });
    per_arm("octohalo_arm_runs_overran_total", "counter",
            "Runs that finished after their timeout or deadline.",
            [](const A& a) { return a.overran; });
    per_arm("octohalo_arm_stuck", "gauge", "Runs now past their timeout or deadline.",
            [](const A& a) { return a.stuck; });
    per_arm("octohalo_arm_paused", "gauge", "1 while the arm holds its queued work.",
            [](const A& a) { return a.paused ? 1 : 0; });
    per_arm("octohalo_arm_threads", "gauge", "A blocking arm's own threads.",
            [](const A& a) { return a.threads; });
    // Every task, since the executor started, in the fixed bounds below (each count is exact to
    // the histogram's bucket, 0.78%, at the bound).
    static constexpr double kBounds[] = {1e-6, 1e-5, 1e-4, 2.5e-4, 1e-3, 2.5e-3, 1e-2, 2.5e-2,
                                         0.1,  0.25, 1,    2.5,    10,   60,     300,  3600};
    std::vector<octo::ArmLatency> latency;
    for (std::size_t i = 0; i < st.arms.size(); ++i)
      latency.push_back(executor->arm_latency(static_cast<octo::ArmId>(i)));
    auto histogram = [&](const char* name, const char* help, auto pick) {
      o.family(name, "histogram", help);
      for (std::size_t i = 0; i < st.arms.size(); ++i) {
        const octo::HistogramSnapshot& h = pick(latency[i]);
        o.histogram(
            name, "arm=\"" + label(st.arms[i].name) + "\"", kBounds,
            [&](double b) { return h.count_at_most(static_cast<std::uint64_t>(b * 1e9)); }, h.count,
            static_cast<double>(h.sum) / 1e9);
      }
    };
    histogram(
        "octohalo_arm_queue_wait_seconds", "From enqueue to start, every task.",
        [](const octo::ArmLatency& l) -> const octo::HistogramSnapshot& { return l.queue_wait; });
    histogram(
        "octohalo_arm_run_time_seconds", "Each run of a task, every run.",
        [](const octo::ArmLatency& l) -> const octo::HistogramSnapshot& { return l.run_time; });
    o.family("octohalo_rejected_unroutable_total", "counter", "Typed tasks no route matched.");
    o.sample("octohalo_rejected_unroutable_total", "", static_cast<double>(st.rejected_unroutable));
  }
  if (triggers != nullptr) {
    const auto ts = triggers->status();
    o.family("octohalo_trigger_fired_total", "counter", "Cycle requests a trigger sent.");
    for (const auto& t : ts.triggers)
      o.sample("octohalo_trigger_fired_total", "trigger=\"" + std::string(to_string(t.kind)) + "\"",
               static_cast<double>(t.fired));
    o.family("octohalo_trigger_suppressed_total", "counter", "Firings held back by a cooldown.");
    for (const auto& t : ts.triggers)
      o.sample("octohalo_trigger_suppressed_total",
               "trigger=\"" + std::string(to_string(t.kind)) + "\"",
               static_cast<double>(t.suppressed));
    o.family("octohalo_window_requests", "gauge", "Requests in the trigger window.");
    o.sample("octohalo_window_requests", "", static_cast<double>(ts.window_requests));
    o.family("octohalo_window_errors", "gauge", "Errors in the trigger window.");
    o.sample("octohalo_window_errors", "", static_cast<double>(ts.window_errors));
    o.family("octohalo_window_error_rate", "gauge", "Errors / requests in the window.");
    o.sample("octohalo_window_error_rate", "", ts.error_rate);
  }
  if (engine != nullptr) {
    const auto es = engine->status();
    o.family("octohalo_cycles_total", "counter", "HALO cycles run, by trigger.");
    for (const auto& [t, n] : es.cycles_by_trigger)
      o.sample("octohalo_cycles_total", "trigger=\"" + label(t) + "\"", static_cast<double>(n));
    o.family("octohalo_cycles_coalesced_total", "counter",
             "Cycle requests folded into another cycle.");
    o.sample("octohalo_cycles_coalesced_total", "", static_cast<double>(es.coalesced));
    o.family("octohalo_cycle_duration_seconds", "histogram", "Wall time of HALO cycles.");
    std::uint64_t count = 0;
    for (const auto& [bound, cumulative] : es.cycle_seconds) {
      o.sample("octohalo_cycle_duration_seconds_bucket", "le=\"" + num(bound) + "\"",
               static_cast<double>(cumulative));
      count = cumulative;
    }
    o.sample("octohalo_cycle_duration_seconds_sum", "", es.cycle_seconds_sum);
    o.sample("octohalo_cycle_duration_seconds_count", "", static_cast<double>(count));
    o.family("octohalo_weak_points_open", "gauge", "Weak points tracked across cycles.");
    o.sample("octohalo_weak_points_open", "", static_cast<double>(es.open_weak_points));
    o.family("octohalo_repairs_total", "counter", "Repairs by what happened to them.");
    o.sample("octohalo_repairs_total", "outcome=\"dispatched\"",
             static_cast<double>(es.repairs_dispatched));
    o.sample("octohalo_repairs_total", "outcome=\"succeeded\"",
             static_cast<double>(es.repairs_succeeded));
    o.sample("octohalo_repairs_total", "outcome=\"failed\"",
             static_cast<double>(es.repairs_failed));
    o.family("octohalo_repairs_suppressed_total", "counter", "Repairs held back, by rail.");
    for (const auto& [why, n] : es.suppressed_by_reason)
      o.sample("octohalo_repairs_suppressed_total", "reason=\"" + label(why) + "\"",
               static_cast<double>(n));
    o.family("octohalo_repairs_in_flight", "gauge", "Repairs dispatched and not finished.");
    o.sample("octohalo_repairs_in_flight", "", static_cast<double>(es.repairs_in_flight));
    o.family("octohalo_pending_approvals", "gauge", "Repairs waiting for approve/reject.");
    o.sample("octohalo_pending_approvals", "", static_cast<double>(es.pending_approvals));
    o.family("octohalo_weak_points", "gauge",
             "Weak points by life-cycle state (the last cycle's and remembered subjects).");
    for (const auto& [state, n] : es.weak_points_by_state)
      o.sample("octohalo_weak_points", "state=\"" + label(state) + "\"", static_cast<double>(n));
    o.family("octohalo_weak_point_flags", "gauge", "Weak points carrying each flag.");
    for (const auto& [flag, n] : es.weak_points_by_flag)
      o.sample("octohalo_weak_point_flags", "flag=\"" + label(flag) + "\"", static_cast<double>(n));
    o.family("octohalo_breaker_open", "gauge", "1 while the systemic breaker pauses repairs.");
    o.sample("octohalo_breaker_open", "", es.breaker_open ? 1.0 : 0.0);
    o.family("octohalo_escalations_total", "counter", "Weak points escalated to people.");
    o.sample("octohalo_escalations_total", "", static_cast<double>(es.escalations));
    o.family("octohalo_heals_total", "counter", "Repairs verified healthy.");
    o.sample("octohalo_heals_total", "", static_cast<double>(es.heals));
    o.family("octohalo_silences", "gauge", "Silences active or scheduled.");
    o.sample("octohalo_silences", "", static_cast<double>(es.silences));
    if (const FleetStatus& f = es.fleet; f.enabled) {
      auto count = [](auto n) { return static_cast<double>(n); };
      o.family("octohalo_fleet_available", "gauge",
               "1 while the fleet (Redis) answers; 0: shared subjects are only reported.");
      o.sample("octohalo_fleet_available", "instance=\"" + label(f.instance) + "\"",
               f.available ? 1.0 : 0.0);
      o.family("octohalo_fleet_peers", "gauge", "Instances of the service with a live heartbeat.");
      o.sample("octohalo_fleet_peers", "", count(f.peers.size()));
      o.family("octohalo_fleet_shared_subjects", "gauge", "Subjects this instance shares.");
      o.sample("octohalo_fleet_shared_subjects", "", count(f.shared_subjects));
      o.family("octohalo_fleet_subject_unhealthy", "gauge",
               "Instances reporting a shared subject unhealthy (subjects some instance sees "
               "unhealthy or that are leased).");
      o.family("octohalo_fleet_subject_reporters", "gauge",
               "Instances reporting on a shared subject.");
      o.family("octohalo_fleet_subject_quorum", "gauge",
               "Unhealthy reports a shared weak point needs.");
      o.family("octohalo_fleet_lease_holder", "gauge",
               "1 for the instance holding the repair lease of a shared subject.");
      for (const auto& v : f.subjects) {
        const std::string subject = "subject=\"" + label(v.subject) + "\"";
        o.sample("octohalo_fleet_subject_unhealthy", subject, count(v.unhealthy));
        o.sample("octohalo_fleet_subject_reporters", subject, count(v.reporters));
        o.sample("octohalo_fleet_subject_quorum", subject, count(v.quorum));
        if (!v.holder.empty())
          o.sample("octohalo_fleet_lease_holder", subject + ",holder=\"" + label(v.holder) + "\"",
                   1.0);
      }
      o.family("octohalo_fleet_leases_held", "gauge", "Repair leases this instance holds.");
      o.sample("octohalo_fleet_leases_held", "", count(f.leases_held));
      o.family("octohalo_fleet_leases_total", "counter",
               "Repair leases granted to or lost by this instance.");
      o.sample("octohalo_fleet_leases_total", "event=\"granted\"", count(f.leases_granted));
      o.sample("octohalo_fleet_leases_total", "event=\"lost\"", count(f.leases_lost));
      o.family("octohalo_fleet_outcomes_total", "counter",
               "Repair outcomes written back, or rejected by their fencing token.");
      o.sample("octohalo_fleet_outcomes_total", "result=\"written\"", count(f.outcomes_written));
      o.sample("octohalo_fleet_outcomes_total", "result=\"rejected\"", count(f.outcomes_rejected));
      o.family("octohalo_fleet_repairing_elsewhere_total", "counter",
               "Shared repairs not dispatched here because another instance holds the lease.");
      o.sample("octohalo_fleet_repairing_elsewhere_total", "", count(f.repairing_elsewhere));
      o.family("octohalo_fleet_path_weak_points_total", "counter",
               "Shared subjects seen unhealthy here only: this instance's path is the weak point.");
      o.sample("octohalo_fleet_path_weak_points_total", "", count(f.path_weak_points));
      o.family("octohalo_fleet_unavailable_cycles_total", "counter",
               "Cycles that could not reach the fleet.");
      o.sample("octohalo_fleet_unavailable_cycles_total", "", count(f.unavailable_cycles));
      o.family("octohalo_fleet_round_trips_total", "counter", "Round trips to the fleet's Redis.");
      o.sample("octohalo_fleet_round_trips_total", "", count(f.round_trips));
    }
    o.family("octohalo_events_total", "counter", "HALO events to subscribers, by outcome.");
    o.sample("octohalo_events_total", "outcome=\"delivered\"",
             static_cast<double>(es.events_delivered));
    o.sample("octohalo_events_total", "outcome=\"dropped\"",
             static_cast<double>(es.events_dropped));
    o.sample("octohalo_events_total", "outcome=\"failed\"", static_cast<double>(es.events_failed));
    subject_families(o, engine->state(), config);
  }
  for (std::size_t w = 0; w < config.writers.size(); ++w) {
    const std::size_t before = o.s.size();
    try {
      if (config.writers[w]) config.writers[w](o.s);
    } catch (...) {
      o.s.resize(before);
      o.s += "# metrics writer " + std::to_string(w) + " failed\n";
    }
    if (o.s.size() > before && o.s.back() != '\n') o.s += '\n';
  }
  return o.s;
}

}  // namespace halo

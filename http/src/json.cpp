#include "halo/http/json.hpp"

namespace halo {

namespace {

nlohmann::json flags_list(std::uint8_t flags) {
  nlohmann::json out = nlohmann::json::array();
  for (const WeakPointFlag f : kWeakPointFlags)
    if ((flags & f) != 0) out.push_back(to_string(f));
  return out;
}

}  // namespace

nlohmann::json to_json(const Silence& s, std::chrono::nanoseconds now) {
  // The state's clock is not wall time: starts and ends are given as offsets from now and as
  // the wall-clock times those offsets make.
  const auto wall = std::chrono::system_clock::now();
  auto at = [&](std::chrono::nanoseconds t) {
    return format_iso8601(wall +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(t - now));
  };
  return {{"id", s.id},
          {"subject_type", s.match.subject_type},
          {"subject_id", s.match.subject_id},
          {"task_type", s.match.task_type},
          {"starts_in_s", std::chrono::duration<double>(s.from - now).count()},
          {"ends_in_s", std::chrono::duration<double>(s.until - now).count()},
          {"starts_at", at(s.from)},
          {"ends_at", at(s.until)},
          {"reason", s.reason},
          {"fleet", s.fleet},
          {"author", s.author}};
}

nlohmann::json to_json(const CycleResult& c) {
  nlohmann::json analysis = nlohmann::json::array();
  for (const auto& a : c.analysis) {
    std::size_t notable = 0;
    for (const auto& i : a.issues) notable += i.severity >= Level::kMedium ? 1 : 0;
    nlohmann::json j = {{"name", a.name},
                        {"issues", notable},
                        {"duration_ms", a.duration_ms},
                        {"recommendations", a.recommendations},
                        {"metrics", a.metrics}};
    if (!a.error.empty()) j["error"] = a.error;
    analysis.push_back(std::move(j));
  }
  nlohmann::json weak_points = nlohmann::json::array();
  for (const auto& wp : c.weak_points) {
    weak_points.push_back({{"id", wp.id},
                           {"subject_type", wp.subject_type},
                           {"subject_id", wp.subject_id},
                           {"severity", to_string(wp.severity)},
                           {"cycles_seen", wp.cycles_seen},
                           {"state", to_string(wp.state)},
                           {"flags", flags_list(wp.flags)},
                           {"step", wp.step},
                           {"summary", wp.summary},
                           {"issues", wp.issues.size()}});
  }
  nlohmann::json tasks = nlohmann::json::array();
  for (std::size_t i = 0; i < c.generated_tasks.size(); ++i) {
    const auto& g = c.generated_tasks[i];
    nlohmann::json t = {{"weak_point", g.weak_point},
                        {"strategy", g.strategy},
                        {"type", g.task.type},
                        {"payload", g.task.payload},
                        {"priority", octo::to_string(g.task.priority)},
                        {"target_agents", *g.task.target_agents}};
    if (i < c.dispatch_results.size()) {
      const auto& d = c.dispatch_results[i];
      t["status"] = to_string(d.status);
      if (!d.reason.empty()) t["reason"] = d.reason;
      if (d.task_id != 0) t["task_id"] = d.task_id;
      if (d.approval_id != 0) t["approval_id"] = d.approval_id;
    }
    tasks.push_back(std::move(t));
  }
  return {{"id", c.id},
          {"timestamp", c.timestamp},
          {"trigger", c.trigger},
          {"coalesced", c.coalesced},
          {"context", c.context},
          {"mode", to_string(c.mode)},
          {"dry_run", c.dry_run},
          {"duration_ms", c.duration_ms},
          {"summary", c.summary.text},
          {"analysis", std::move(analysis)},
          {"weak_points", std::move(weak_points)},
          {"tasks", std::move(tasks)},
          {"errors", c.errors},
          {"breaker", c.breaker.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.breaker)}};
}

nlohmann::json to_json(const EngineStatus& s) {
  nlohmann::json j = {{"running", s.running},
                      {"last_summary", s.last_summary},
                      {"pending_triggers", s.pending_triggers},
                      {"cycles", s.cycles},
                      {"cycles_by_trigger", s.cycles_by_trigger},
                      {"served_by_trigger", s.served_by_trigger},
                      {"coalesced", s.coalesced},
                      {"pending_approvals", s.pending_approvals},
                      {"repairs_in_flight", s.repairs_in_flight},
                      {"open_weak_points", s.open_weak_points},
                      {"repairs_dispatched", s.repairs_dispatched},
                      {"repairs_succeeded", s.repairs_succeeded},
                      {"repairs_failed", s.repairs_failed},
                      {"suppressed_by_reason", s.suppressed_by_reason}};
  j["last_run"] =
      s.last_run ? nlohmann::json(format_iso8601(*s.last_run)) : nlohmann::json(nullptr);
  j["weak_points_by_state"] = s.weak_points_by_state;
  j["weak_points_by_flag"] = s.weak_points_by_flag;
  nlohmann::json lives = nlohmann::json::array();
  for (const auto& l : s.lifecycle)
    lives.push_back({{"weak_point", l.weak_point},
                     {"subject_type", l.subject_type},
                     {"subject_id", l.subject_id},
                     {"state", to_string(l.state)},
                     {"flags", flags_list(l.flags)},
                     {"repairs", l.repairs},
                     {"step", l.step},
                     {"flaps", l.flaps},
                     {"since", format_iso8601(l.since)},
                     {"reason", l.reason}});
  j["lifecycle"] = std::move(lives);
  j["breaker"] = {
      {"open", s.breaker_open},
      {"reason", s.breaker_open ? nlohmann::json(s.breaker_reason) : nlohmann::json(nullptr)}};
  j["silences"] = s.silences;
  j["escalations"] = s.escalations;
  j["heals"] = s.heals;
  j["rejected_issues"] = s.rejected_issues;
  const FleetStatus& f = s.fleet;
  nlohmann::json fleet = {{"enabled", f.enabled}};
  if (f.enabled) {
    nlohmann::json subjects = nlohmann::json::array();
    for (const auto& v : f.subjects)
      subjects.push_back(
          {{"subject", v.subject},
           {"reporters", v.reporters},
           {"unhealthy", v.unhealthy},
           {"quorum", v.quorum},
           {"unhealthy_here", v.local_verdict},
           {"holder", v.holder.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.holder)}});
    fleet.update({{"available", f.available},
                  {"instance", f.instance},
                  {"reason", f.available ? nlohmann::json(nullptr) : nlohmann::json(f.reason)},
                  {"peers", f.peers},
                  {"shared_subjects", f.shared_subjects},
                  {"subjects", std::move(subjects)},
                  {"leases_held", f.leases_held},
                  {"leases_granted", f.leases_granted},
                  {"leases_lost", f.leases_lost},
                  {"outcomes_written", f.outcomes_written},
                  {"outcomes_rejected", f.outcomes_rejected},
                  {"repairing_elsewhere", f.repairing_elsewhere},
                  {"path_weak_points", f.path_weak_points},
                  {"unavailable_cycles", f.unavailable_cycles},
                  {"round_trips", f.round_trips}});
  }
  j["fleet"] = std::move(fleet);
  j["events"] = {{"delivered", s.events_delivered},
                 {"dropped", s.events_dropped},
                 {"failed", s.events_failed}};
  return j;
}

nlohmann::json to_json(const TriggersStatus& s) {
  nlohmann::json triggers = nlohmann::json::object();
  for (const auto& t : s.triggers) {
    triggers[std::string(to_string(t.kind))] = {
        {"fired", t.fired},
        {"suppressed", t.suppressed},
        {"last_fired_ms", t.last_fired ? nlohmann::json(t.last_fired->count() / 1'000'000)
                                       : nlohmann::json(nullptr)},
        {"last_fired_s_ago",
         t.last_fired ? nlohmann::json(std::chrono::duration<double>(s.now - *t.last_fired).count())
                      : nlohmann::json(nullptr)},
        {"cooldown_s", std::chrono::duration<double>(t.cooldown).count()}};
  }
  return {{"triggers", std::move(triggers)},
          {"window_s", std::chrono::duration<double>(s.window).count()},
          {"request_threshold", s.request_threshold},
          {"error_rate_threshold", s.error_rate_threshold},
          {"window_requests", s.window_requests},
          {"window_errors", s.window_errors},
          {"error_rate", s.error_rate},
          {"error_rate_armed", s.error_rate_armed},
          {"running", s.running}};
}

nlohmann::json to_json(const AuditEntry& e) {
  // One serialization of an entry: the audit log's own JSON line.
  return nlohmann::json::parse(to_json_line(e));
}

nlohmann::json to_json(const NotifierStatus& s) {
  nlohmann::json j = {{"name", s.name},
                      {"url", s.url},
                      {"events_received", s.events_received},
                      {"events_dropped", s.events_dropped},
                      {"posts_ok", s.posts_ok},
                      {"posts_failed", s.posts_failed},
                      {"pending", s.pending},
                      {"alerts_firing", s.alerts_firing},
                      {"last_error", s.last_error}};
  j["last_success"] =
      s.last_success ? nlohmann::json(format_iso8601(*s.last_success)) : nlohmann::json(nullptr);
  return j;
}

namespace {

nlohmann::json to_json(const octo::DurationSummary& d) {
  const auto us = [](std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e3; };
  return {{"count", d.count},    {"p50_us", us(d.p50)},   {"p90_us", us(d.p90)},
          {"p99_us", us(d.p99)}, {"p999_us", us(d.p999)}, {"max_us", us(d.max)}};
}

}  // namespace

nlohmann::json to_json(const octo::RuntimeStatus& s) {
  nlohmann::json arms = nlohmann::json::array();
  for (const auto& a : s.arms) {
    arms.push_back({{"name", a.name},
                    {"enabled", a.enabled},
                    {"paused", a.paused},
                    {"blocking", a.blocking},
                    {"threads", a.threads},
                    {"max_parallel", a.max_parallel},
                    {"active", a.active},
                    {"queued", a.queued},
                    {"pending", a.pending},
                    {"processed", a.processed},
                    {"succeeded", a.succeeded},
                    {"failed", a.failed},
                    {"retried", a.retried},
                    {"dead_lettered", a.dead_lettered},
                    {"rejected", a.rejected},
                    {"cancelled", a.cancelled},
                    {"expired", a.expired},
                    {"stuck", a.stuck},
                    {"overran", a.overran},
                    {"queue_wait", to_json(a.queue_wait)},
                    {"run_time", to_json(a.run_time)}});
  }
  return {{"arms", std::move(arms)},  {"accepted", s.accepted}, {"succeeded", s.succeeded},
          {"failed", s.failed},       {"retried", s.retried},   {"dead_lettered", s.dead_lettered},
          {"cancelled", s.cancelled}, {"pending", s.pending},   {"rejected", s.rejected},
          {"expired", s.expired},     {"stuck", s.stuck},       {"stopping", s.stopping}};
}

}  // namespace halo

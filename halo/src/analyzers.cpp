#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "detail/check_runner.hpp"
#include "detail/parallel.hpp"
#include "halo/analyzer.hpp"

namespace halo {

namespace {

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v * 100.0);
  return buf;
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

Issue make_issue(std::string_view analyzer, Level severity, std::string_view subject_type,
                 std::string_view subject_id, std::string_view rule, std::string id_prefix,
                 std::string description) {
  Issue i;
  i.id = std::move(id_prefix);
  i.id += subject_id;
  i.analyzer = std::string(analyzer);
  i.severity = severity;
  i.subject_type = std::string(subject_type);
  i.subject_id = std::string(subject_id);
  i.rule = std::string(rule);
  i.description = std::move(description);
  return i;
}

// Runs per_item over every entry of `table`, chunks in parallel; issues keep table order.
template <class T, class F>
std::vector<Issue> scan(const Table<T>& table, F&& per_item) {
  std::vector<std::vector<Issue>> parts(table.chunk_count());
  detail::parallel_ranges(table.chunk_count(), 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t c = b; c != e; ++c)
      for (const T& item : table.chunk(c)) per_item(item, parts[c]);
  });
  std::size_t total = 0;
  for (auto& p : parts) total += p.size();
  std::vector<Issue> out;
  out.reserve(total);
  for (auto& p : parts) std::move(p.begin(), p.end(), std::back_inserter(out));
  return out;
}

void add_healthy_note(AnalyzerResult& r, std::string text) {
  if (!r.issues.empty()) return;
  Issue i;
  i.id = r.name + "-healthy";
  i.analyzer = r.name;
  i.severity = Level::kInfo;
  i.rule = "healthy";
  i.description = std::move(text);
  r.issues.push_back(std::move(i));
}

class AgentHealth final : public Analyzer {
 public:
  explicit AgentHealth(const Thresholds& t) : unseen_(t.agent_unseen_after) {}
  std::string_view name() const noexcept override { return "agent-health"; }
  bool light() const noexcept override { return true; }
  AnalyzerResult analyze(const Snapshot& s) override {
    AnalyzerResult r{.name = std::string(name())};
    const auto now = s.taken_at;
    r.issues = scan(s.agents, [&](const AgentInfo& a, std::vector<Issue>& out) {
      if (!a.present) return;
      if (!a.online) {
        out.push_back(make_issue(name(), Level::kCritical, "agent", a.id, "offline",
                                 "agent-offline-", "agent " + a.id + " is offline"));
        out.back().data = {{"reason", "offline"}, {"squad", a.squad}};
      } else if (now - a.last_heartbeat > unseen_) {
        const auto secs = std::chrono::duration<double>(now - a.last_heartbeat).count();
        out.push_back(make_issue(name(), Level::kCritical, "agent", a.id, "offline",
                                 "agent-offline-",
                                 "agent " + a.id + " not seen for " + fixed(secs) + " s"));
        out.back().data = {{"reason", "unseen"}, {"squad", a.squad}};
      }
    });
    if (!r.issues.empty())
      r.recommendations.push_back("agent.revive for " + std::to_string(r.issues.size()) +
                                  " agent(s)");
    r.metrics["agents"] = static_cast<double>(s.agent_count);
    r.metrics["offline"] = static_cast<double>(r.issues.size());
    add_healthy_note(r, "all " + std::to_string(s.agent_count) + " agents healthy");
    return r;
  }

 private:
  std::chrono::nanoseconds unseen_;
};

class SquadEfficiency final : public Analyzer {
 public:
  explicit SquadEfficiency(const Thresholds& t)
      : rate_(t.squad_failure_rate), min_tasks_(t.squad_min_tasks) {}
  std::string_view name() const noexcept override { return "squad-efficiency"; }
  AnalyzerResult analyze(const Snapshot& s) override {
    AnalyzerResult r{.name = std::string(name())};
    std::size_t idle = 0;
    s.squads.for_each([&](const SquadInfo& q) {
      if (!q.present) return;
      // Tasks since the last repair finished (all of them before any repair).
      const std::uint64_t completed = q.completed - q.completed_before;
      const std::uint64_t failed = q.failed - q.failed_before;
      const std::uint64_t total = completed + failed;
      if (q.completed + q.failed == 0) {
        if (q.running == 0) {
          ++idle;
          r.issues.push_back(make_issue(name(), Level::kLow, "squad", q.id, "idle", "squad-idle-",
                                        "squad " + q.id + " is idle"));
        }
        return;
      }
      if (total == 0) return;
      const double rate = static_cast<double>(failed) / static_cast<double>(total);
      if (total >= min_tasks_ && rate > rate_) {
        r.issues.push_back(
            make_issue(name(), Level::kCritical, "squad", q.id, "failure-rate", "squad-failure-",
                       "squad " + q.id + " fails " + percent(rate) + " of its tasks"));
        r.issues.back().data = {{"failure_rate", percent(rate)}};
      }
    });
    if (idle > 0)
      r.recommendations.push_back("optimize " + std::to_string(idle) + " idle squad(s)");
    add_healthy_note(r, "all squads within their failure budget");
    return r;
  }

 private:
  double rate_;
  std::uint64_t min_tasks_;
};

class EndpointHealth final : public Analyzer {
 public:
  explicit EndpointHealth(const Thresholds& t) : t_(t) {}
  std::string_view name() const noexcept override { return "endpoint-health"; }
  bool light() const noexcept override { return true; }
  AnalyzerResult analyze(const Snapshot& s) override {
    AnalyzerResult r{.name = std::string(name())};
    r.issues = scan(s.endpoints, [&](const EndpointInfo& e, std::vector<Issue>& out) {
      if (!e.present) return;
      bool slow = false;
      if (e.probe) {
        if (e.probe->status == 0 || e.probe->status >= 500) {
          out.push_back(make_issue(
              name(), Level::kCritical, "endpoint", e.id, "down", "endpoint-down-",
              "endpoint " + e.id + " is down (status " + std::to_string(e.probe->status) + ")"));
          out.back().data = {{"status", std::to_string(e.probe->status)}};
        } else if (e.probe->duration_ms > t_.endpoint_slow_ms) {
          slow = true;
          out.push_back(make_issue(
              name(), Level::kHigh, "endpoint", e.id, "slow", "endpoint-slow-",
              "endpoint " + e.id + " answered in " + fixed(e.probe->duration_ms) + " ms"));
        }
      }
      if (e.counters) {
        const EndpointCounters::WindowCounts counts = e.counters->window_counts();
        const std::uint64_t req = counts.requests;
        if (req >= t_.endpoint_min_requests && req > 0) {
          const double rate = static_cast<double>(counts.errors) / static_cast<double>(req);
          if (rate >= t_.endpoint_error_rate) {
            out.push_back(
                make_issue(name(), Level::kCritical, "endpoint", e.id, "errors", "endpoint-errors-",
                           "endpoint " + e.id + " fails " + percent(rate) + " of requests"));
            out.back().data = {{"error_rate", percent(rate)}, {"requests", std::to_string(req)}};
          }
        }
        if (!slow) slow_window(e, counts, out);
      }
    });
    if (!r.issues.empty()) r.recommendations.push_back("repair.api.endpoint");
    add_healthy_note(r, "all " + std::to_string(s.endpoints.size()) + " endpoints healthy");
    return r;
  }

 private:
  void slow_window(const EndpointInfo& e, const EndpointCounters::WindowCounts& counts,
                   std::vector<Issue>& out) const {
    const double q = t_.endpoint_slow_quantile;
    const std::uint64_t requests = counts.requests;
    if (q == 0.0) {
      const double mean = counts.mean_latency_ms();
      if (mean > t_.endpoint_slow_ms) {
        out.push_back(make_issue(name(), Level::kHigh, "endpoint", e.id, "slow", "endpoint-slow-",
                                 "endpoint " + e.id + " averages " + fixed(mean) + " ms"));
      }
      return;
    }
    if (requests < t_.endpoint_min_requests || requests == 0) return;
    // A quantile past the threshold needs the requests from its rank up, n - rank + 1 of them,
    // slower than it, so a latency sum no larger than that many thresholds rules it out without
    // reading the histogram (most endpoints, most cycles: the counts' window costs what the mean
    // rule's does).
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(requests))));
    const double needed = static_cast<double>(requests - rank + 1) * t_.endpoint_slow_ms * 1000.0;
    if (static_cast<double>(counts.latency_sum_us) <= needed) return;
    const LatencyWindow w = e.counters->latency();
    if (!w.quantile_exceeds_ms(q, t_.endpoint_slow_ms)) return;
    const std::string label = quantile_label(q);
    const double at = w.quantile_ms(q);
    out.push_back(make_issue(name(), Level::kHigh, "endpoint", e.id, "slow", "endpoint-slow-",
                             "endpoint " + e.id + " " + label + " latency is " + fixed(at) +
                                 " ms (over " + fixed(t_.endpoint_slow_ms) + " ms)"));
    out.back().data = {{label + "_ms", fixed(at)}, {"requests", std::to_string(w.count)}};
  }
  // 0.99 -> "p99", 0.999 -> "p99.9", 0.5 -> "p50", 1 -> "p100".
  static std::string quantile_label(double q) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "p%g", q * 100.0);
    return buf;
  }

  Thresholds t_;
};

class EnvironmentConsistency final : public Analyzer {
 public:
  std::string_view name() const noexcept override { return "environment-consistency"; }
  bool light() const noexcept override { return true; }
  AnalyzerResult analyze(const Snapshot& s) override {
    AnalyzerResult r{.name = std::string(name())};
    if (!s.env) return r;
    for (const auto& [snap_name, values] : s.env->snapshots) {
      std::string missing, mismatched;
      std::size_t n_missing = 0, n_mismatched = 0;
      for (const auto& [key, expected] : s.env->baseline) {
        auto it = values.find(key);
        std::string& list = it == values.end() ? missing : mismatched;
        if (it != values.end() && it->second == expected) continue;
        ++(it == values.end() ? n_missing : n_mismatched);
        if (!list.empty()) list += ',';
        list += key;
      }
      if (n_missing + n_mismatched == 0) continue;
      const Level sev = n_missing > 0 ? Level::kHigh : Level::kMedium;
      std::string what = n_missing > 0 ? std::to_string(n_missing) + " missing key(s)" : "";
      if (n_mismatched > 0)
        what += (what.empty() ? "" : ", ") + std::to_string(n_mismatched) + " mismatched value(s)";
      r.issues.push_back(
          make_issue(name(), sev, "env", snap_name, n_missing > 0 ? "missing-keys" : "mismatch",
                     "env-mismatch-",
                     std::string("environment ").append(snap_name).append(": ").append(what)));
      r.issues.back().data = {{"missing", missing}, {"mismatched", mismatched}};
    }
    if (!r.issues.empty()) r.recommendations.push_back("env.sync");
    add_healthy_note(r, "all environments match the baseline");
    return r;
  }
};

void add_check_issues(AnalyzerResult& r, std::string_view analyzer, std::string_view subject_type,
                      const std::vector<Check>& checks, const std::vector<CheckResult>& results,
                      bool integrity) {
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const CheckResult& res = results[i];
    if (res.status == CheckStatus::kGreen) continue;
    Level sev;
    if (integrity) {
      const Level fail = checks[i].on_failure;
      sev = res.status == CheckStatus::kRed
                ? fail
                : static_cast<Level>(
                      std::max<int>(static_cast<int>(Level::kLow), static_cast<int>(fail) - 1));
    } else {
      sev = res.status == CheckStatus::kRed ? Level::kCritical : Level::kMedium;
    }
    const std::string status(to_string(res.status));
    r.issues.push_back(make_issue(analyzer, sev, subject_type, checks[i].name,
                                  integrity ? checks[i].name : status,
                                  std::string(subject_type) + "-" + status + "-",
                                  std::string(subject_type) + " check " + checks[i].name + " is " +
                                      status + (res.message.empty() ? "" : ": " + res.message)));
    r.issues.back().data = {{"status", status}, {"message", res.message}};
  }
}

class RepositoryIntegrity final : public Analyzer {
 public:
  explicit RepositoryIntegrity(const Thresholds& t) : timeout_(t.check_timeout) {}
  std::string_view name() const noexcept override { return "repository-integrity"; }
  AnalyzerResult analyze(const Snapshot& s) override {
    AnalyzerResult r{.name = std::string(name())};
    r.issues = scan(s.artifacts, [&](const ArtifactInfo& a, std::vector<Issue>& out) {
      if (!a.present) return;
      const auto actual = checksum_file(a.id);
      if (!actual) {
        out.push_back(make_issue(name(), Level::kHigh, "artifact", a.id, "missing",
                                 "integrity-missing-", "artifact " + a.id + " cannot be read"));
      } else if (*actual != a.expected) {
        out.push_back(
            make_issue(name(), Level::kHigh, "artifact", a.id, "checksum", "integrity-mismatch-",
                       "artifact " + a.id + " checksum " + *actual + ", expected " + a.expected));
        out.back().data = {{"expected", a.expected}, {"actual", *actual}};
      }
    });
    if (s.integrity_checks && !s.integrity_checks->empty()) {
      const auto results = detail::run_checks(*s.integrity_checks, timeout_);
      add_check_issues(r, name(), "check", *s.integrity_checks, results, true);
    }
    if (!r.issues.empty()) r.recommendations.push_back("build.restore-artifact / build.fix");
    add_healthy_note(r, "all " + std::to_string(s.artifacts.size()) + " artifacts verified");
    return r;
  }

 private:
  std::chrono::nanoseconds timeout_;
};

class GraftAnalyzer final : public Analyzer {
 public:
  std::string_view name() const noexcept override { return "graft"; }
  AnalyzerResult analyze(const Snapshot& s) override {
    AnalyzerResult r{.name = std::string(name())};
    r.issues = scan(s.grafts, [&](const GraftInfo& g, std::vector<Issue>& out) {
      if (!g.present) return;
      if (g.status == GraftStatus::kFailed) {
        out.push_back(
            make_issue(name(), Level::kHigh, "graft", g.id, "failed", "graft-failed-",
                       "graft " + g.id + " failed" + (g.error.empty() ? "" : ": " + g.error)));
        out.back().data = {{"error", g.error}, {"name", g.name}};
      } else if (g.status == GraftStatus::kPending) {
        out.push_back(make_issue(name(), Level::kMedium, "graft", g.id, "pending", "graft-pending-",
                                 "graft " + g.id + " is pending"));
        out.back().data = {{"name", g.name}};
      }
    });
    if (!r.issues.empty()) r.recommendations.push_back("graft.repair / graft.install");
    add_healthy_note(r, "all " + std::to_string(s.grafts.size()) + " grafts installed");
    return r;
  }
};

class SwarmPatrol final : public Analyzer {
 public:
  explicit SwarmPatrol(const Thresholds& t) : timeout_(t.check_timeout) {}
  std::string_view name() const noexcept override { return "swarm-patrol"; }
  AnalyzerResult analyze(const Snapshot& s) override {
    AnalyzerResult r{.name = std::string(name())};
    const std::vector<Check> none;
    const auto& checks = s.patrol_checks ? *s.patrol_checks : none;
    const auto results = detail::run_checks(checks, timeout_);
    add_check_issues(r, name(), "patrol", checks, results, false);
    const auto green = std::count_if(results.begin(), results.end(), [](const CheckResult& c) {
      return c.status == CheckStatus::kGreen;
    });
    r.metrics["health_score"] =
        checks.empty() ? 1.0 : static_cast<double>(green) / static_cast<double>(checks.size());
    r.metrics["checks"] = static_cast<double>(checks.size());
    if (!r.issues.empty()) r.recommendations.push_back("patrol.followup");
    add_healthy_note(r, "all " + std::to_string(checks.size()) + " patrol checks green");
    return r;
  }

 private:
  std::chrono::nanoseconds timeout_;
};

}  // namespace

namespace detail {

std::vector<CheckResult> run_checks(const std::vector<Check>& checks,
                                    std::chrono::nanoseconds timeout) {
  std::vector<std::future<CheckResult>> futures;
  futures.reserve(checks.size());
  for (const Check& c : checks) {
    auto promise = std::make_shared<std::promise<CheckResult>>();
    futures.push_back(promise->get_future());
    // Its own thread, so that a check that hangs can be left behind at the deadline.
    std::thread([run = c.run, promise] {
      try {
        promise->set_value(run());
      } catch (const std::exception& e) {
        promise->set_value({CheckStatus::kRed, std::string("threw: ") + e.what()});
      } catch (...) {
        promise->set_value({CheckStatus::kRed, "threw a non-exception"});
      }
    }).detach();
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<CheckResult> out;
  out.reserve(checks.size());
  for (auto& f : futures) {
    if (f.wait_until(deadline) == std::future_status::ready) {
      out.push_back(f.get());
    } else {
      out.push_back({CheckStatus::kRed, "timed out"});
    }
  }
  return out;
}

}  // namespace detail

std::unique_ptr<Analyzer> make_agent_health(const Thresholds& t) {
  return std::make_unique<AgentHealth>(t);
}
std::unique_ptr<Analyzer> make_squad_efficiency(const Thresholds& t) {
  return std::make_unique<SquadEfficiency>(t);
}
std::unique_ptr<Analyzer> make_endpoint_health(const Thresholds& t) {
  if (!(t.endpoint_slow_quantile >= 0.0 && t.endpoint_slow_quantile <= 1.0)) {
    throw std::invalid_argument(
        "halo::make_endpoint_health: endpoint_slow_quantile must be in "
        "[0, 1] (got " +
        std::to_string(t.endpoint_slow_quantile) + ")");
  }
  return std::make_unique<EndpointHealth>(t);
}
std::unique_ptr<Analyzer> make_environment_consistency() {
  return std::make_unique<EnvironmentConsistency>();
}
std::unique_ptr<Analyzer> make_repository_integrity(const Thresholds& t) {
  return std::make_unique<RepositoryIntegrity>(t);
}
std::unique_ptr<Analyzer> make_graft() { return std::make_unique<GraftAnalyzer>(); }
std::unique_ptr<Analyzer> make_swarm_patrol(const Thresholds& t) {
  return std::make_unique<SwarmPatrol>(t);
}

std::vector<std::unique_ptr<Analyzer>> builtin_analyzers(const Thresholds& t) {
  std::vector<std::unique_ptr<Analyzer>> v;
  v.push_back(make_agent_health(t));
  v.push_back(make_squad_efficiency(t));
  v.push_back(make_endpoint_health(t));
  v.push_back(make_environment_consistency());
  v.push_back(make_repository_integrity(t));
  v.push_back(make_graft());
  v.push_back(make_swarm_patrol(t));
  return v;
}

}  // namespace halo

// halo-sim: a simulated service under load with injected faults that HALO detects and repairs
// through Octopus. Exit 0 only when every fault ended as its kind expects within its deadline
// (healed, or for the safety faults escalated, inhibited, silenced, held by the breaker) and no
// healthy subject was repaired; 1 otherwise; 2 on bad flags or a bad scenario.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "fleet_sim.hpp"
#include "halo/engine.hpp"
#include "halo/http/history_store.hpp"
#include "halo/http/json.hpp"
#include "halo/http/notifier.hpp"
#include "halo/http/server.hpp"
#include "octo/executor.hpp"
#include "scenario.hpp"
#include "world.hpp"

namespace {

using namespace std::chrono_literals;
using halo_sim::Fault;
using halo_sim::World;

struct Options {
  std::string scenario = "default";
  double duration_s = 0;  // 0: the scenario's
  double paced_rate = 20000;
  int fast_threads = 1;
  int executor_threads = 2;
  std::string http;
  std::string token;
  std::string alertmanager;
  std::string webhook;
  std::string history;
  std::string json;
  std::string plot;
  bool quiet = false;
  std::string approve;  // "manual", "auto", or empty: the scenario's
  int fleet = 0;        // instances; 0: one, the classic sim
};

// A request thread's count, alone on its cache line.
struct alignas(64) Counter {
  std::atomic<std::uint64_t> n{0};
};

struct FaultState {
  Fault fault{};
  std::vector<std::string> subjects{};  // "type:id"; empty for trigger-only faults
  std::string detect_trigger{};         // the cycle trigger that detects it, if any
  std::string heal_trigger{};           // trigger-only faults: the one that completes them
  std::uint64_t trigger_base = 0;
  std::uint64_t heal_base = 0;
  double injected = -1, detected = -1, healed = -1;  // healed: ended as the kind expects
  std::string detected_by{};                         // the trigger of the first cycle that saw it
  // Subjects that must have been repaired before the fault counts as healed (default: all).
  std::vector<std::string> must_repair{};
  double until = -1;            // maintenance: the silence's end; systemic-outage: the partition's
  bool flapping_seen = false;   // flapping-endpoint
  bool breaker_seen = false;    // systemic-outage
  bool inhibited_seen = false;  // parent-down: a child's weak point carried the flag
  bool ended_partition = false;
};

struct Sample {
  double t, requests_per_s, error_rate;
  std::uint64_t firings, repairs;
};

// The analyzer that can see each subject type (a cycle that did not run it proves nothing).
const char* analyzer_for(const std::string& subject) {
  const auto type = subject.substr(0, subject.find(':'));
  if (type == "agent") return "agent-health";
  if (type == "endpoint") return "endpoint-health";
  if (type == "env") return "environment-consistency";
  if (type == "artifact") return "repository-integrity";
  if (type == "graft") return "graft";
  return "swarm-patrol";
}

std::uint64_t xorshift(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

std::string fmt(double v, const char* f = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

class Sim {
 public:
  Sim(halo_sim::Scenario scenario, Options opt)
      : scenario_(std::move(scenario)),
        opt_(std::move(opt)),
        clock_(std::make_shared<octo::SteadyClock>()),
        world_(clock_),
        // Its own signals with a 2 s window (the default ones keep 10 s), so that scenarios of
        // seconds can raise and clear the error rate and show a surge.
        signals_(octo::Ticker::shared(), 2s, 100),
        counters_(static_cast<std::size_t>(opt_.fast_threads + 2)) {
    if (opt_.duration_s > 0) scenario_.duration_s = opt_.duration_s;
  }
  // run() may leave by an exception (an --http address that cannot be bound) with the request
  // threads running: they are stopped and joined here, not left to std::terminate.
  ~Sim() {
    stop_ = true;
    for (auto& th : threads_)
      if (th.joinable()) th.join();
  }
  Sim(const Sim&) = delete;
  Sim& operator=(const Sim&) = delete;

  int run();

 private:
  void start_load();
  double calibrate();
  void start_engine(double baseline_rate);
  void inject(FaultState& f, double t);
  void observe(double t);
  void approve_due(double t);
  void sample(double t);
  void status_line(double t, bool final);
  int report(double t_end);
  void write_plot(const std::string& path);
  nlohmann::json notifier_report() const;
  double now() const { return world_.now_s() - t0_.load(std::memory_order_relaxed); }
  std::uint64_t requests() const {
    std::uint64_t n = 0;
    for (const auto& c : counters_) n += c.n.load(std::memory_order_relaxed);
    return n;
  }

  halo_sim::Scenario scenario_;
  Options opt_;
  std::shared_ptr<octo::SteadyClock> clock_;
  World world_;
  halo::Signals signals_;
  std::vector<Counter> counters_;
  std::atomic<bool> stop_{false};
  std::atomic<double> surge_until_{-1};
  std::atomic<double> surge_rate_{0};
  std::vector<std::thread> threads_;
  // Set once the load runs (request threads read it): relaxed, only its value matters.
  std::atomic<double> t0_{0};
  // Engine and executor may be destroyed in either order (halo/engine.hpp).
  std::unique_ptr<halo::Engine> engine_;
  std::unique_ptr<octo::Executor> executor_;
  halo::LoopHandle loop_;
  // After the engine (they subscribe to it), before the server (its /metrics reads them).
  std::unique_ptr<halo::AlertmanagerNotifier> alerts_;
  std::unique_ptr<halo::WebhookNotifier> hook_;
  std::unique_ptr<halo::HistoryStore> history_;
  std::unique_ptr<halo::HttpServer> http_;
  std::vector<FaultState> faults_;
  std::map<std::uint64_t, double> approval_seen_;
  std::uint64_t cycles_seen_ = 0;
  std::set<std::string> seen_cycle_ids_;
  std::vector<Sample> samples_;
  std::uint64_t last_requests_ = 0;
  double last_sample_t_ = 0;
  std::uint64_t approvals_granted_ = 0;
  // Seconds (sim time) of each breaker opening, from the engine's events.
  std::mutex breaker_mu_;
  std::vector<double> breaker_opened_;
  halo::SafetyConfig safety_{};
  bool has_kind(const char* kind) const {
    return std::any_of(scenario_.faults.begin(), scenario_.faults.end(),
                       [&](const Fault& f) { return f.kind == kind; });
  }
  // The fault's verdict: whether it ended as its kind expects, and what happened.
  std::pair<bool, std::string> verdict(const FaultState& f) const;
  std::size_t repairs_of(const FaultState& f, double from, double to) const;
};

void Sim::start_load() {
  // Fast threads: as many requests as one thread can make.
  for (int k = 0; k < opt_.fast_threads; ++k) {
    threads_.emplace_back([this, k] {
      std::uint64_t rng = 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(k + 1);
      std::uint64_t local = 0;
      auto& counter = counters_[static_cast<std::size_t>(k)].n;
      while (!stop_.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 256; ++i) {
          const auto r = xorshift(rng);
          halo::record_request(signals_);
          if (world_.request(static_cast<std::uint32_t>(r >> 40) % World::kEndpoints, r))
            halo::record_error(signals_);
        }
        local += 256;
        counter.store(local, std::memory_order_relaxed);
      }
    });
  }
  // The paced thread: `paced_rate` requests a second in 1 ms batches, plus any surge.
  threads_.emplace_back([this] {
    std::uint64_t rng = 0xD1B54A32D192ED03ULL;
    std::uint64_t local = 0;
    auto& counter = counters_[static_cast<std::size_t>(opt_.fast_threads)].n;
    double carry = 0;
    auto next = std::chrono::steady_clock::now();
    while (!stop_.load(std::memory_order_relaxed)) {
      next += 1ms;
      carry += opt_.paced_rate / 1000.0;
      const auto n = static_cast<std::uint64_t>(carry);
      carry -= static_cast<double>(n);
      for (std::uint64_t i = 0; i < n; ++i) {
        const auto r = xorshift(rng);
        halo::record_request(signals_);
        if (world_.request(static_cast<std::uint32_t>(r >> 40) % World::kEndpoints, r))
          halo::record_error(signals_);
      }
      local += n;
      if (now() < surge_until_.load()) {
        // A surge arrives as counted traffic: a burst of requests on top of the usual load.
        const auto extra = static_cast<std::uint64_t>(surge_rate_.load() / 1000.0);
        signals_.record_request(extra);
        local += extra;
      }
      counter.store(local, std::memory_order_relaxed);
      std::this_thread::sleep_until(next);
    }
  });
  // Service chores: heartbeats, probes, squad results, twice a second.
  threads_.emplace_back([this] {
    std::uint64_t round = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      world_.heartbeat_round(round++);
      for (int i = 0; i < 10 && !stop_.load(std::memory_order_relaxed); ++i)
        std::this_thread::sleep_for(50ms);
    }
  });
}

double Sim::calibrate() {
  // The volume trigger's threshold is relative to this service's own baseline rate.
  const auto r0 = requests();
  const auto t_start = world_.now_s();
  std::this_thread::sleep_for(500ms);
  const double rate = static_cast<double>(requests() - r0) / (world_.now_s() - t_start);
  return std::max(rate, 1.0);
}

void Sim::start_engine(double baseline_rate) {
  halo::EngineConfig ec;
  ec.safety.repairs_per_second = 20;
  ec.safety.repair_burst = 40;
  ec.safety.backoff_base = 1s;
  ec.safety.backoff_max = 10s;
  ec.safety.approval_required = {"env.sync"};
  // The life cycle on the sim's time scale (seconds, not minutes): repairs are verified within
  // 4 s (the endpoints' window is 2 s), verify cycles run twice a second while one is pending,
  // and the breaker settles in 3 s.
  ec.safety.verify_timeout = 4s;
  ec.safety.verify_interval = 500ms;
  ec.safety.repair_timeout = 30s;
  ec.safety.budget_window = 10min;
  ec.safety.flap_window = 30s;
  ec.safety.breaker_window = 30s;
  ec.safety.breaker_settle = 3s;
  safety_ = ec.safety;
  ec.thresholds.check_timeout = 500ms;
  // An unreachable agent shows within 3 s (heartbeats come every 0.5 s). Only where a scenario
  // cuts agents off: elsewhere a starved heartbeat thread (sanitizer builds) must not look like
  // an outage.
  if (has_kind("systemic-outage")) ec.thresholds.agent_unseen_after = 3s;
  ec.concurrency = 2;
  engine_ = std::make_unique<halo::Engine>(world_.state(), ec);
  if (has_kind("parent-down"))
    for (const auto& [child, parent] : world_.dependencies())
      engine_->add_dependency({"endpoint", child}, {"agent", parent});
  engine_->subscribe([this](const halo::Event& e) {
    if (e.kind != halo::EventKind::kBreakerOpened) return;
    std::lock_guard lock(breaker_mu_);
    breaker_opened_.push_back(now());
  });

  octo::ExecutorConfig xc;
  xc.threads = opt_.executor_threads;
  for (auto& arm : xc.arms) {
    arm.backoff_base = 20ms;
    arm.handler = [this](const octo::Task& t, const octo::Context&) { return world_.repair(t); };
  }
  executor_ = std::make_unique<octo::Executor>(std::move(xc));
  engine_->attach(*executor_);

  halo::TriggerConfig tc;
  tc.time_interval = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(scenario_.cycle_interval_s));
  tc.request_threshold = static_cast<std::uint64_t>(baseline_rate * 2.0 * 3.0);  // 3x a 2 s window
  // The endpoint fault breaks 8 of 20 endpoints (40 % of the traffic: under the breaker's half)
  // and two are repaired at a time (the blast radius): at 15 % the 2 s window crosses the
  // threshold within ~0.75 s, before the repairs bring it down, even on a slow (TSan) build.
  tc.error_rate_threshold = 0.15;
  tc.deploy_verify_after = 1s;
  tc.cooldown[static_cast<int>(halo::TriggerKind::kRequestVolume)] = 5s;
  tc.cooldown[static_cast<int>(halo::TriggerKind::kErrorRate)] = 3s;
  tc.cooldown[static_cast<int>(halo::TriggerKind::kDeploy)] = 1s;
  tc.cooldown[static_cast<int>(halo::TriggerKind::kEvent)] = 1s;
  loop_ = halo::register_loop(*engine_, signals_, tc);

  if (!opt_.history.empty()) {
    history_ = std::make_unique<halo::HistoryStore>(*engine_,
                                                    halo::HistoryStoreConfig{.dir = opt_.history});
  }
  std::vector<const halo::Notifier*> notifiers;
  if (!opt_.alertmanager.empty()) {
    alerts_ = std::make_unique<halo::AlertmanagerNotifier>(
        *engine_,
        halo::NotifierConfig{
            .url = opt_.alertmanager, .repeat_interval = 15s, .labels = {{"service", "halo-sim"}}});
    notifiers.push_back(alerts_.get());
  }
  if (!opt_.webhook.empty()) {
    hook_ = std::make_unique<halo::WebhookNotifier>(*engine_,
                                                    halo::NotifierConfig{.url = opt_.webhook});
    notifiers.push_back(hook_.get());
  }
  if (!opt_.http.empty()) {
    const auto colon = opt_.http.rfind(':');
    halo::HttpConfig hc{.host = opt_.http.substr(0, colon),
                        .port = std::stoi(opt_.http.substr(colon + 1)),
                        .token = opt_.token,
                        // A local demo: without --token the routes are open, on loopback only.
                        .open_loopback = opt_.token.empty()};
    if (!notifiers.empty()) hc.metrics.writers.push_back(halo::notifier_metrics(notifiers));
    hc.history = history_.get();
    http_ = std::make_unique<halo::HttpServer>(hc, *engine_, executor_.get(), &*loop_);
    http_->start();
    std::printf("http: listening on http://%s:%d\n", hc.host.c_str(), http_->port());
    std::printf(
        "console: http://%s:%d/%s\n", hc.host.c_str(), http_->port(),
        scenario_.manual_approval ? "  (approvals are yours: the sim approves nothing)" : "");
    std::fflush(stdout);
  }
  if (history_) {
    // After the http line (the first line, which scripts read).
    const auto hs = history_->status();
    std::printf(
        "history: %s (restored %zu cycles, %zu audit entries, %zu silences, %zu "
        "escalations; %llu damaged lines skipped)\n",
        opt_.history.c_str(), hs.restored_cycles, hs.restored_audit, hs.restored_silences,
        hs.restored_escalations, static_cast<unsigned long long>(hs.corrupt_lines));
  }
}

void Sim::inject(FaultState& f, double t) {
  f.injected = t;
  const auto& k = f.fault.kind;
  const auto cycles = engine_->status().served_by_trigger;
  auto count_of = [&](const std::string& trig) {
    auto it = cycles.find(trig);
    return it == cycles.end() ? std::uint64_t{0} : it->second;
  };
  if (k == "agent-crash") {
    f.subjects = world_.crash_agents(f.fault.count);
  } else if (k == "endpoint-errors") {
    f.subjects = world_.break_endpoints(f.fault.count, f.fault.error_rate);
  } else if (k == "env-drift") {
    f.subjects = world_.drift_env();
  } else if (k == "corrupt-file") {
    f.subjects = world_.corrupt_file();
  } else if (k == "broken-graft") {
    f.subjects = world_.break_graft();
  } else if (k == "external-event") {
    f.subjects = world_.fail_patrol_dependency();
    f.detect_trigger = "event";
    f.trigger_base = count_of("event");
    loop_->trigger_from_event("api.endpoint.failed", "critical");
  } else if (k == "deploy") {
    f.detect_trigger = "deploy";
    f.heal_trigger = "deploy-verify";
    f.trigger_base = count_of("deploy");
    f.heal_base = count_of("deploy-verify");
    loop_->notify_deploy({{"version", "2.0." + std::to_string(static_cast<int>(t))}});
  } else if (k == "lying-repair") {
    f.subjects = world_.lying_agent();
  } else if (k == "flapping-endpoint") {
    f.subjects = world_.flapping_endpoint(f.fault.count);
  } else if (k == "parent-down") {
    f.subjects = world_.parent_down();
    f.must_repair = {f.subjects.front()};
  } else if (k == "maintenance") {
    f.until = t + f.fault.duration_s;
    const auto now_ns = world_.state().now();
    const auto span = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(f.fault.duration_s));
    f.subjects = world_.break_maintained_graft();
    const std::string id = f.subjects.front().substr(f.subjects.front().find(':') + 1);
    engine_->silence({.match = {.subject_type = "graft", .subject_id = id},
                      .from = now_ns,
                      .until = now_ns + span,
                      .reason = "halo-sim maintenance window",
                      .author = "halo-sim"});
  } else if (k == "systemic-outage") {
    f.until = t + f.fault.duration_s;
    f.subjects = world_.partition(f.fault.share);
  } else if (k == "request-surge") {
    f.detect_trigger = "request-volume";
    f.heal_trigger = "request-volume";
    f.trigger_base = count_of("request-volume");
    f.heal_base = f.trigger_base;
    const double base_rate = static_cast<double>(requests()) / std::max(now(), 0.1);
    surge_rate_ = base_rate * f.fault.surge_factor;
    surge_until_ = t + f.fault.duration_s;
  }
}

void Sim::observe(double t) {
  const auto st = engine_->status();
  auto count_of = [&](const std::string& trig) {
    auto it = st.served_by_trigger.find(trig);
    return it == st.served_by_trigger.end() ? std::uint64_t{0} : it->second;
  };
  std::vector<std::shared_ptr<const halo::CycleResult>> fresh;
  if (st.cycles != cycles_seen_) {
    const auto n = std::min<std::uint64_t>(st.cycles - cycles_seen_, 20);
    for (auto& c : engine_->history(n))
      if (seen_cycle_ids_.insert(c->id).second) fresh.push_back(c);
    std::reverse(fresh.begin(), fresh.end());  // oldest first
    cycles_seen_ = st.cycles;
  }
  const double wall0 =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() -
      t;
  for (const auto& c : fresh) {
    const double started =
        std::chrono::duration<double>(c->started.time_since_epoch()).count() - wall0;
    const double ended = started + c->duration_ms / 1000.0;
    std::set<std::string> weak, inhibited;
    for (const auto& wp : c->weak_points) {
      weak.insert(wp.subject_type + ":" + wp.subject_id);
      if ((wp.flags & halo::kInhibited) != 0)
        inhibited.insert(wp.subject_type + ":" + wp.subject_id);
    }
    std::set<std::string> ran;
    for (const auto& a : c->analysis) ran.insert(a.name);
    for (auto& f : faults_) {
      if (f.injected < 0 || f.healed >= 0 || f.subjects.empty()) continue;
      bool any = false, all_repaired = true, visible = true;
      double last_repair = -1;
      for (const auto& s : f.subjects) {
        any = any || weak.count(s) != 0;
        visible = visible && ran.count(analyzer_for(s)) != 0;
        f.inhibited_seen = f.inhibited_seen || inhibited.count(s) != 0;
      }
      for (const auto& s : f.must_repair.empty() ? f.subjects : f.must_repair) {
        const double r = world_.repaired_at(s) - t0_.load(std::memory_order_relaxed);
        if (r < f.injected) all_repaired = false;
        last_repair = std::max(last_repair, r);
      }
      if (any && f.detected < 0) {
        f.detected = std::max(started, f.injected);
        f.detected_by = c->trigger;
      }
      const bool trigger_ok =
          f.detect_trigger.empty() || count_of(f.detect_trigger) > f.trigger_base;
      const auto& k = f.fault.kind;
      if (k == "lying-repair" || k == "flapping-endpoint") continue;  // judged from the status
      if (k == "systemic-outage") {
        // Back by themselves: healthy in a cycle that started after the partition ended.
        if (f.detected >= 0 && f.ended_partition && visible && !any && started > f.until)
          f.healed = ended;
        continue;
      }
      if (f.detected >= 0 && all_repaired && visible && !any && started > last_repair && trigger_ok)
        f.healed = ended;
    }
  }
  // The faults whose expected end is a life-cycle state.
  bool judge_lives = false;
  for (const auto& f : faults_)
    judge_lives |= f.injected >= 0 && f.healed < 0 &&
                   (f.fault.kind == "lying-repair" || f.fault.kind == "flapping-endpoint");
  if (judge_lives) {
    for (auto& f : faults_) {
      if (f.injected < 0 || f.healed >= 0 || f.subjects.empty()) continue;
      const std::string id = f.subjects.front().substr(f.subjects.front().find(':') + 1);
      for (const auto& l : st.lifecycle) {
        if (l.subject_id != id) continue;
        if (f.detected < 0) {
          f.detected = t;
          f.detected_by = "-";
        }
        if ((l.flags & halo::kFlapping) != 0) f.flapping_seen = true;
        const bool escalated = l.state == halo::WeakPointState::kEscalated;
        if (f.fault.kind == "lying-repair" && escalated) f.healed = t;
        if (f.fault.kind == "flapping-endpoint" && f.flapping_seen && escalated) f.healed = t;
      }
    }
  }
  for (auto& f : faults_) {
    if (f.fault.kind != "systemic-outage" || f.injected < 0) continue;
    std::lock_guard lock(breaker_mu_);
    for (const double at : breaker_opened_) f.breaker_seen |= at >= f.injected;
  }
  for (auto& f : faults_) {
    if (f.injected < 0 || !f.subjects.empty() || f.healed >= 0) continue;
    if (f.detected < 0 && count_of(f.detect_trigger) > f.trigger_base) {
      f.detected = t;
      f.detected_by = f.detect_trigger;
    }
    if (f.detected >= 0 && count_of(f.heal_trigger) > f.heal_base) f.healed = t;
  }
}

void Sim::approve_due(double t) {
  // The sim plays the operator: it approves each pending repair after approve_after_s (unless a
  // person does, in the console).
  if (scenario_.manual_approval) return;
  for (const auto& p : engine_->pending_approvals()) {
    auto [it, fresh] = approval_seen_.emplace(p.id, t);
    if (!fresh && t - it->second >= scenario_.approve_after_s &&
        engine_->approve(p.id) == halo::ApprovalOutcome::kDispatched)
      ++approvals_granted_;
  }
}

void Sim::sample(double t) {
  const auto reqs = requests();
  const double dt = std::max(t - last_sample_t_, 1e-3);
  const double rps = static_cast<double>(reqs - last_requests_) / dt;
  last_requests_ = reqs;
  last_sample_t_ = t;
  const auto ts = loop_->status();
  std::uint64_t firings = 0;
  for (const auto& tr : ts.triggers) firings += tr.fired;
  samples_.push_back({t, rps, ts.error_rate, firings, engine_->status().repairs_succeeded});
}

void Sim::status_line(double t, bool final) {
  // Requests per second over the last second of samples.
  double rps = 0;
  int n = 0;
  for (auto it = samples_.rbegin(); it != samples_.rend() && t - it->t < 1.0; ++it, ++n)
    rps += it->requests_per_s;
  rps = n > 0 ? rps / n : 0;
  const auto es = engine_->status();
  const auto ts = loop_->status();
  if (opt_.quiet) return;
  int healed = 0, injected = 0;
  for (const auto& f : faults_) {
    injected += f.injected >= 0;
    healed += f.healed >= 0;
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "t=%5.1fs  req/s=%9.3gM  err=%5.1f%%  cycles=%3llu  weak=%3zu  in-flight=%2zu  "
                "repaired=%4llu  faults healed %d/%d",
                t, rps / 1e6, ts.error_rate * 100.0, static_cast<unsigned long long>(es.cycles),
                es.open_weak_points, es.repairs_in_flight,
                static_cast<unsigned long long>(es.repairs_succeeded), healed, injected);
  if (isatty(STDOUT_FILENO)) {
    std::printf("\r%s\033[K%s", line, final ? "\n" : "");
  } else {
    std::printf("%s\n", line);
  }
  std::fflush(stdout);
}

int Sim::run() {
  start_load();
  const double baseline = calibrate();
  t0_ = world_.now_s();
  last_sample_t_ = 0;
  last_requests_ = requests();
  start_engine(baseline);
  for (const auto& f : scenario_.faults) faults_.push_back({.fault = f});
  std::sort(faults_.begin(), faults_.end(),
            [](const FaultState& a, const FaultState& b) { return a.fault.at_s < b.fault.at_s; });
  if (!opt_.quiet)
    std::printf("halo-sim: scenario '%s', %.0f s, %zu faults, baseline %.3g requests/s\n",
                scenario_.name.c_str(), scenario_.duration_s, faults_.size(), baseline);

  double next_status = 1.0, next_sample = 0.25;
  double t = 0;
  while ((t = now()) < scenario_.duration_s) {
    for (auto& f : faults_) {
      if (f.injected < 0 && t >= f.fault.at_s) inject(f, t);
      if (f.fault.kind == "systemic-outage" && f.injected >= 0 && !f.ended_partition &&
          t >= f.until) {
        world_.end_partition();
        f.ended_partition = true;
      }
    }
    world_.tick();
    observe(t);
    approve_due(t);
    if (t >= next_sample) {
      sample(t);
      next_sample += 0.25;
    }
    if (t >= next_status) {
      status_line(t, false);
      next_status += 1.0;
    }
    std::this_thread::sleep_for(20ms);
  }
  observe(now());
  sample(now());
  status_line(now(), true);

  stop_ = true;
  for (auto& th : threads_) th.join();
  loop_.stop();
  engine_->stop();
  executor_->shutdown(octo::ShutdownMode::kDrain, 5s);
  // The last resolutions out before the report (bounded: a receiver that is down stays so).
  for (halo::Notifier* n : std::initializer_list<halo::Notifier*>{alerts_.get(), hook_.get()})
    if (n != nullptr) n->flush(5s);
  const int rc = report(t);
  if (http_) http_->stop();
  return rc;
}

std::size_t Sim::repairs_of(const FaultState& f, double from, double to) const {
  const double t0 = t0_.load(std::memory_order_relaxed);
  std::size_t n = 0;
  for (const auto& s : f.subjects)
    for (const double at : world_.repairs_of(s)) n += at - t0 >= from && at - t0 <= to;
  return n;
}

std::pair<bool, std::string> Sim::verdict(const FaultState& f) const {
  const auto& k = f.fault.kind;
  const bool in_time = f.healed >= 0 && f.healed - f.injected <= f.fault.deadline_s;
  const std::size_t repairs = repairs_of(f, f.injected, 1e18);
  if (f.injected < 0) return {false, "not injected"};
  if (k == "lying-repair") {
    if (repairs > safety_.max_repairs)
      return {false, std::to_string(repairs) + " repairs (over max_repairs)"};
    return {in_time, in_time ? "escalated" : "NOT ESCALATED in time"};
  }
  if (k == "flapping-endpoint") {
    if (repairs > safety_.max_repairs)
      return {false, std::to_string(repairs) + " repairs (over max_repairs)"};
    if (!f.flapping_seen) return {false, "NEVER FLAGGED flapping"};
    return {in_time, in_time ? "flapping, escalated" : "flapping, NOT ESCALATED in time"};
  }
  if (k == "parent-down") {
    const std::size_t parent = world_.repairs_of(f.subjects.front()).size();
    if (repairs != parent) return {false, std::to_string(repairs - parent) + " CHILD REPAIRS"};
    if (parent != 1) return {false, std::to_string(parent) + " repairs of the parent"};
    if (!f.inhibited_seen) return {false, "CHILDREN NEVER INHIBITED"};
    return {in_time, in_time ? "children inhibited, healed" : "NOT HEALED in time"};
  }
  if (k == "maintenance") {
    const std::size_t early = repairs_of(f, f.injected, f.until);
    if (early != 0) return {false, std::to_string(early) + " REPAIRS WHILE SILENCED"};
    return {in_time, in_time ? "silenced, healed after" : "NOT HEALED after the silence"};
  }
  if (k == "systemic-outage") {
    const std::size_t cap =
        static_cast<std::size_t>(std::floor(World::kAgents * safety_.blast_radius_percent / 100.0));
    const std::size_t during = repairs_of(f, f.injected, f.until);
    if (!f.breaker_seen) return {false, "BREAKER NEVER OPENED"};
    if (during > cap)
      return {false, std::to_string(during) + " repairs during it (blast radius " +
                         std::to_string(cap) + ")"};
    return {in_time, in_time ? "breaker opened, " + std::to_string(during) + " repairs, healed"
                             : "NOT HEALTHY in time"};
  }
  const bool detected = f.detected >= 0;
  return {in_time, in_time ? "healed" : detected ? "NOT HEALED in time" : "NOT DETECTED"};
}

int Sim::report(double t_end) {
  bool all_ok = true;
  nlohmann::json faults = nlohmann::json::array();
  std::printf("\n%-17s %6s %10s %-15s %8s %9s %8s  %s\n", "fault", "at (s)", "detect (s)",
              "by trigger", "end (s)", "deadline", "repairs", "outcome");
  for (const auto& f : faults_) {
    const bool detected = f.detected >= 0;
    const auto [ok, outcome] = verdict(f);
    all_ok = all_ok && ok;
    const std::size_t repairs = f.injected >= 0 ? repairs_of(f, f.injected, 1e18) : 0;
    const std::string td = detected ? fmt(f.detected - f.injected) : "-";
    const std::string tr = f.healed >= 0 ? fmt(f.healed - f.injected) : "-";
    std::printf("%-17s %6.1f %10s %-15s %8s %8.0fs %8zu  %s\n", f.fault.kind.c_str(), f.fault.at_s,
                td.c_str(), f.detected_by.empty() ? "-" : f.detected_by.c_str(), tr.c_str(),
                f.fault.deadline_s, repairs, outcome.c_str());
    nlohmann::json j = {
        {"kind", f.fault.kind},   {"at_s", f.fault.at_s},        {"deadline_s", f.fault.deadline_s},
        {"subjects", f.subjects}, {"injected", f.injected >= 0}, {"detected", detected},
        {"healed", ok},           {"repairs", repairs},          {"outcome", outcome}};
    j["time_to_detect_s"] = detected ? nlohmann::json(f.detected - f.injected) : nullptr;
    j["time_to_repair_s"] = f.healed >= 0 ? nlohmann::json(f.healed - f.injected) : nullptr;
    faults.push_back(std::move(j));
  }
  const std::uint64_t re_repairs = world_.re_repairs();
  std::printf("\nre-repairs (repairs of a subject that was already healthy): %llu\n",
              static_cast<unsigned long long>(re_repairs));
  all_ok = all_ok && re_repairs == 0;
  const auto es = engine_->status();
  const auto xs = executor_->status();
  std::uint64_t requests_recorded = signals_.requests().total();
  std::printf("\nrequests recorded: %llu (%.3g/s)\n",
              static_cast<unsigned long long>(requests_recorded),
              static_cast<double>(requests_recorded) / std::max(t_end, 1e-3));
  std::printf("cycles by trigger (a cycle serves the triggers coalesced into it too):");
  for (const auto& [trig, n] : es.served_by_trigger)
    std::printf(" %s=%llu", trig.c_str(), static_cast<unsigned long long>(n));
  std::printf(" (coalesced %llu)\ntasks by arm:", static_cast<unsigned long long>(es.coalesced));
  nlohmann::json arms = nlohmann::json::object();
  for (const auto& a : xs.arms) {
    if (a.accepted == 0) continue;
    std::printf(" %s=%llu", a.name.c_str(), static_cast<unsigned long long>(a.succeeded));
    arms[a.name] = {{"accepted", a.accepted}, {"succeeded", a.succeeded}, {"failed", a.failed}};
  }
  std::printf("\nrepairs: %llu dispatched, %llu succeeded, %llu failed, %llu approved by the sim\n",
              static_cast<unsigned long long>(es.repairs_dispatched),
              static_cast<unsigned long long>(es.repairs_succeeded),
              static_cast<unsigned long long>(es.repairs_failed),
              static_cast<unsigned long long>(approvals_granted_));
  std::printf("life cycle: %llu verified heals, %llu escalations, breaker %s\n",
              static_cast<unsigned long long>(es.heals),
              static_cast<unsigned long long>(es.escalations),
              es.breaker_open ? ("open: " + es.breaker_reason).c_str() : "closed");
  std::printf("suppressed repairs:");
  if (es.suppressed_by_reason.empty()) std::printf(" none");
  for (const auto& [why, n] : es.suppressed_by_reason)
    std::printf(" %s=%llu", why.c_str(), static_cast<unsigned long long>(n));
  std::printf("\n%s\n", all_ok ? "every fault ended as expected within its deadline"
                               : "SOME FAULTS DID NOT END AS EXPECTED IN TIME");

  if (!opt_.json.empty()) {
    nlohmann::json audit = nlohmann::json::array();
    for (const auto& e : engine_->audit().entries(200)) audit.push_back(halo::to_json(e));
    nlohmann::json series = nlohmann::json::array();
    for (const auto& s : samples_)
      series.push_back({{"t", s.t},
                        {"requests_per_s", s.requests_per_s},
                        {"error_rate", s.error_rate},
                        {"trigger_firings", s.firings},
                        {"repairs", s.repairs}});
    const nlohmann::json report = {
        {"scenario", scenario_.name},    {"duration_s", t_end},
        {"all_healed", all_ok},          {"re_repairs", re_repairs},
        {"faults", std::move(faults)},   {"requests_recorded", requests_recorded},
        {"engine", halo::to_json(es)},   {"arms", std::move(arms)},
        {"series", std::move(series)},   {"audit", std::move(audit)},
        {"notifiers", notifier_report()}};
    std::ofstream out(opt_.json);
    out << report.dump(2) << '\n';
    if (!out) std::fprintf(stderr, "halo-sim: cannot write %s\n", opt_.json.c_str());
  }
  if (!opt_.plot.empty()) write_plot(opt_.plot);
  return all_ok ? 0 : 1;
}

nlohmann::json Sim::notifier_report() const {
  nlohmann::json out = nlohmann::json::array();
  for (const halo::Notifier* n :
       std::initializer_list<const halo::Notifier*>{alerts_.get(), hook_.get()}) {
    if (n == nullptr) continue;
    out.push_back(halo::to_json(n->status()));
  }
  return out;
}

void Sim::write_plot(const std::string& path) {
  const std::string data = path + ".dat";
  {
    std::ofstream out(data);
    out << "# t requests_per_s error_rate trigger_firings repairs\n";
    for (const auto& s : samples_)
      out << s.t << ' ' << s.requests_per_s << ' ' << s.error_rate << ' ' << s.firings << ' '
          << s.repairs << '\n';
  }
  std::ostringstream g;
  g << "set terminal pngcairo size 1000,700 noenhanced\nset output '" << path << "'\n"
    << "set multiplot layout 3,1 title 'halo-sim: " << scenario_.name << "'\n"
    << "set grid\nset xlabel 'seconds'\n";
  for (const auto& f : faults_)
    if (f.injected >= 0)
      g << "set arrow from " << f.injected << ", graph 0 to " << f.injected
        << ", graph 1 nohead dt 2 lc rgb 'gray'\n";
  g << "set ylabel 'M requests/s'\nplot '" << data << "' using 1:($2/1e6) with lines lw 2 title "
    << "'request rate'\n"
    << "set ylabel 'error rate'\nplot '" << data << "' using 1:3 with lines lw 2 title "
    << "'error rate (2 s window)'\n"
    << "set ylabel 'count'\nplot '" << data << "' using 1:4 with steps lw 2 title "
    << "'trigger firings', '' using 1:5 with steps lw 2 title 'repairs done'\n"
    << "unset multiplot\n";
  const std::string script = path + ".gp";
  std::ofstream(script) << g.str();
  const std::string cmd = "gnuplot '" + script + "' 2>&1";
  if (std::system(cmd.c_str()) != 0)
    std::fprintf(stderr, "halo-sim: gnuplot failed; data left in %s\n", data.c_str());
  else
    std::printf("plot: %s\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "halo-sim: a simulated service under load whose injected faults HALO detects and "
      "repairs through Octopus"};
  Options opt;
  app.add_option(
         "--scenario", opt.scenario,
         "default (~40 s), quick (~10 s), safety (~60 s), console (~60 s, manual approval) or a "
         "JSON file")
      ->capture_default_str();
  // CLI::Range lets NaN through (every comparison with it is false).
  const auto finite = CLI::Validator(
      [](const std::string& v) -> std::string {
        try {
          return std::isfinite(std::stod(v)) ? std::string() : "must be a finite number";
        } catch (const std::exception&) {
          return "must be a number";
        }
      },
      "FINITE");
  app.add_option("--duration", opt.duration_s, "override the scenario's length, seconds")
      ->check(finite & CLI::Range(1.0, 3600.0));
  app.add_option("--rate", opt.paced_rate, "requests/s of the paced request thread")
      ->check(finite & CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--fast-threads", opt.fast_threads, "request threads running flat out")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  app.add_option("--executor-threads", opt.executor_threads, "Octopus worker threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--http", opt.http, "serve /metrics, /status, ... on HOST:PORT (PORT 0: any)")
      ->check([](const std::string& v) -> std::string {
        const auto colon = v.rfind(':');
        if (colon == std::string::npos || colon == 0) return "expected HOST:PORT, got '" + v + "'";
        const std::string port = v.substr(colon + 1);
        if (port.empty() || port.size() > 5 ||
            port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
          return "port must be 0..65535, got '" + port + "'";
        return {};
      });
  app.add_option(
      "--token", opt.token,
      "bearer token required by the mutating HTTP routes (without one they are open, and "
      "--http must be a loopback address)");
  app.add_option("--alertmanager", opt.alertmanager,
                 "send critical and escalated weak points to this Alertmanager "
                 "(http://HOST:PORT)");
  app.add_option("--webhook", opt.webhook, "post every HALO event as JSON to this URL");
  app.add_option("--history", opt.history,
                 "keep cycles, audit, silences and escalations in this directory across runs");
  app.add_option("--json", opt.json, "write the report as JSON to this file");
  app.add_option("--plot", opt.plot, "write a PNG plot (gnuplot) to this file");
  app.add_flag("--quiet", opt.quiet, "no live status lines");
  app.add_option("--approve", opt.approve,
                 "manual: the sim approves nothing (a person does, in the console); auto: it "
                 "approves after the scenario's approve_after_s")
      ->check(CLI::IsMember({"manual", "auto"}));
  app.add_option("--fleet", opt.fleet,
                 "run N instances, each with its own engine, sharing one redis-server the sim "
                 "starts (the fleet scenario; implied by --scenario fleet, 3 instances)")
      ->check(CLI::Range(2, 16));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (opt.fleet > 0 || opt.scenario == "fleet") {
    if (opt.scenario != "fleet" && app.count("--scenario") != 0) {
      std::fprintf(stderr, "halo-sim: --fleet runs the fleet scenario, not '%s'\n",
                   opt.scenario.c_str());
      return 2;
    }
    for (const char* flag : {"--http", "--token", "--alertmanager", "--webhook", "--history",
                             "--plot", "--approve", "--rate", "--fast-threads"})
      if (app.count(flag) != 0) {
        std::fprintf(stderr, "halo-sim: %s is not available with the fleet scenario\n", flag);
        return 2;
      }
    try {
      return halo_sim::run_fleet({.instances = opt.fleet > 0 ? opt.fleet : 3,
                                  .duration_s = opt.duration_s > 0 ? opt.duration_s : 24,
                                  .json = opt.json,
                                  .quiet = opt.quiet});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "halo-sim: %s\n", e.what());
      return 2;
    }
  }
  halo_sim::Scenario scenario;
  try {
    scenario = halo_sim::load_scenario(opt.scenario);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "halo-sim: %s\n", e.what());
    return 2;
  }
  if (!opt.approve.empty()) scenario.manual_approval = opt.approve == "manual";
  try {
    Sim sim(std::move(scenario), std::move(opt));
    return sim.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "halo-sim: %s\n", e.what());
    return 2;
  }
}

#include "fleet_sim.hpp"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "halo/engine.hpp"
#include "halo/http/json.hpp"
#include "halo/redis_fleet.hpp"
#include "octo/executor.hpp"

extern char** environ;

namespace halo_sim {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::array<const char*, 4> kDeps = {"db", "payments", "cache", "search"};
constexpr int kDb = 0, kPayments = 1, kCache = 2, kSearch = 3;
constexpr auto kCycleInterval = 250ms;
constexpr auto kRepairTime = 300ms;  // a dependency's restart: the other instances look meanwhile
constexpr auto kLeaseTtl = 2s;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("fleet: no free port on 127.0.0.1");
  return ntohs(addr.sin_port);
}

// The fleet's redis-server: private, no persistence, stopped and started again by redis-outage.
class RedisProcess {
 public:
  RedisProcess()
      : port_(free_port()),
        dir_(fs::temp_directory_path() / ("halo-sim-redis-" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    start();
  }
  ~RedisProcess() {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  int port() const noexcept { return port_; }

  void start() {
    const std::vector<std::string> args = {"redis-server",
                                           "--port",
                                           std::to_string(port_),
                                           "--bind",
                                           "127.0.0.1",
                                           "--dir",
                                           dir_.string(),
                                           "--save",
                                           "",
                                           "--appendonly",
                                           "no",
                                           "--logfile",
                                           (dir_ / "redis.log").string()};
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
      throw std::runtime_error(
          "fleet: cannot start redis-server (is it installed? tools/dev sim installs it)");
    }
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      if (ping()) return;
      std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("fleet: redis-server did not answer PING on 127.0.0.1:" +
                             std::to_string(port_) + " within 10 s (see " + dir_.string() + ")");
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  bool ping() const {
    const timeval tv{0, 200'000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && r->type == REDIS_REPLY_STATUS && std::string_view(r->str) == "PONG";
      if (r != nullptr) freeReplyObject(r);
    }
    if (c != nullptr) redisFree(c);
    return ok;
  }

  int port_;
  fs::path dir_;
  pid_t pid_ = -1;
};

struct Repair {
  int dep;
  int instance;
  double at_s;
  bool needed;  // the dependency was down when it ran
};

// The dependencies every instance shares, and what the instances' repairs did to them.
struct Dependencies {
  explicit Dependencies(int instances)
      : path_down(std::make_unique<std::atomic<bool>[]>(instances * kDeps.size())) {}
  std::array<std::atomic<bool>, kDeps.size()> down{};
  std::unique_ptr<std::atomic<bool>[]> path_down;  // [instance * kDeps.size() + dep]
  std::atomic<int> freeze_repairer_of{-1};         // holder-crash: the dependency
  std::atomic<bool> shutting_down{false};
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  mutable std::mutex mu;
  std::vector<Repair> repairs;  // under mu

  double now_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::vector<Repair> repairs_of(int dep) const {
    std::lock_guard lock(mu);
    std::vector<Repair> out;
    for (const auto& r : repairs)
      if (r.dep == dep) out.push_back(r);
    return out;
  }
};

int dep_index(std::string_view id) {
  for (std::size_t d = 0; d < kDeps.size(); ++d)
    if (id == kDeps[d]) return static_cast<int>(d);
  return -1;
}

// One instance's probe of the shared dependencies.
class Probe : public halo::Analyzer {
 public:
  Probe(const Dependencies& deps, int instance) : deps_(deps), instance_(instance) {}
  std::string_view name() const noexcept override { return "dependency-probe"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override {
    halo::AnalyzerResult r;
    for (std::size_t d = 0; d < kDeps.size(); ++d) {
      if (!deps_.down[d].load() && !deps_.path_down[instance_ * kDeps.size() + d].load()) continue;
      halo::Issue issue;
      issue.id = std::string("dependency-") + kDeps[d];
      issue.analyzer = "dependency-probe";
      issue.severity = halo::Level::kHigh;
      issue.subject_type = "dependency";
      issue.subject_id = kDeps[d];
      issue.rule = "unreachable";
      r.issues.push_back(std::move(issue));
    }
    return r;
  }

 private:
  const Dependencies& deps_;
  int instance_;
};

class Restart : public halo::Strategy {
 public:
  std::string_view name() const noexcept override { return "restart-dependency"; }
  std::optional<octo::Task> plan(const halo::WeakPoint& wp) const override {
    if (wp.subject_type != "dependency") return std::nullopt;
    return octo::Task{.type = "deploy.restart-dependency", .payload = wp.subject_id};
  }
};

// One instance of the service: its own state, engine, executor and cycle timer.
class Instance {
 public:
  Instance(int index, int redis_port, Dependencies& deps)
      : index_(index), name_("sim-" + std::to_string(index)), deps_(deps) {
    halo::EngineConfig cfg;
    cfg.fleet =
        std::make_shared<halo::RedisFleet>(halo::RedisFleetConfig{.port = redis_port,
                                                                  .service = "halo-sim",
                                                                  .instance = name_,
                                                                  .verdict_ttl = 3 * kCycleInterval,
                                                                  .lease_ttl = kLeaseTtl,
                                                                  .timeout = 200ms,
                                                                  .reconnect_base = 50ms,
                                                                  .reconnect_max = 500ms});
    // Every cycle comes from the timer (which verifies too): a frozen instance runs none.
    cfg.safety.verify_interval = {};
    engine_ = std::make_unique<halo::Engine>(state_, std::move(cfg));
    engine_->add_analyzer(std::make_unique<Probe>(deps_, index_));
    engine_->add_strategy(std::make_unique<Restart>());
    for (const char* d : kDeps) engine_->share({"dependency", d});
    octo::ExecutorConfig ec;
    ec.threads = 1;
    for (auto& arm : ec.arms) {
      arm.max_attempts = 1;
      arm.handler = [this](const octo::Task& t, const octo::Context&) { return repair(t); };
    }
    executor_ = std::make_unique<octo::Executor>(std::move(ec));
    engine_->attach(*executor_);
    timer_ = std::thread([this] { run(); });
  }
  ~Instance() { stop(); }
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Stops the timer, then the executor (a frozen repair returns once shutting_down is set).
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (timer_.joinable()) timer_.join();
    executor_->shutdown(octo::ShutdownMode::kDrain, 5s);
  }
  const std::string& name() const noexcept { return name_; }
  bool frozen() const noexcept { return frozen_.load(); }
  halo::Engine& engine() noexcept { return *engine_; }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (!frozen_.load()) {
        lock.unlock();
        engine_->run_cycle("time");
        lock.lock();
      }
      cv_.wait_for(lock, kCycleInterval, [this] { return stopping_; });
    }
  }
  octo::Outcome repair(const octo::Task& t) {
    const int d = dep_index(t.payload);
    if (d < 0) return octo::Outcome::failure("no such dependency: " + t.payload);
    int expected = d;
    if (deps_.freeze_repairer_of.compare_exchange_strong(expected, -1)) {
      // holder-crash: this instance stops mid-repair, as a process that hangs or dies would.
      frozen_ = true;
      while (!deps_.shutting_down.load()) std::this_thread::sleep_for(10ms);
      return octo::Outcome::failure("the instance froze mid-repair");
    }
    std::this_thread::sleep_for(kRepairTime);
    const bool needed = deps_.down[d].exchange(false);
    {
      std::lock_guard lock(deps_.mu);
      deps_.repairs.push_back({d, index_, deps_.now_s(), needed});
    }
    return octo::Outcome::success();
  }

  const int index_;
  const std::string name_;
  Dependencies& deps_;
  halo::SystemState state_;
  std::unique_ptr<halo::Engine> engine_;
  std::unique_ptr<octo::Executor> executor_;
  std::atomic<bool> frozen_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // under mu_
  std::thread timer_;
};

struct FaultRun {
  const char* kind;
  int dep;
  double at_s, deadline_s;
  std::size_t must_repair;  // completed repairs it must end with
  double injected = -1, detected = -1, healed = -1;
  bool ok = false;
  std::string outcome{};
};

// The instances that recorded "repairing elsewhere" for `dep`, from their audit logs.
std::size_t elsewhere_count(std::vector<std::unique_ptr<Instance>>& fleet, int dep) {
  std::size_t n = 0;
  for (auto& i : fleet) {
    bool seen = false;
    for (const auto& e : i->engine().audit().entries())
      seen |= e.subject == kDeps[dep] && e.reason.starts_with("repairing elsewhere");
    n += seen;
  }
  return n;
}

}  // namespace

int run_fleet(const FleetOptions& opt) {
  if (opt.instances < 2) throw std::runtime_error("fleet: --fleet needs at least 2 instances");
  RedisProcess redis;
  Dependencies deps(opt.instances);
  std::vector<std::unique_ptr<Instance>> fleet;
  for (int i = 0; i < opt.instances; ++i)
    fleet.push_back(std::make_unique<Instance>(i, redis.port(), deps));
  if (!opt.quiet)
    std::printf(
        "halo-sim: scenario 'fleet', %d instances sharing redis-server 127.0.0.1:%d, %.0f s\n",
        opt.instances, redis.port(), opt.duration_s);

  std::vector<FaultRun> faults = {{"shared-outage", kDb, 2, 8, 1},
                                  {"one-path", kPayments, 6, 4, 0},
                                  {"holder-crash", kCache, 9, 10, 1},
                                  {"redis-outage", kSearch, 15.5, 8, 1}};
  constexpr double kOnePathEnd = 10, kRedisDown = 15, kRedisUp = 18;
  bool redis_stopped = false, redis_restarted = false;
  std::uint64_t path_base = 0;
  std::size_t repairs_while_redis_down = 0;
  double next_status = 1;
  auto path_weak_points = [&] { return fleet[0]->engine().status().fleet.path_weak_points; };

  double t = 0;
  while ((t = deps.now_s()) < opt.duration_s) {
    for (auto& f : faults) {
      if (f.injected >= 0 || t < f.at_s) continue;
      f.injected = t;
      if (f.dep == kPayments) {
        path_base = path_weak_points();
        deps.path_down[0 * kDeps.size() + kPayments] = true;
      } else {
        if (f.dep == kCache) deps.freeze_repairer_of = kCache;
        deps.down[f.dep] = true;
      }
    }
    if (!redis_stopped && t >= kRedisDown) {
      redis.stop();
      redis_stopped = true;
    }
    if (redis_stopped && !redis_restarted && t >= kRedisUp) {
      repairs_while_redis_down = deps.repairs_of(kSearch).size();
      redis.start();
      redis_restarted = true;
    }
    if (faults[1].injected >= 0 && t >= kOnePathEnd)
      deps.path_down[0 * kDeps.size() + kPayments] = false;
    for (auto& f : faults) {
      if (f.injected < 0) continue;
      if (f.detected < 0) {
        for (auto& i : fleet) {
          const auto s = i->engine().status().fleet;
          for (const auto& v : s.subjects)
            if (v.subject == std::string("dependency:") + kDeps[f.dep] && v.unhealthy > 0)
              f.detected = t;
        }
      }
      if (f.healed < 0 && f.must_repair > 0 && !deps.down[f.dep].load() &&
          deps.repairs_of(f.dep).size() >= f.must_repair)
        f.healed = t;
    }
    if (!opt.quiet && t >= next_status) {
      next_status += 1;
      const auto s = fleet.back()->engine().status().fleet;
      std::size_t repairs = 0, frozen = 0;
      {
        std::lock_guard lock(deps.mu);
        repairs = deps.repairs.size();
      }
      for (auto& i : fleet) frozen += i->frozen();
      std::printf(
          "t=%5.1fs  peers=%zu  fleet=%s  shared weak=%zu  repairs=%zu  elsewhere=%llu  "
          "frozen=%zu\n",
          t, s.peers.size(), s.available ? "up" : "DOWN", s.subjects.size(), repairs,
          static_cast<unsigned long long>(s.repairing_elsewhere), frozen);
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(50ms);
  }
  const std::uint64_t path_seen = path_weak_points() - path_base;
  deps.shutting_down = true;
  for (auto& i : fleet) i->stop();

  // Verdicts.
  std::uint64_t re_repairs = 0;
  for (const auto& r : deps.repairs) re_repairs += !r.needed;
  bool all_ok = re_repairs == 0;
  std::string frozen_name;
  for (auto& i : fleet)
    if (i->frozen()) frozen_name = i->name();
  std::printf("\n%-14s %-20s %6s %10s %8s %9s %8s  %s\n", "fault", "subject", "at (s)",
              "detect (s)", "end (s)", "deadline", "repairs", "outcome");
  nlohmann::json jfaults = nlohmann::json::array();
  for (auto& f : faults) {
    const auto done = deps.repairs_of(f.dep);
    std::string by;
    for (const auto& r : done) by += (by.empty() ? "" : ", ") + fleet[r.instance]->name();
    const bool in_time = f.healed >= 0 && f.healed - f.injected <= f.deadline_s;
    if (f.injected < 0) {
      f.outcome = "not injected";
    } else if (done.size() != f.must_repair) {
      f.outcome =
          std::to_string(done.size()) + " repairs, must be " + std::to_string(f.must_repair);
    } else if (f.dep == kPayments) {
      f.ok = path_seen > 0;
      f.outcome = f.ok ? "no repair; a path weak point on " + fleet[0]->name() + " (" +
                             std::to_string(path_seen) + " cycles)"
                       : "NO PATH WEAK POINT on " + fleet[0]->name();
    } else if (!in_time) {
      f.outcome = "NOT HEALED in time";
    } else if (f.dep == kCache) {
      f.ok = !frozen_name.empty() && by != frozen_name;
      f.outcome = f.ok ? frozen_name + " froze holding it; taken over by " + by
                       : "NO TAKEOVER (frozen: " + frozen_name + ")";
    } else if (f.dep == kSearch) {
      f.ok = repairs_while_redis_down == 0;
      f.outcome = f.ok ? "none while Redis was down; repaired by " + by + " after"
                       : std::to_string(repairs_while_redis_down) + " REPAIRS WHILE REDIS WAS DOWN";
    } else {
      f.ok = true;
      f.outcome = "repaired by " + by + "; " + std::to_string(elsewhere_count(fleet, f.dep)) +
                  " others recorded repairing elsewhere";
    }
    all_ok = all_ok && f.ok;
    char detect[32] = "-", end[32] = "-";
    if (f.detected >= 0) std::snprintf(detect, sizeof detect, "%.2f", f.detected - f.injected);
    if (f.healed >= 0) std::snprintf(end, sizeof end, "%.2f", f.healed - f.injected);
    std::printf("%-14s %-20s %6.1f %10s %8s %8.0fs %8zu  %s\n", f.kind,
                (std::string("dependency:") + kDeps[f.dep]).c_str(), f.at_s, detect, end,
                f.deadline_s, done.size(), f.outcome.c_str());
    jfaults.push_back(
        {{"kind", f.kind},
         {"subject", std::string("dependency:") + kDeps[f.dep]},
         {"at_s", f.at_s},
         {"repairs", done.size()},
         {"must_repair", f.must_repair},
         {"repaired_by", by},
         {"time_to_detect_s",
          f.detected >= 0 ? nlohmann::json(f.detected - f.injected) : nlohmann::json(nullptr)},
         {"time_to_repair_s",
          f.healed >= 0 ? nlohmann::json(f.healed - f.injected) : nlohmann::json(nullptr)},
         {"ok", f.ok},
         {"outcome", f.outcome}});
  }
  std::printf("\nre-repairs (repairs of a dependency that was already up): %llu\n",
              static_cast<unsigned long long>(re_repairs));
  std::printf("\n%-8s %7s %7s %6s %9s %10s %6s %8s %9s %11s\n", "instance", "cycles", "leases",
              "lost", "written", "rejected", "else", "path wp", "no-redis", "round trips");
  nlohmann::json jinstances = nlohmann::json::array();
  for (auto& i : fleet) {
    const auto es = i->engine().status();
    const auto& s = es.fleet;
    std::printf("%-8s %7llu %7llu %6llu %9llu %10llu %6llu %8llu %9llu %11llu%s\n",
                i->name().c_str(), static_cast<unsigned long long>(es.cycles),
                static_cast<unsigned long long>(s.leases_granted),
                static_cast<unsigned long long>(s.leases_lost),
                static_cast<unsigned long long>(s.outcomes_written),
                static_cast<unsigned long long>(s.outcomes_rejected),
                static_cast<unsigned long long>(s.repairing_elsewhere),
                static_cast<unsigned long long>(s.path_weak_points),
                static_cast<unsigned long long>(s.unavailable_cycles),
                static_cast<unsigned long long>(s.round_trips), i->frozen() ? "  (froze)" : "");
    nlohmann::json j = halo::to_json(es).at("fleet");
    j["cycles"] = es.cycles;
    j["froze"] = i->frozen();
    jinstances.push_back(std::move(j));
  }
  std::printf("\n%s\n", all_ok
                            ? "every shared fault ended with the repairs it must (one each, none "
                              "for a single instance's path)"
                            : "SOME SHARED FAULTS DID NOT END WITH THE REPAIRS THEY MUST");
  if (!opt.json.empty()) {
    const nlohmann::json report = {
        {"scenario", "fleet"},          {"instances", opt.instances},
        {"all_healed", all_ok},         {"re_repairs", re_repairs},
        {"faults", std::move(jfaults)}, {"fleet", std::move(jinstances)}};
    std::ofstream out(opt.json);
    out << report.dump(2) << '\n';
    if (!out) std::fprintf(stderr, "halo-sim: cannot write %s\n", opt.json.c_str());
  }
  return all_ok ? 0 : 1;
}

}  // namespace halo_sim

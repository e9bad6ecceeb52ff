#include "world.hpp"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace halo_sim {

namespace fs = std::filesystem;

namespace {

std::string padded(const char* prefix, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%03d", prefix, i);
  return buf;
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("halo-sim: cannot write " + p.string());
}

// A repair takes a few milliseconds, as real ones would.
void work(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

World::World(std::shared_ptr<const octo::Clock> clock)
    : clock_(std::move(clock)),
      state_(clock_, nullptr, std::chrono::seconds(2)),
      alive_(new std::atomic<bool>[kAgents]),
      error_permille_(new std::atomic<int>[kEndpoints]),
      patrol_(new std::atomic<int>[std::size(kPatrol)]),
      unreachable_(new std::atomic<bool>[kAgents]) {
  for (int i = 0; i < kAgents; ++i) {
    agents_.push_back(padded("agent-", i));
    alive_[i] = true;
    unreachable_[i] = false;
    state_.upsert_agent({.id = agents_.back(),
                         .name = padded("dreamops-", i),
                         .squad = padded("squad-", i % kSquads)});
  }
  for (int i = 0; i < kSquads; ++i) state_.upsert_squad({.id = padded("squad-", i)});
  for (int i = 0; i < kEndpoints; ++i) {
    endpoints_.push_back(padded("/api/e", i));
    counters_.push_back(&state_.endpoint(endpoints_.back()));
    error_permille_[i] = 0;
  }
  for (int i = 0; i < 12; ++i) baseline_[padded("KEY_", i)] = padded("value-", i);
  state_.set_env_baseline(baseline_);
  state_.set_env_snapshot("prod", baseline_);

  dir_ = fs::temp_directory_path() / ("halo-sim-" + std::to_string(::getpid()));
  fs::create_directories(dir_ / "pristine");
  for (int i = 0; i < kFiles; ++i) {
    const std::string name = padded("artifact-", i) + ".bin";
    const std::string content = "release build " + name + std::string(4096, char('a' + i));
    write_file(dir_ / "pristine" / name, content);
    write_file(dir_ / name, content);
    files_.push_back((dir_ / name).string());
    state_.add_artifact(files_.back(), *halo::checksum_file(files_.back()));
  }
  for (int i = 0; i < kGrafts; ++i) {
    grafts_.push_back(padded("graft-", i));
    state_.upsert_graft({.id = grafts_.back(), .name = padded("link-", i)});
  }
  for (std::size_t i = 0; i < std::size(kPatrol); ++i) {
    patrol_[i] = static_cast<int>(halo::CheckStatus::kGreen);
    std::atomic<int>* flag = &patrol_[i];
    state_.add_patrol_check(
        {.name = kPatrol[i], .run = [flag] {
           const auto s = static_cast<halo::CheckStatus>(flag->load());
           return halo::CheckResult{s, s == halo::CheckStatus::kGreen ? "" : "dependency down"};
         }});
  }
}

World::~World() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

double World::now_s() const noexcept {
  return std::chrono::duration<double>(clock_->now()).count();
}

void World::heartbeat_round(std::uint64_t round) {
  for (int i = 0; i < kAgents; ++i)
    if (alive_[i].load(std::memory_order_relaxed) &&
        !unreachable_[i].load(std::memory_order_relaxed))
      state_.heartbeat(agents_[i]);
  for (int i = 0; i < kEndpoints; ++i) {
    const bool down = error_permille_[i].load(std::memory_order_relaxed) >= 500;
    state_.report_probe(endpoints_[i], down ? 503 : 200, down ? 900.0 : 12.0);
  }
  // Squads finish tasks; one in twenty fails (well under the 30 % rule).
  for (int i = 0; i < kSquads; ++i)
    state_.record_squad_task(padded("squad-", i), (round + static_cast<std::uint64_t>(i)) % 20 != 0,
                             80.0);
}

std::vector<std::string> World::crash_agents(int count) {
  std::vector<std::string> out;
  for (int n = 0; n < count; ++n) {
    const int i = (next_victim_.fetch_add(1) * 17 + 3) % kAgents;
    alive_[i] = false;
    state_.set_agent_online(agents_[i], false);
    out.push_back("agent:" + agents_[i]);
  }
  return out;
}

std::vector<std::string> World::break_endpoints(int count, double error_rate) {
  std::vector<std::string> out;
  for (int i = 0; i < count && i < kEndpoints; ++i) {
    const int e = (i * 3) % kEndpoints;
    error_permille_[e] = static_cast<int>(error_rate * 1000);
    out.push_back("endpoint:" + endpoints_[e]);
  }
  return out;
}

std::vector<std::string> World::drift_env() {
  auto live = baseline_;
  live.erase("KEY_003");
  live.erase("KEY_007");
  live["KEY_010"] = "drifted";
  state_.set_env_snapshot("prod", live);
  return {"env:prod"};
}

std::vector<std::string> World::corrupt_file() {
  write_file(files_[2], "corrupted bytes");
  return {"artifact:" + files_[2]};
}

std::vector<std::string> World::break_graft() {
  state_.set_graft_status(grafts_[4], halo::GraftStatus::kFailed, "link broken");
  return {"graft:" + grafts_[4]};
}

std::vector<std::string> World::fail_patrol_dependency() {
  patrol_[std::size(kPatrol) - 1] = static_cast<int>(halo::CheckStatus::kRed);
  return {std::string("patrol:") + kPatrol[std::size(kPatrol) - 1]};
}

octo::Outcome World::revive(int i, const std::string& id) {
  const bool unreachable = unreachable_[i].load();
  count_repair("agent:" + id, alive_[i].load() && !unreachable);
  if (unreachable) return octo::Outcome::failure("agent " + id + " is unreachable");
  if (i == kLiar && liar_.load()) return octo::Outcome::success();  // and fixes nothing
  alive_[i] = true;
  state_.set_agent_online(id, true);
  state_.heartbeat(id);
  if (i == kParent)  // the endpoints it serves come back with it
    for (const int e : kChildren) error_permille_[e] = 0;
  repaired("agent:" + id);
  return octo::Outcome::success();
}

octo::Outcome World::repair(const octo::Task& t) {
  const std::string& id = t.payload;
  if (t.type == "agent.revive" || t.type == "agent.redeploy") {
    work(t.type == "agent.revive" ? 20 : 40);
    for (int i = 0; i < kAgents; ++i)
      if (agents_[i] == id) return revive(i, id);
  } else if (t.type == "repair.api.endpoint" || t.type == "repair.api.redeploy") {
    work(250);  // an endpoint restart: long enough that a burst shows in the error rate
    for (int i = 0; i < kEndpoints; ++i) {
      if (endpoints_[i] != id) continue;
      count_repair("endpoint:" + id, error_permille_[i].load() == 0);
      error_permille_[i] = 0;
      state_.report_probe(id, 200, 12.0);
      repaired("endpoint:" + id);
      if (i == kFlapper && flaps_left_.load() > 0) rebreak_at_ = now_s() + 1.5;
      return octo::Outcome::success();
    }
  } else if (t.type == "env.sync") {
    work(10);
    auto env = state_.env();
    auto it = env.snapshots.find(id);
    if (it != env.snapshots.end()) {
      count_repair("env:" + id, it->second == env.baseline);
      for (const auto& [k, v] : env.baseline) it->second[k] = v;
      state_.set_env_snapshot(id, it->second);
      repaired("env:" + id);
      return octo::Outcome::success();
    }
  } else if (t.type == "build.restore-artifact") {
    work(10);
    const fs::path target(id);
    count_repair("artifact:" + id,
                 halo::checksum_file(id) ==
                     halo::checksum_file((dir_ / "pristine" / target.filename()).string()));
    std::error_code ec;
    fs::copy_file(dir_ / "pristine" / target.filename(), target,
                  fs::copy_options::overwrite_existing, ec);
    if (ec) return octo::Outcome::failure("restore " + id + ": " + ec.message());
    repaired("artifact:" + id);
    return octo::Outcome::success();
  } else if (t.type == "graft.repair" || t.type == "graft.install") {
    work(25);
    const auto snap = state_.snapshot();
    bool installed = false;
    snap->grafts.for_each([&](const halo::GraftInfo& g) {
      installed |= g.id == id && g.status == halo::GraftStatus::kInstalled;
    });
    count_repair("graft:" + id, installed);
    if (state_.set_graft_status(id, halo::GraftStatus::kInstalled)) {
      repaired("graft:" + id);
      return octo::Outcome::success();
    }
  } else if (t.type == "squad.rebalance" || t.type == "squad.optimize") {
    work(10);
    count_repair("squad:" + id, false);
    state_.upsert_squad({.id = id});
    repaired("squad:" + id);
    return octo::Outcome::success();
  } else if (t.type == "patrol.followup") {
    work(5);
    for (std::size_t i = 0; i < std::size(kPatrol); ++i) {
      if (id != kPatrol[i]) continue;
      count_repair("patrol:" + id,
                   patrol_[i].load() == static_cast<int>(halo::CheckStatus::kGreen));
      patrol_[i] = static_cast<int>(halo::CheckStatus::kGreen);
      repaired("patrol:" + id);
      return octo::Outcome::success();
    }
  }
  return octo::Outcome::failure("halo-sim has no repair for " + t.type + " " + id);
}

std::vector<std::string> World::lying_agent() {
  liar_ = true;
  alive_[kLiar] = false;
  state_.set_agent_online(agents_[kLiar], false);
  return {"agent:" + agents_[kLiar]};
}

std::vector<std::string> World::flapping_endpoint(int flaps) {
  flaps_left_ = flaps;
  error_permille_[kFlapper] = 1000;
  return {"endpoint:" + endpoints_[kFlapper]};
}

std::vector<std::string> World::parent_down() {
  alive_[kParent] = false;
  state_.set_agent_online(agents_[kParent], false);
  std::vector<std::string> out{"agent:" + agents_[kParent]};
  for (const int e : kChildren) {
    error_permille_[e] = 1000;
    // Reported at once, so that the next cycle sees the children with their parent.
    state_.report_probe(endpoints_[e], 503, 900.0);
    out.push_back("endpoint:" + endpoints_[e]);
  }
  return out;
}

std::vector<std::string> World::break_maintained_graft() {
  state_.set_graft_status(grafts_[kMaintainedGraft], halo::GraftStatus::kFailed, "upgrade");
  return {"graft:" + grafts_[kMaintainedGraft]};
}

std::vector<std::string> World::partition(double share) {
  std::vector<std::string> out;
  const int n = static_cast<int>(share * kAgents);
  for (int i = 0; i < n; ++i) {
    unreachable_[i] = true;
    out.push_back("agent:" + agents_[i]);
  }
  return out;
}

void World::end_partition() {
  for (int i = 0; i < kAgents; ++i) unreachable_[i] = false;
}

void World::tick() {
  const double at = rebreak_at_.load();
  if (at < 0 || now_s() < at) return;
  rebreak_at_ = -1;
  flaps_left_.fetch_sub(1);
  error_permille_[kFlapper] = 1000;
}

std::vector<std::pair<std::string, std::string>> World::dependencies() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const int e : kChildren) out.emplace_back(endpoints_[e], agents_[kParent]);
  return out;
}

void World::count_repair(const std::string& subject, bool healthy) {
  if (healthy) re_repairs_.fetch_add(1);
  const double t = now_s();
  std::lock_guard lock(mu_);
  repairs_[subject].push_back(t);
}

std::vector<double> World::repairs_of(const std::string& subject) const {
  std::lock_guard lock(mu_);
  auto it = repairs_.find(subject);
  return it == repairs_.end() ? std::vector<double>{} : it->second;
}

void World::repaired(const std::string& subject) {
  const double t = now_s();
  std::lock_guard lock(mu_);
  repaired_[subject] = t;
}

double World::repaired_at(const std::string& subject) const {
  std::lock_guard lock(mu_);
  auto it = repaired_.find(subject);
  return it == repaired_.end() ? -1.0 : it->second;
}

}  // namespace halo_sim

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
      patrol_(new std::atomic<int>[std::size(kPatrol)]) {
  for (int i = 0; i < kAgents; ++i) {
    agents_.push_back(padded("agent-", i));
    alive_[i] = true;
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
    if (alive_[i].load(std::memory_order_relaxed)) state_.heartbeat(agents_[i]);
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

octo::Outcome World::repair(const octo::Task& t) {
  const std::string& id = t.payload;
  if (t.type == "agent.revive") {
    work(20);
    for (int i = 0; i < kAgents; ++i) {
      if (agents_[i] != id) continue;
      alive_[i] = true;
      state_.set_agent_online(id, true);
      state_.heartbeat(id);
      repaired("agent:" + id);
      return octo::Outcome::success();
    }
  } else if (t.type == "repair.api.endpoint") {
    work(250);  // an endpoint restart: long enough that a burst shows in the error rate
    for (int i = 0; i < kEndpoints; ++i) {
      if (endpoints_[i] != id) continue;
      error_permille_[i] = 0;
      state_.report_probe(id, 200, 12.0);
      repaired("endpoint:" + id);
      return octo::Outcome::success();
    }
  } else if (t.type == "env.sync") {
    work(10);
    auto env = state_.env();
    auto it = env.snapshots.find(id);
    if (it != env.snapshots.end()) {
      for (const auto& [k, v] : env.baseline) it->second[k] = v;
      state_.set_env_snapshot(id, it->second);
      repaired("env:" + id);
      return octo::Outcome::success();
    }
  } else if (t.type == "build.restore-artifact") {
    work(10);
    const fs::path target(id);
    std::error_code ec;
    fs::copy_file(dir_ / "pristine" / target.filename(), target,
                  fs::copy_options::overwrite_existing, ec);
    if (ec) return octo::Outcome::failure("restore " + id + ": " + ec.message());
    repaired("artifact:" + id);
    return octo::Outcome::success();
  } else if (t.type == "graft.repair" || t.type == "graft.install") {
    work(25);
    if (state_.set_graft_status(id, halo::GraftStatus::kInstalled)) {
      repaired("graft:" + id);
      return octo::Outcome::success();
    }
  } else if (t.type == "squad.rebalance" || t.type == "squad.optimize") {
    work(10);
    state_.upsert_squad({.id = id});
    repaired("squad:" + id);
    return octo::Outcome::success();
  } else if (t.type == "patrol.followup") {
    work(5);
    for (std::size_t i = 0; i < std::size(kPatrol); ++i) {
      if (id != kPatrol[i]) continue;
      patrol_[i] = static_cast<int>(halo::CheckStatus::kGreen);
      repaired("patrol:" + id);
      return octo::Outcome::success();
    }
  }
  return octo::Outcome::failure("halo-sim has no repair for " + t.type + " " + id);
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

// Built against an installed octohalo asked for every component: the exported targets and
// headers are usable together: the HALO engine (its xxHash use stays inside the library), the
// SQLite journal, the Redis Streams arms (constructed without a Redis: publishing reports the
// refused connection), the fleet (an engine sharing a subject with a fleet whose Redis refuses:
// the cycle reports it unavailable) and octohalo::http (metrics text, a cycle as JSON, a server
// started on a free loopback port).
#include <unistd.h>
#include <halo/engine.hpp>
#include <halo/http/json.hpp>
#include <halo/http/metrics.hpp>
#include <halo/http/server.hpp>
#include <halo/redis_fleet.hpp>
#include <halo/triggers.hpp>
#include <octo/executor.hpp>
#include <octo/redis_streams.hpp>
#include <octo/sqlite_journal.hpp>

#include <cstdio>
#include <filesystem>

int main() {
  halo::SystemState state;
  state.upsert_agent({.id = "a-1", .online = false});
  halo::EngineConfig ecfg;
  ecfg.concurrency = 2;
  halo::Engine engine(state, ecfg);

  const auto journal_path = std::filesystem::temp_directory_path() /
                            ("octohalo-consumer-" + std::to_string(::getpid()) + ".db");
  octo::ExecutorConfig cfg;
  cfg.journal = std::make_shared<octo::SqliteJournal>(octo::SqliteJournalOptions{
      .path = journal_path.string(), .durability = octo::Durability::kSync});
  int revived = 0;
  cfg.on("deploy", [&](const octo::Task& t, const octo::Context&) {
    ++revived;
    state.set_agent_online(t.payload, true);
    return octo::Outcome::success();
  });
  octo::Executor ex(std::move(cfg));
  engine.attach(ex);

  int cycles = 0;
  auto loop = halo::register_loop({}, [&](const halo::CycleRequest& r) {
    if (r.trigger == "deploy") ++cycles;
  });
  loop->notify_deploy({{"version", "1"}});
  halo::record_request();
  auto cycle = engine.run_cycle("manual");
  ex.wait_idle();
  const bool healed = engine.run_cycle("manual")->weak_points.empty();
  const auto metrics = halo::prometheus_text(&engine, &ex, nullptr);
  const bool cycle_json = halo::to_json(*cycle).contains("weak_points");
  halo::HttpServer http({.token = "install"}, engine, &ex);
  http.start();
  const bool served = http.port() > 0;
  http.stop();
  ex.shutdown(octo::ShutdownMode::kDrain);
  loop.stop();
  const auto journaled = ex.status().accepted;
  std::filesystem::remove(journal_path);
  std::filesystem::remove(journal_path.string() + "-wal");

  octo::ExecutorConfig rcfg;
  octo::RedisStreams rs(std::move(rcfg), {.port = 1, .arms = {"batch"}, .consume = false});
  const auto published = rs.publish({.type = "run-batch-job"});
  halo::Engine fleet_engine(
      state, {.fleet = std::make_shared<halo::RedisFleet>(halo::RedisFleetConfig{.port = 1})});
  fleet_engine.share({"agent", "a-1"});
  fleet_engine.run_cycle("manual");
  const auto fleet = fleet_engine.status().fleet;
  std::printf(
      "revived %d, healed %d, deploy cycles %d, requests %llu, journaled %llu, publish without "
      "redis: %s, summary: %s, metrics %zu bytes, cycle json %d, served %d, fleet: %s\n",
      revived, healed, cycles,
      static_cast<unsigned long long>(halo::default_signals().requests().total()),
      static_cast<unsigned long long>(journaled), published.error.c_str(),
      cycle->summary.text.c_str(), metrics.size(), cycle_json, served, fleet.reason.c_str());
  return revived == 1 && healed && cycles == 1 && halo::default_signals().requests().total() == 1 &&
                 journaled == 1 && !published &&
                 metrics.find("octohalo_arm_tasks_accepted_total") != std::string::npos &&
                 cycle_json && served && fleet.enabled && !fleet.available &&
                 fleet.reason.find("127.0.0.1:1") != std::string::npos
             ? 0
             : 1;
}

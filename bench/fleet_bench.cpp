// The fleet's cost in a HALO cycle, against one local redis-server (started here on a free port).
//
// BM_FleetCycle/subjects:N: per iteration, a cycle of an engine whose N dependencies are local,
// a cycle of one whose N dependencies are shared with the fleet (healthy: the sync round trip
// only), and one PING on a connection of its own, each timed: the same run, alternated, so that
// the VM's changes of speed hit all three. Counters: local_us, shared_us and ping_us (means per
// iteration), added_per_ping = (shared - local) / ping, and round_trips per shared cycle
// (counted by the fleet client, not timed).
// BM_FleetClaims/subjects:N: one exchange claiming N fresh shared subjects (the second round
// trip of a cycle that opens N shared weak points), with its time as a multiple of a PING.
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "halo/engine.hpp"
#include "halo/redis_fleet.hpp"
#include "redis_server.hpp"

namespace {

using Clock = std::chrono::steady_clock;

octo_test::RedisServer& server() {
  static octo_test::RedisServer s;
  return s;
}

std::string id(std::int64_t i) {
  std::string s("dep-");
  s.append(std::to_string(i));
  return s;
}

// N healthy dependencies: the analyzer reports nothing, the engine still publishes N verdicts.
struct Quiet : halo::Analyzer {
  std::string_view name() const noexcept override { return "dependency-probe"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override { return {}; }
};

struct Service {
  std::shared_ptr<octo::ManualClock> clock = std::make_shared<octo::ManualClock>();
  octo::Ticker ticker{
      {.resolution = std::chrono::milliseconds(10), .clock = clock, .own_thread = false}};
  halo::SystemState state{clock, &ticker};
  std::unique_ptr<halo::Engine> engine;

  // With a fleet, the `subjects` dependencies are shared.
  Service(std::int64_t subjects, std::shared_ptr<halo::Fleet> fleet) {
    const bool shares = fleet != nullptr;
    halo::EngineConfig cfg;
    cfg.fleet = std::move(fleet);
    engine = std::make_unique<halo::Engine>(state, std::move(cfg));
    engine->add_analyzer(std::make_unique<Quiet>());
    if (shares)
      for (std::int64_t i = 0; i < subjects; ++i) engine->share({"dependency", id(i)});
  }
};

class Ping {
 public:
  Ping() {
    const timeval tv{1, 0};
    ctx_ = redisConnectWithTimeout("127.0.0.1", server().port(), tv);
  }
  ~Ping() {
    if (ctx_ != nullptr) redisFree(ctx_);
  }
  Ping(const Ping&) = delete;
  Ping& operator=(const Ping&) = delete;
  bool once() {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "PING"));
    const bool ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
    if (r != nullptr) freeReplyObject(r);
    return ok;
  }

 private:
  redisContext* ctx_ = nullptr;
};

double us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

void BM_FleetCycle(benchmark::State& st) {
  const std::int64_t n = st.range(0);
  auto fleet = std::make_shared<halo::RedisFleet>(
      halo::RedisFleetConfig{.port = server().port(), .service = "bench", .instance = "one"});
  Service local(n, nullptr);
  Service shared(n, fleet);
  Ping ping;
  shared.engine->run_cycle("bench");  // connects
  if (!shared.engine->status().fleet.available) {
    st.SkipWithError("the fleet's redis-server is not available");
    return;
  }
  double local_us = 0, shared_us = 0, ping_us = 0;
  const std::uint64_t trips0 = fleet->round_trips();
  for (auto _ : st) {
    auto t0 = Clock::now();
    benchmark::DoNotOptimize(local.engine->run_cycle("bench"));
    auto t1 = Clock::now();
    benchmark::DoNotOptimize(shared.engine->run_cycle("bench"));
    auto t2 = Clock::now();
    if (!ping.once()) st.SkipWithError("PING failed");
    auto t3 = Clock::now();
    local_us += us(t1 - t0);
    shared_us += us(t2 - t1);
    ping_us += us(t3 - t2);
  }
  const double k = static_cast<double>(st.iterations());
  st.counters["local_us"] = local_us / k;
  st.counters["shared_us"] = shared_us / k;
  st.counters["ping_us"] = ping_us / k;
  st.counters["added_per_ping"] = (shared_us - local_us) / ping_us;
  st.counters["round_trips"] = static_cast<double>(fleet->round_trips() - trips0) / k;
}
BENCHMARK(BM_FleetCycle)
    ->ArgName("subjects")
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_FleetClaims(benchmark::State& st) {
  const std::int64_t n = st.range(0);
  halo::RedisFleet fleet({.port = server().port(), .service = "bench-claims", .instance = "one"});
  Ping ping;
  std::int64_t round = 0;
  double claim_us = 0, ping_us = 0;
  for (auto _ : st) {
    st.PauseTiming();
    std::vector<std::string> claims;
    claims.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) claims.push_back("dependency:" + id(round * n + i));
    ++round;
    st.ResumeTiming();
    auto t0 = Clock::now();
    const auto r =
        fleet.exchange({}, claims, {.max_repairs = 1'000'000, .repair_burst = 1'000'000});
    auto t1 = Clock::now();
    if (!r.ok) st.SkipWithError(r.error.c_str());
    if (!ping.once()) st.SkipWithError("PING failed");
    auto t2 = Clock::now();
    claim_us += us(t1 - t0);
    ping_us += us(t2 - t1);
  }
  const double k = static_cast<double>(st.iterations());
  st.counters["claims_us"] = claim_us / k;
  st.counters["ping_us"] = ping_us / k;
  st.counters["claims_per_ping"] = claim_us / ping_us;
}
BENCHMARK(BM_FleetClaims)
    ->ArgName("subjects")
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

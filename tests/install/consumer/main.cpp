// Built against an installed octohalo: proves the exported targets and headers are usable, the
// HALO engine included (its xxHash use stays inside the library).
#include <halo/engine.hpp>
#include <halo/triggers.hpp>
#include <octo/executor.hpp>

#include <cstdio>

int main() {
  halo::SystemState state;
  state.upsert_agent({.id = "a-1", .online = false});
  halo::EngineConfig ecfg;
  ecfg.concurrency = 2;
  halo::Engine engine(state, ecfg);

  octo::ExecutorConfig cfg;
  cfg.observer = &engine.observer();
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
  ex.shutdown(octo::ShutdownMode::kDrain);
  loop.stop();
  std::printf("revived %d, healed %d, deploy cycles %d, requests %llu, summary: %s\n", revived,
              healed, cycles,
              static_cast<unsigned long long>(halo::default_signals().requests().total()),
              cycle->summary.text.c_str());
  return revived == 1 && healed && cycles == 1 && halo::default_signals().requests().total() == 1
             ? 0
             : 1;
}

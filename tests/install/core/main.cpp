// Built against an installed octohalo that was asked for no component: the executor runs a
// typed task and a HALO cycle revives an offline agent through it, with only oneTBB and
// Threads found by the package.
#include <halo/engine.hpp>
#include <octo/executor.hpp>

#include <cstdio>

int main() {
  halo::SystemState state;
  state.upsert_agent({.id = "a-1", .online = false});
  halo::EngineConfig ecfg;
  ecfg.concurrency = 2;
  halo::Engine engine(state, ecfg);
  octo::ExecutorConfig cfg;
  int revived = 0;
  cfg.on("deploy", [&](const octo::Task& t, const octo::Context&) {
    ++revived;
    state.set_agent_online(t.payload, true);
    return octo::Outcome::success();
  });
  octo::Executor ex(std::move(cfg));
  engine.attach(ex);
  engine.run_cycle("manual");
  ex.wait_idle();
  const bool healed = engine.run_cycle("manual")->weak_points.empty();
  ex.shutdown(octo::ShutdownMode::kDrain);
  std::printf("revived %d, healed %d\n", revived, healed);
  return revived == 1 && healed ? 0 : 1;
}

// Built against an installed octohalo: proves the exported targets and headers are usable.
#include <halo/triggers.hpp>
#include <octo/executor.hpp>

#include <cstdio>

int main() {
  octo::ExecutorConfig cfg;
  int revived = 0;
  cfg.on("deploy", [&](const octo::Task&, const octo::Context&) {
    ++revived;
    return octo::Outcome::success();
  });
  octo::Executor ex(std::move(cfg));
  int cycles = 0;
  auto loop = halo::register_loop({}, [&](const halo::CycleRequest& r) {
    if (r.trigger == "deploy") ++cycles;
  });
  loop->notify_deploy({{"version", "1"}});
  halo::record_request();
  if (!ex.enqueue({.type = "agent.revive", .payload = "a-1"})) return 1;
  ex.shutdown(octo::ShutdownMode::kDrain);
  loop.stop();
  std::printf("revived %d, deploy cycles %d, requests %llu\n", revived, cycles,
              static_cast<unsigned long long>(halo::default_signals().requests().total()));
  return revived == 1 && cycles == 1 && halo::default_signals().requests().total() == 1 ? 0 : 1;
}

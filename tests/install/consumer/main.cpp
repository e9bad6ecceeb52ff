// Built against an installed octohalo: proves the exported targets and headers are usable.
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
  if (!ex.enqueue({.type = "agent.revive", .payload = "a-1"})) return 1;
  ex.shutdown(octo::ShutdownMode::kDrain);
  std::printf("revived %d\n", revived);
  return revived == 1 ? 0 : 1;
}

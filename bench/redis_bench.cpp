// bench_redis: stream-backed arms end to end against one local redis-server (started here on a
// free port, no persistence), beside the same arm in process.
//
// BM_Redis_Tasks/workers:W/prefetch:P spawns W worker processes (this binary with --worker), then
// per iteration publishes kTasks no-op tasks (pipelined XADD, 1,000 a round trip) and waits until
// the stream is empty and nothing is pending: publish, fetch, run, XACK and XDEL, all included.
// BM_InProcess_Tasks enqueues the same tasks on the same arm without Redis. The per-task overhead
// of the stream is the difference of the two per-task times (counter per_task: seconds a task,
// shown with a unit on the console).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "noop_arm.hpp"
#include "octo/redis_streams.hpp"
#include "redis_server.hpp"

namespace {

constexpr int kTasks = 20'000;

octo_test::RedisServer& server() {
  static octo_test::RedisServer s;
  return s;
}

int worker_main(int port, const char* name, std::uint32_t prefetch) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  octo::RedisStreams rs(octo_bench::noop_arm_config(),
                        {.port = port, .consumer = name, .arms = {"work"}, .prefetch = prefetch});
  int sig = 0;
  sigwait(&term, &sig);
  rs.stop();
  return 0;
}

void BM_Redis_Tasks(benchmark::State& state) {
  auto& redis = server();
  const auto workers = static_cast<int>(state.range(0));
  const auto prefetch = std::to_string(state.range(1));
  std::vector<pid_t> pids;
  for (int w = 0; w < workers; ++w) {
    pids.push_back(
        octo_test::spawn_process({"/proc/self/exe", "--worker", std::to_string(redis.port()),
                                  "bench-w" + std::to_string(w), prefetch}));
  }
  octo::RedisStreams publisher(octo_bench::noop_arm_config(),
                               {.port = redis.port(), .arms = {"work"}, .consume = false});
  std::vector<octo::Task> batch(1000, octo::Task{.type = "job", .payload = "payload-of-a-task"});
  for (auto _ : state) {
    for (int sent = 0; sent < kTasks; sent += static_cast<int>(batch.size())) {
      for (const auto& r : publisher.publish(batch)) {
        if (!r) state.SkipWithError(r.error.c_str());
      }
    }
    while (redis.command({"XLEN", "octo:work"}) != "0" ||
           redis.command({"EVAL", "return redis.call('XPENDING', KEYS[1], 'octo')[1]", "1",
                          "octo:work"}) != "0") {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
  state.counters["per_task"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kTasks),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  for (pid_t p : pids) {
    ::kill(p, SIGTERM);
    ::waitpid(p, nullptr, 0);
  }
}
// prefetch 2 is the default (a dead worker strands at most 4 tasks); 64 suits tasks much shorter
// than a Redis round trip, such as these no-ops.
BENCHMARK(BM_Redis_Tasks)
    ->ArgNames({"workers", "prefetch"})
    ->ArgsProduct({{1, 2}, {2, 64}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_InProcess_Tasks(benchmark::State& state) {
  octo::Executor ex(octo_bench::noop_arm_config());
  for (auto _ : state) {
    for (int i = 0; i < kTasks; ++i) {
      if (!ex.enqueue({.type = "job", .payload = "payload-of-a-task"})) std::abort();
    }
    ex.wait_idle();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
  state.counters["per_task"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kTasks),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_InProcess_Tasks)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--worker") == 0) {
    return worker_main(std::atoi(argv[2]), argv[3], static_cast<std::uint32_t>(std::atoi(argv[4])));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// An idle service: an executor, an engine attached to it and a loop on the default signals,
// nothing queued, running or recorded. octohalo's own threads (named octo-* and halo-*) then wake
// at most 50 times a second in all, counted from their context switches in /proc; and when
// requests come again the epoch they are counted on is the current one at once.
#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "halo/engine.hpp"
#include "octo/executor.hpp"

namespace {

using namespace std::chrono_literals;

struct Switches {
  std::uint64_t total = 0;
  int threads = 0;
};

// Context switches (voluntary and not) of this process's threads named octo-* or halo-*.
Switches octohalo_switches() {
  Switches s;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return s;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string dir = std::string("/proc/self/task/") + e->d_name;
    std::string comm;
    std::getline(std::ifstream(dir + "/comm"), comm);
    if (comm.rfind("octo-", 0) != 0 && comm.rfind("halo-", 0) != 0) continue;
    ++s.threads;
    std::ifstream status(dir + "/status");
    for (std::string line; std::getline(status, line);) {
      for (const char* key : {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"})
        if (line.rfind(key, 0) == 0) s.total += std::stoull(line.substr(std::string(key).size()));
    }
  }
  ::closedir(d);
  return s;
}

TEST(Idle, OctohalosThreadsWakeAtMost50TimesASecondAndRecordingResumesOnTime) {
  octo::ExecutorConfig xc;
  for (auto& a : xc.arms)
    a.handler = [](const octo::Task&, const octo::Context&) { return octo::Outcome::success(); };
  octo::Executor executor(std::move(xc));
  halo::SystemState state;
  halo::Engine engine(state, {});
  engine.attach(executor);
  auto loop = halo::register_loop(engine, {});
  // Busy first: tasks, requests, a cycle.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(executor.submit(*executor.arm_id("batch"), [] {}));
    halo::record_request();
  }
  ASSERT_TRUE(engine.run_cycle("manual"));
  ASSERT_TRUE(executor.wait_idle(30s));
  ASSERT_TRUE(engine.wait_idle(30s));
  auto& ticker = octo::Ticker::shared();
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!ticker.idle() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);  // waiting for the ticker's idle_after (2 s) to pass
  ASSERT_TRUE(ticker.idle());

  const Switches before = octohalo_switches();
  std::this_thread::sleep_for(2s);  // the window the wakeups are counted over
  const Switches after = octohalo_switches();
  EXPECT_GE(before.threads, 3) << "octo-ticker, octo-timer and halo-engine at least";
  EXPECT_LE(after.total - before.total, 100u) << "over 2 s, " << after.threads << " threads";
  RecordProperty("switches_in_2s", static_cast<int>(after.total - before.total));

  // Requests again: counted on the current epoch at once, and the ticker is back to its pace.
  const auto fresh = static_cast<std::uint64_t>(ticker.now() / ticker.resolution());
  const auto window = loop->status().window_requests;
  halo::record_request();
  EXPECT_GE(ticker.epoch(), fresh);
  EXPECT_FALSE(ticker.idle());
  EXPECT_EQ(loop->status().window_requests, window + 1);
}

}  // namespace

// Stress tests (CTest label "stress") of the triggers: an error storm from several threads fires
// once per cooldown; stopping and destroying the loop while threads record.
#include "halo/triggers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "trigger_rig.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using halo::TriggerKind;
using octo_test::quiet;
using Rig = octo_test::TriggerRig;

TEST(TriggersStress, ErrorStormFiresOncePerCooldown) {
  Rig rig;
  auto cfg = quiet();  // error-rate cooldown 30 s
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  constexpr int kPerThread = 5'000'000;
  std::atomic<int> running{2};
  std::latch go(3);
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&] {
      go.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        if (i % 4 == 0) rig.signals.record_request();
        rig.signals.record_error();
      }
      running.fetch_sub(1);
    });
  }
  go.arrive_and_wait();
  std::chrono::nanoseconds elapsed{0};
  while (running.load() > 0) {
    rig.advance(1ms);  // the ticker evaluating through the storm, 1 ms of manual time per tick
    elapsed += 1ms;
  }
  for (auto& w : writers) w.join();
  rig.advance(1ms);
  const auto st = loop->status().triggers[static_cast<int>(TriggerKind::kErrorRate)];
  // At most one firing per 30 s cooldown of manual time (a slow build may take several), and at
  // least one: the storm is far above the threshold.
  const auto cooldowns = 1 + elapsed / 30s;
  EXPECT_GE(st.fired, 1u);
  EXPECT_LE(static_cast<std::int64_t>(st.fired), cooldowns);
  EXPECT_EQ(static_cast<std::int64_t>(rig.count("error-rate")),
            static_cast<std::int64_t>(st.fired));
  EXPECT_EQ(rig.signals.errors().total(), 2u * kPerThread);
}

TEST(TriggersStress, StopAndDestroyWhileThreadsRecord) {
  Rig rig;
  std::atomic<bool> stop_writers{false};
  std::atomic<int> after_stop{0};
  std::atomic<bool> stopped{false};
  std::latch writing(2);
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&] {
      writing.count_down();
      while (!stop_writers.load(std::memory_order_relaxed)) {
        rig.signals.record_request();
        rig.signals.record_error();
      }
    });
  }
  writing.wait();
  for (int round = 0; round < 50; ++round) {
    auto cfg = quiet();
    cfg.request_threshold = 1;
    cfg.cooldown[static_cast<int>(TriggerKind::kRequestVolume)] = 0s;
    stopped = false;
    auto loop = std::make_unique<halo::LoopHandle>(
        halo::register_loop(rig.signals, cfg, [&](const halo::CycleRequest&) {
          if (stopped.load()) after_stop.fetch_add(1);
        }));
    std::atomic<bool> tick_more{true};
    std::latch ticked(1);
    std::thread ticking([&] {
      bool first = true;
      while (tick_more.load()) {
        rig.advance(1ms);
        if (std::exchange(first, false)) ticked.count_down();
      }
    });
    ticked.wait();
    loop->stop();  // while the ticker thread is evaluating
    stopped = true;
    rig.advance(1ms);  // ticks after stop must not reach the callback
    tick_more = false;
    ticking.join();
    loop.reset();
  }
  stop_writers = true;
  for (auto& w : writers) w.join();
  EXPECT_EQ(after_stop.load(), 0);
  EXPECT_FALSE(rig.signals.active());
}

}  // namespace

// Stress tests (CTest label "stress") of the system state: writers racing snapshots.
#include "halo/state.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "manual_state.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;

using StateRig = octo_test::ManualState;

// Writers keep going while snapshots are taken; every snapshot is internally consistent: each
// agent's heartbeat equals the value its writer set together with its name.
TEST(SystemStateStress, ConcurrentWritersAndSnapshots) {
  StateRig rig;
  constexpr int kAgents = 4096;
  for (int i = 0; i < kAgents; ++i) rig.state.upsert_agent({.id = std::to_string(i)});
  std::atomic<bool> done{false};
  std::latch start(3);
  auto writer = [&](int parity) {
    start.arrive_and_wait();
    for (std::int64_t round = 1; round <= 200; ++round)
      for (int i = parity; i < kAgents; i += 2)
        rig.state.upsert_agent({.id = std::to_string(i),
                                .name = std::to_string(round),
                                .last_heartbeat = std::chrono::nanoseconds(round)});
  };
  std::thread w1(writer, 0), w2(writer, 1);
  start.arrive_and_wait();
  std::size_t snapshots = 0;
  std::vector<std::int64_t> last(kAgents, 0);
  while (!done.load()) {
    auto s = rig.state.snapshot();
    ++snapshots;
    ASSERT_EQ(s->agents.size(), static_cast<std::size_t>(kAgents));
    bool finished = true;
    for (int i = 0; i < kAgents; ++i) {
      const auto& a = s->agents[static_cast<std::size_t>(i)];
      const auto hb = a.last_heartbeat.count();
      if (hb != 0) {
        ASSERT_EQ(a.name, std::to_string(hb));
      }
      ASSERT_GE(hb, last[static_cast<std::size_t>(i)]);  // never goes back
      last[static_cast<std::size_t>(i)] = hb;
      finished = finished && hb == 200;
    }
    if (finished) done = true;
  }
  w1.join();
  w2.join();
  EXPECT_GT(snapshots, 0u);
}

}  // namespace

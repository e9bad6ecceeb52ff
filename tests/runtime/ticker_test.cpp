#include "octo/ticker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <vector>

#include <thread>
#include "octo/clock.hpp"
#include "octo/window_counter.hpp"

namespace {

using namespace std::chrono_literals;

TEST(Ticker, CallbacksRunOnTickAndStopAfterRemoval) {
  auto clock = std::make_shared<octo::ManualClock>();
  octo::Ticker ticker({.resolution = 5ms, .clock = clock, .own_thread = false});
  std::vector<std::int64_t> seen;
  const auto id =
      ticker.add_callback([&](std::chrono::nanoseconds now) { seen.push_back(now.count()); });
  clock->advance(12ms);
  ticker.tick();
  EXPECT_EQ(ticker.epoch(), 2u);
  ticker.remove_callback(id);
  clock->advance(5ms);
  ticker.tick();
  EXPECT_EQ(ticker.epoch(), 3u);
  EXPECT_EQ(seen, std::vector<std::int64_t>{12'000'000});
  EXPECT_THROW(octo::Ticker({.resolution = 0ms}), std::invalid_argument);
}

TEST(Ticker, OwnThreadAdvancesTheEpoch) {
  octo::Ticker ticker({.resolution = 1ms});
  std::promise<void> ticked;
  std::atomic<bool> once{false};
  ticker.add_callback([&](std::chrono::nanoseconds) {
    if (!once.exchange(true)) ticked.set_value();
  });
  EXPECT_EQ(ticked.get_future().wait_for(30s), std::future_status::ready);
}

// Nothing recorded for idle_after: the thread ticks at idle_resolution. The next record
// publishes the clock's epoch at once (not the stale one) and brings the fast pace back.
TEST(Ticker, IdleSlowsDownAndTheFirstRecordPublishesTheCurrentEpoch) {
  auto clock = std::make_shared<octo::ManualClock>();
  octo::Ticker ticker(
      {.resolution = 5ms, .clock = clock, .idle_resolution = 50ms, .idle_after = 30ms});
  std::atomic<int> ticks{0};
  ticker.add_callback([&](std::chrono::nanoseconds) { ticks.fetch_add(1); });
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!ticker.idle() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  ASSERT_TRUE(ticker.idle());
  // The pace: 300 ms at 50 ms is about 6 ticks (at 5 ms it would be 60).
  const int before = ticks.load();
  std::this_thread::sleep_for(300ms);  // measuring a rate, not waiting for an event
  EXPECT_LE(ticks.load() - before, 15);

  clock->advance(1s);  // the published epoch is stale until a tick or a record
  octo::WindowCounter c(ticker, {.window = 1s, .buckets = 10});
  c.record();
  EXPECT_GE(ticker.epoch(), static_cast<std::uint64_t>(clock->now() / 5ms));
  EXPECT_FALSE(ticker.idle());
  EXPECT_EQ(c.sum(), 1u);
}

}  // namespace

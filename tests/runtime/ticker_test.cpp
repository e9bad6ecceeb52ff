#include "octo/ticker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <vector>

#include "octo/clock.hpp"

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

}  // namespace

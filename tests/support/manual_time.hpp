// Manual time for tests: a clock that moves only when the test says so, and a ticker without a
// thread of its own, evaluated by advance() as its thread would be.
#pragma once

#include <chrono>
#include <memory>

#include "octo/clock.hpp"
#include "octo/ticker.hpp"

namespace octo_test {

struct ManualTime {
  std::shared_ptr<octo::ManualClock> clock = std::make_shared<octo::ManualClock>();
  octo::Ticker ticker{
      {.resolution = std::chrono::milliseconds(10), .clock = clock, .own_thread = false}};

  void advance(std::chrono::nanoseconds d) {
    clock->advance(d);
    ticker.tick();
  }
};

}  // namespace octo_test

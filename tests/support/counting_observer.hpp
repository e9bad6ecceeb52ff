// An observer for the observer-removal tests: counts its calls, and counts apart the calls that
// arrive after the test marked it gone (once remove_observer returned, there must be none).
#pragma once

#include <atomic>

#include "octo/observer.hpp"

namespace octo_test {

struct CountingObserver : octo::Observer {
  std::atomic<int> calls{0};
  std::atomic<bool> gone{false};
  std::atomic<int> after_gone{0};
  void on_event(const octo::TaskEvent&) noexcept override {
    if (gone.load()) after_gone.fetch_add(1);
    calls.fetch_add(1);
  }
};

}  // namespace octo_test

// A bounded wait for a condition the system reaches on its own (a drained stream, an expired
// key): polls every 5 ms, false after `limit`.
#pragma once

#include <chrono>
#include <thread>

namespace octo_test {

using namespace std::chrono_literals;

template <class F>
bool eventually(F&& done, std::chrono::seconds limit = 30s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace octo_test

// The HALO engine test rig: manual time, an engine and an executor whose every arm runs the
// rig's handler once, with open rails unless a test sets one.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "halo/engine.hpp"
#include "manual_state.hpp"
#include "open_rails.hpp"

namespace octo_test {

using namespace std::chrono_literals;

// Manual time; an executor whose every arm runs `handler` once (no retries) so that outcomes
// are immediate; the engine's observer wired in. The executor is destroyed before the engine.
struct Rig : octo_test::ManualState {
  std::unique_ptr<halo::Engine> engine;
  std::unique_ptr<octo::Executor> executor;
  std::mutex mu;
  std::vector<octo::Task> ran;
  std::function<octo::Outcome(const octo::Task&)> handler = [](const octo::Task&) {
    return octo::Outcome::success();
  };

  explicit Rig(halo::EngineConfig cfg = {}, bool with_executor = true) {
    cfg.concurrency = 2;
    engine = std::make_unique<halo::Engine>(state, std::move(cfg));
    if (!with_executor) return;
    octo::ExecutorConfig ec;
    ec.threads = 2;
    for (auto& arm : ec.arms) {
      arm.max_attempts = 1;
      arm.handler = [this](const octo::Task& t, const octo::Context&) {
        {
          std::lock_guard lock(mu);
          ran.push_back(t);
        }
        return handler(t);
      };
    }
    executor = std::make_unique<octo::Executor>(std::move(ec));
    engine->attach(*executor);
  }
  ~Rig() {
    if (executor) executor->shutdown(octo::ShutdownMode::kDrain, 10s);
    executor.reset();
  }
  std::shared_ptr<const halo::CycleResult> cycle(halo::Mode mode = halo::Mode::kFull) {
    auto r = engine->run_cycle("manual", {}, mode);
    if (executor) executor->wait_idle();
    return r;
  }
  // Holds every repair in its handler until the returned promise is set (then succeeds).
  std::promise<void> hold_repairs() {
    std::promise<void> release;
    std::shared_future<void> gate = release.get_future().share();
    handler = [gate](const octo::Task&) {
      gate.wait();
      return octo::Outcome::success();
    };
    return release;
  }
  std::size_t ran_count() {
    std::lock_guard lock(mu);
    return ran.size();
  }
};

inline std::map<std::string, int> statuses(const halo::CycleResult& c) {
  std::map<std::string, int> m;
  for (const auto& d : c.dispatch_results) {
    std::string k(halo::to_string(d.status));
    if (!d.reason.empty()) k += ":" + d.reason;
    ++m[k];
  }
  return m;
}

}  // namespace octo_test

#include "halo/triggers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "trigger_rig.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using halo::TriggerKind;
using octo_test::quiet;
using Rig = octo_test::TriggerRig;

TEST(TimeTrigger, FiresEveryInterval) {
  Rig rig;
  auto cfg = quiet();
  cfg.time_interval = 5min;
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  rig.advance(4min);
  EXPECT_EQ(rig.count("time"), 0);
  rig.advance(1min);
  EXPECT_EQ(rig.count("time"), 1);
  rig.advance(4min + 59s);
  EXPECT_EQ(rig.count("time"), 1);
  rig.advance(1s);
  EXPECT_EQ(rig.count("time"), 2);
  EXPECT_EQ(rig.cycles.back().mode, halo::Mode::kFull);
  EXPECT_EQ(loop->status().triggers[0].fired, 2u);
}

TEST(VolumeTrigger, ThresholdWindowAndCooldown) {
  Rig rig;
  auto cfg = quiet();
  cfg.request_threshold = 150;
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  rig.signals.record_request(149);
  rig.advance(10ms);
  EXPECT_EQ(rig.count("request-volume"), 0);  // just below
  rig.signals.record_request();
  rig.advance(10ms);
  ASSERT_EQ(rig.count("request-volume"), 1);  // at the threshold
  EXPECT_EQ(rig.cycles.back().context.at("requests"), "150");
  EXPECT_EQ(rig.cycles.back().mode, halo::Mode::kLight);
  rig.advance(10ms);  // still above, inside the 30 s cooldown
  const auto st = loop->status().triggers[static_cast<int>(TriggerKind::kRequestVolume)];
  EXPECT_EQ(st.fired, 1u);
  EXPECT_EQ(st.suppressed, 1u);
  EXPECT_EQ(st.last_fired, 20ms);
  // The condition holding for a hundred more ticks is still one held-back firing, not a hundred.
  for (int i = 0; i < 100; ++i) rig.advance(10ms);
  EXPECT_EQ(loop->status().triggers[static_cast<int>(TriggerKind::kRequestVolume)].suppressed, 1u);
  rig.advance(31s);  // cooldown over, but the window has emptied
  EXPECT_EQ(rig.count("request-volume"), 1);
  rig.signals.record_request(150);
  rig.advance(10ms);
  EXPECT_EQ(rig.count("request-volume"), 2);
  rig.advance(10ms);  // a new cooldown: its first refusal counts again
  EXPECT_EQ(loop->status().triggers[static_cast<int>(TriggerKind::kRequestVolume)].suppressed, 2u);
}

TEST(VolumeTrigger, RequestsOutsideTheWindowDoNotCount) {
  Rig rig;
  auto cfg = quiet();
  cfg.request_threshold = 150;
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  rig.signals.record_request(100);
  rig.advance(11s);  // the first 100 have left the 10 s window
  rig.signals.record_request(100);
  rig.advance(10ms);
  EXPECT_EQ(rig.count("request-volume"), 0);
  EXPECT_EQ(loop->status().window_requests, 100u);
}

TEST(VolumeTrigger, AShorterWindowIsTheLastPartOfTheSignals) {
  Rig rig;
  auto cfg = quiet();
  cfg.request_threshold = 150;
  cfg.window = 2s;
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  rig.signals.record_request(100);
  rig.advance(3s);  // still in the signals' 10 s, not in the loop's 2 s
  rig.signals.record_request(100);
  rig.advance(10ms);
  EXPECT_EQ(rig.count("request-volume"), 0);
  EXPECT_EQ(loop->status().window_requests, 100u);
  EXPECT_EQ(rig.signals.requests().sum(), 200u);
  rig.signals.record_request(50);
  rig.advance(10ms);
  EXPECT_EQ(rig.count("request-volume"), 1);
  // Longer than what the signals keep: refused, naming both.
  cfg.window = 11s;
  try {
    halo::register_loop(rig.signals, cfg, rig.recorder());
    ADD_FAILURE() << "an 11 s window on 10 s signals";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("window 11000 ms"), std::string::npos) << e.what();
  }
}

TEST(ErrorRateTrigger, ThresholdAndMinimumVolume) {
  Rig rig;
  auto cfg = quiet();
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  rig.signals.record_request(19);
  rig.signals.record_error(19);
  rig.advance(10ms);
  EXPECT_EQ(rig.count("error-rate"), 0);  // rate 1.0 but only 19 requests (< 20)
  rig.signals.record_request(81);         // 100 requests, 19 errors
  rig.signals.record_error(5);            // 24 errors: 0.24
  rig.advance(10ms);
  EXPECT_EQ(rig.count("error-rate"), 0);  // just below 0.25
  rig.signals.record_error();             // 25 / 100 = 0.25
  rig.advance(10ms);
  ASSERT_EQ(rig.count("error-rate"), 1);
  EXPECT_EQ(rig.cycles.back().context.at("errors"), "25");
  EXPECT_EQ(rig.cycles.back().context.at("requests"), "100");
}

TEST(ErrorRateTrigger, HysteresisRearmsOnlyBelowTheClearLevel) {
  Rig rig;
  auto cfg = quiet();
  cfg.cooldown[static_cast<int>(TriggerKind::kErrorRate)] = 0s;  // isolate the hysteresis
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  rig.signals.record_request(100);
  rig.signals.record_error(30);  // 0.30
  rig.advance(10ms);
  ASSERT_EQ(rig.count("error-rate"), 1);
  EXPECT_FALSE(loop->status().error_rate_armed);
  rig.advance(10ms);  // still 0.30: disarmed, so no second firing (and no suppression either)
  EXPECT_EQ(rig.count("error-rate"), 1);
  EXPECT_EQ(loop->status().triggers[static_cast<int>(TriggerKind::kErrorRate)].suppressed, 0u);
  rig.signals.record_request(50);  // 30 / 150 = 0.20: below 0.25 but above the 0.125 clear level
  rig.advance(10ms);
  EXPECT_FALSE(loop->status().error_rate_armed);
  rig.signals.record_request(100);  // 30 / 250 = 0.12: re-armed
  rig.advance(10ms);
  EXPECT_TRUE(loop->status().error_rate_armed);
  rig.signals.record_error(40);  // 70 / 250 = 0.28
  rig.advance(10ms);
  EXPECT_EQ(rig.count("error-rate"), 2);
}

TEST(ErrorRateTrigger, CooldownSuppressesWhileArmed) {
  Rig rig;
  auto cfg = quiet();
  cfg.error_rate_clear = 0.24;  // re-arm as soon as the rate dips under the threshold
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  rig.signals.record_request(100);
  rig.signals.record_error(30);
  rig.advance(10ms);
  ASSERT_EQ(rig.count("error-rate"), 1);
  rig.signals.record_request(100);  // 30 / 200: re-armed
  rig.advance(10ms);
  rig.signals.record_error(40);  // 70 / 200 = 0.35, 20 ms after the first firing
  rig.advance(10ms);
  EXPECT_EQ(rig.count("error-rate"), 1);
  EXPECT_EQ(loop->status().triggers[static_cast<int>(TriggerKind::kErrorRate)].suppressed, 1u);
  for (int i = 0; i < 50; ++i) rig.advance(10ms);  // still armed and above: the same firing
  EXPECT_EQ(loop->status().triggers[static_cast<int>(TriggerKind::kErrorRate)].suppressed, 1u);
}

TEST(DeployTrigger, FiresAtOnceThenVerifiesAfterTheSettleDelay) {
  Rig rig;
  auto cfg = quiet();
  cfg.deploy_verify_after = 2min;
  auto loop = halo::register_loop(rig.signals, cfg, rig.recorder());
  EXPECT_FALSE(loop->last_deploy().has_value());
  rig.advance(1s);
  loop->notify_deploy({{"version", "1.2.3"}});
  ASSERT_EQ(rig.count("deploy"), 1);
  EXPECT_EQ(rig.cycles.back().context.at("version"), "1.2.3");
  EXPECT_EQ(loop->last_deploy(), 1s);
  loop->notify_deploy({{"version", "1.2.4"}});  // inside the 5 s cooldown
  EXPECT_EQ(rig.count("deploy"), 1);
  rig.advance(119s);
  EXPECT_EQ(rig.count("deploy-verify"), 0);
  rig.advance(1s);
  ASSERT_EQ(rig.count("deploy-verify"), 1);
  EXPECT_EQ(rig.cycles.back().context.at("version"), "1.2.4");  // the latest deploy's metadata
  rig.advance(10min);
  EXPECT_EQ(rig.count("deploy-verify"), 1);  // once per deploy
}

TEST(EventTrigger, TypesSeveritiesAndCooldown) {
  Rig rig;
  auto loop = halo::register_loop(rig.signals, quiet(), rig.recorder());
  using halo::EventOutcome;
  EXPECT_EQ(loop->trigger_from_event("api.endpoint.failed", "warning"),
            EventOutcome::kBelowSeverity);
  EXPECT_EQ(loop->trigger_from_event("user.login", "critical"), EventOutcome::kUnknownType);
  EXPECT_EQ(loop->trigger_from_event("api.endpoint.failed", "error"), EventOutcome::kFired);
  ASSERT_EQ(rig.count("event"), 1);
  EXPECT_EQ(rig.cycles.back().context.at("type"), "api.endpoint.failed");
  EXPECT_EQ(loop->trigger_from_event("squad.task.failed", "critical"), EventOutcome::kCooldown);
  rig.advance(5s);
  EXPECT_EQ(loop->trigger_from_event("squad.task.failed", "critical"), EventOutcome::kFired);
  try {
    (void)loop->trigger_from_event("squad.task.failed", "catastrophic");
    ADD_FAILURE() << "unknown severity accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'catastrophic'"), std::string::npos);
  }
  loop.stop();
  EXPECT_EQ(loop->trigger_from_event("squad.task.failed", "critical"), EventOutcome::kStopped);
}

TEST(Triggers, ConfigurationErrorsNameTheField) {
  Rig rig;
  auto bad = quiet();
  bad.error_rate_threshold = 1.5;
  EXPECT_THROW(halo::register_loop(rig.signals, bad, rig.recorder()), std::invalid_argument);
  bad = quiet();
  bad.error_rate_clear = 0.3;
  EXPECT_THROW(halo::register_loop(rig.signals, bad, rig.recorder()), std::invalid_argument);
  EXPECT_THROW(halo::register_loop(rig.signals, quiet(), nullptr), std::invalid_argument);
  // Enum values cast from bad input are refused at construction, not when a trigger fires.
  bad = quiet();
  bad.mode[1] = static_cast<halo::Mode>(9);
  EXPECT_THROW(halo::register_loop(rig.signals, bad, rig.recorder()), std::invalid_argument);
  bad = quiet();
  bad.events["x.y"] = static_cast<halo::Severity>(12);
  EXPECT_THROW(halo::register_loop(rig.signals, bad, rig.recorder()), std::invalid_argument);
  EXPECT_EQ(halo::parse_severity("warn"), halo::Severity::kWarning);
}

TEST(Triggers, RecordingIsANoOpWithoutARegisteredLoop) {
  Rig rig;
  rig.signals.record_request(10);
  EXPECT_EQ(rig.signals.requests().total(), 0u);
  {
    auto loop = halo::register_loop(rig.signals, quiet(), rig.recorder());
    rig.signals.record_request(10);
    EXPECT_EQ(rig.signals.requests().total(), 10u);
    loop.stop();
    loop.stop();  // twice is harmless
    rig.signals.record_request(10);
    EXPECT_EQ(rig.signals.requests().total(), 10u);
  }
  // The free functions go to the default signals, under the same rule.
  const auto before = halo::default_signals().requests().total();
  halo::record_request();
  EXPECT_EQ(halo::default_signals().requests().total(), before);
  {
    auto loop = halo::register_loop(quiet(), [](const halo::CycleRequest&) {});
    halo::record_request();
    halo::record_error();
    EXPECT_EQ(halo::default_signals().requests().total(), before + 1);
  }
  halo::record_request();
  EXPECT_EQ(halo::default_signals().requests().total(), before + 1);
}

TEST(Triggers, FreeFunctionsCountExactlyAcrossExitingThreads) {
  auto loop = halo::register_loop(quiet(), [](const halo::CycleRequest&) {});
  const auto requests = halo::default_signals().requests().total();
  const auto errors = halo::default_signals().errors().total();
  for (int round = 0; round < 3; ++round) {  // later threads adopt the exited threads' shards
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([] {
        for (int k = 0; k < 10'000; ++k) {
          halo::record_request();
          if (k % 10 == 0) halo::record_error();
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  EXPECT_EQ(halo::default_signals().requests().total() - requests, 120'000u);
  EXPECT_EQ(halo::default_signals().errors().total() - errors, 12'000u);
}

}  // namespace

// octohalo against the real Prometheus tools (Debian packages): promtool finds nothing wrong
// with a scrape of a busy engine; and HALO's alerts in a real prometheus-alertmanager, started
// by the test on a free 127.0.0.1 port in a temp dir: an escalated weak point becomes an active
// alert with the documented labels, as Alertmanager's own API reports it; healed, it is resolved
// (gone from the active alerts long before Alertmanager's 5-minute resolve_timeout would drop it).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "ecosystem.hpp"   // tests/support
#include "engine_rig.hpp"  // tests/support
#include "halo/http/handler.hpp"
#include "halo/http/notifier.hpp"

namespace {

using namespace std::chrono_literals;
using octo_test::open_rails;
using octo_test::Rig;

using octo_test::active_halo_alerts;
using octo_test::kAlertmanager;
using octo_test::start_alertmanager;

// Every family of a scrape with escalations, suppressions, per-subject series and the
// notifiers' own families passes promtool's checks.
TEST(Promtool, AScrapeOfABusyEngineIsClean) {
  if (!octo_test::have_binary(octo_test::kPromtool)) GTEST_SKIP() << "promtool is not installed";
  auto cfg = open_rails();
  cfg.safety.max_repairs = 1;
  cfg.safety.verify_timeout = 1s;
  cfg.safety.approval_required = {"env.sync"};
  Rig rig(cfg);
  halo::WebhookNotifier hook(*rig.engine, {.url = "http://127.0.0.1:1/unreachable"});
  for (int i = 0; i < 30; ++i) {
    rig.state.upsert_agent({.id = "a" + std::to_string(i), .online = i % 3 != 0});
    rig.state.endpoint("/e" + std::to_string(i)).record(3.0, i % 2 == 0);
  }
  rig.state.set_env_baseline({{"k", "v"}});
  rig.state.set_env_snapshot("prod", {});
  rig.cycle();
  rig.clock->advance(1s);
  rig.cycle();
  halo::HttpConfig hc{.token = "t"};
  hc.metrics.writers.push_back(halo::notifier_metrics({&hook}));
  const halo::HttpHandler handler(std::move(hc), *rig.engine, rig.executor.get());
  const auto scrape = handler.handle({.method = "GET", .target = "/metrics"}, "").body;
  ASSERT_NE(scrape.find("octohalo_agent_heartbeat_age_seconds{"), std::string::npos);
  ASSERT_NE(scrape.find("octohalo_notifier_posts_total{"), std::string::npos);
  ASSERT_NE(scrape.find("octohalo_arm_queue_wait_seconds_bucket{arm=\"deploy\",le=\"1e-06\"}"),
            std::string::npos);
  const auto r =
      octo_test::promtool_check(scrape, (std::filesystem::temp_directory_path() /
                                         ("octo-scrape-" + std::to_string(::getpid()) + ".txt"))
                                            .string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "") << r.output;
}

TEST(Alertmanager, AnEscalatedWeakPointIsAnActiveAlertAndResolvedWhenItHeals) {
  if (!octo_test::have_binary(kAlertmanager)) GTEST_SKIP() << kAlertmanager << " is not installed";
  const auto am = start_alertmanager();
  auto cfg = open_rails();
  cfg.safety.max_repairs = 1;
  cfg.safety.verify_timeout = 1s;
  Rig rig(cfg);  // its repairs succeed and fix nothing
  halo::AlertmanagerNotifier alerts(*rig.engine,
                                    {.url = am->url(), .labels = {{"service", "octohalo-test"}}});

  rig.state.upsert_agent({.id = "a1", .online = false});
  const auto c1 = rig.cycle();
  const std::string wp = c1->weak_points.at(0).id;
  rig.clock->advance(1s);
  rig.cycle();  // the repair is judged failed (no fresh heartbeat): max_repairs 1, escalated
  ASSERT_EQ(rig.engine->status().escalations, 1u);

  nlohmann::json alert;
  ASSERT_TRUE(octo_test::eventually([&] {
    for (const auto& a : active_halo_alerts(*am))
      if (a["labels"].value("state", "") == "escalated") alert = a;
    return !alert.is_null();
  })) << active_halo_alerts(*am).dump();
  const auto& labels = alert["labels"];
  EXPECT_EQ(labels["alertname"], "HaloWeakPoint");
  EXPECT_EQ(labels["subject_type"], "agent");
  EXPECT_EQ(labels["subject_id"], "a1");
  EXPECT_EQ(labels["fingerprint"], wp);
  EXPECT_EQ(labels["severity"], "critical");
  EXPECT_EQ(labels["service"], "octohalo-test");
  EXPECT_EQ(alert["status"]["state"], "active");
  EXPECT_FALSE(alert["annotations"].value("summary", "").empty());
  EXPECT_NE(alert["annotations"].value("last_repair", "").find("agent.revive"), std::string::npos)
      << alert.dump();
  // The escalation replaced the open alert of the same weak point: only one is active.
  ASSERT_TRUE(octo_test::eventually([&] { return active_halo_alerts(*am).size() == 1; }))
      << active_halo_alerts(*am).dump();

  // Healthy again: the next full cycle no longer reports it, and the alert resolves.
  rig.state.set_agent_online("a1", true);
  rig.state.heartbeat("a1");
  rig.cycle();
  EXPECT_TRUE(octo_test::eventually([&] { return active_halo_alerts(*am).empty(); }))
      << active_halo_alerts(*am).dump();
  ASSERT_TRUE(alerts.flush(10s));  // the notifier's own books, after its post returned
  const auto s = alerts.status();
  EXPECT_EQ(s.name, "alertmanager");
  EXPECT_GE(s.posts_ok, 2u);
  EXPECT_EQ(s.posts_failed, 0u) << s.last_error;
  EXPECT_EQ(s.alerts_firing, 0u);
}

TEST(Alertmanager, AlertsWaitForAnAlertmanagerThatIsDownAndArriveWhenItIsBack) {
  if (!octo_test::have_binary(kAlertmanager)) GTEST_SKIP() << kAlertmanager << " is not installed";
  auto am = start_alertmanager();
  const std::string url = am->url();
  const int port = am->port();
  am.reset();  // down before anything is sent
  Rig rig(open_rails());
  halo::AlertmanagerNotifier alerts(*rig.engine,
                                    {.url = url, .backoff_initial = 50ms, .backoff_max = 200ms});
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.cycle();
  ASSERT_TRUE(octo_test::eventually([&] { return alerts.status().posts_failed >= 2; }));
  EXPECT_EQ(alerts.status().alerts_firing, 1u);
  // Back on the same port: the critical alert arrives with the next retry.
  const auto back = start_alertmanager(port);
  EXPECT_TRUE(octo_test::eventually([&] {
    const auto a = active_halo_alerts(*back);
    return a.size() == 1 && a[0]["labels"]["state"] == "open";
  })) << active_halo_alerts(*back).dump();
  EXPECT_TRUE(alerts.flush(10s));
  EXPECT_TRUE(alerts.status().last_error.empty());
}

}  // namespace

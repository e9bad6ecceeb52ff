// HALO's alerts in a real prometheus-alertmanager (Debian package), started by the test on a
// free 127.0.0.1 port in a temp dir: an escalated weak point becomes an active alert with the
// documented labels, as Alertmanager's own API reports it; healed, it is resolved (gone from the
// active alerts long before Alertmanager's 5-minute resolve_timeout would drop it).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "engine_rig.hpp"  // tests/support
#include "halo/http/notifier.hpp"
#include "service_process.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo_test::open_rails;
using octo_test::Rig;

constexpr const char* kBinary = "prometheus-alertmanager";

// On `port`, or a free one.
std::unique_ptr<octo_test::ServiceProcess> start_alertmanager(int port = 0) {
  return std::make_unique<octo_test::ServiceProcess>(
      "alertmanager",
      [](const std::string& dir, int port) {
        return std::vector<std::string>{kBinary,
                                        "--config.file=" + dir + "/alertmanager.yml",
                                        "--storage.path=" + dir + "/data",
                                        "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                        "--cluster.listen-address=",
                                        "--log.level=warn"};
      },
      std::vector<std::pair<std::string, std::string>>{
          {"alertmanager.yml", "route:\n  receiver: none\nreceivers:\n  - name: none\n"}},
      "/-/ready", port);
}

// Alertmanager's active alerts named HaloWeakPoint.
nlohmann::json active_alerts(const octo_test::ServiceProcess& am) {
  auto r = am.client().Get("/api/v2/alerts?active=true&filter=alertname%3D%22HaloWeakPoint%22");
  if (!r || r->status != 200) return nlohmann::json::array();
  return nlohmann::json::parse(r->body);
}

TEST(Alertmanager, AnEscalatedWeakPointIsAnActiveAlertAndResolvedWhenItHeals) {
  if (!octo_test::have_binary(kBinary)) GTEST_SKIP() << kBinary << " is not installed";
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
    for (const auto& a : active_alerts(*am))
      if (a["labels"].value("state", "") == "escalated") alert = a;
    return !alert.is_null();
  })) << active_alerts(*am).dump();
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
  ASSERT_TRUE(octo_test::eventually([&] { return active_alerts(*am).size() == 1; }))
      << active_alerts(*am).dump();

  // Healthy again: the next full cycle no longer reports it, and the alert resolves.
  rig.state.set_agent_online("a1", true);
  rig.state.heartbeat("a1");
  rig.cycle();
  EXPECT_TRUE(octo_test::eventually([&] { return active_alerts(*am).empty(); }))
      << active_alerts(*am).dump();
  ASSERT_TRUE(alerts.flush(10s));  // the notifier's own books, after its post returned
  const auto s = alerts.status();
  EXPECT_EQ(s.name, "alertmanager");
  EXPECT_GE(s.posts_ok, 2u);
  EXPECT_EQ(s.posts_failed, 0u) << s.last_error;
  EXPECT_EQ(s.alerts_firing, 0u);
}

TEST(Alertmanager, AlertsWaitForAnAlertmanagerThatIsDownAndArriveWhenItIsBack) {
  if (!octo_test::have_binary(kBinary)) GTEST_SKIP() << kBinary << " is not installed";
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
    const auto a = active_alerts(*back);
    return a.size() == 1 && a[0]["labels"]["state"] == "open";
  })) << active_alerts(*back).dump();
  EXPECT_TRUE(alerts.flush(10s));
  EXPECT_TRUE(alerts.status().last_error.empty());
}

}  // namespace

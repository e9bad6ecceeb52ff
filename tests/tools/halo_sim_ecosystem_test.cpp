// halo-sim watched by the real Prometheus tools, as docs/operations.md shows: a Prometheus on
// 127.0.0.1 scrapes its /metrics every second and answers a counter, a rate and a
// histogram_quantile over an exact `le`; promtool finds nothing wrong with a live scrape; its
// critical weak points reach a real Alertmanager (--alertmanager) and are resolved by the end.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "ecosystem.hpp"  // tests/support

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(HaloSimEcosystem, PrometheusQueriesItAndAlertmanagerGetsItsAlerts) {
  for (const char* b : {octo_test::kPrometheus, octo_test::kAlertmanager, octo_test::kPromtool})
    if (!octo_test::have_binary(b)) GTEST_SKIP() << b << " is not installed";
  const auto am = octo_test::start_alertmanager();
  const auto dir = fs::temp_directory_path() / ("halo-sim-eco-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto report = dir / "report.json";
  FILE* p = ::popen((std::string(HALO_SIM_PATH) +
                     " --scenario quick --duration 16 --quiet --http 127.0.0.1:0 --alertmanager " +
                     am->url() + " --json " + report.string() + " 2>&1")
                        .c_str(),
                    "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  ASSERT_NE(std::fgets(buf, sizeof buf, p), nullptr);
  const std::string first(buf);
  const std::string prefix = "http: listening on http://127.0.0.1:";
  ASSERT_EQ(first.rfind(prefix, 0), 0u) << first;
  const int port = std::stoi(first.substr(prefix.size()));
  // Its first faults are critical within seconds: alerts with the sim's service label arrive.
  EXPECT_TRUE(octo_test::eventually([&] {
    for (const auto& a : octo_test::active_halo_alerts(*am))
      if (a["labels"].value("service", "") == "halo-sim") return true;
    return false;
  })) << octo_test::active_halo_alerts(*am).dump();

  // What the sim's time left is for: Prometheus scraping it.
  const auto prometheus = octo_test::start_prometheus("127.0.0.1:" + std::to_string(port));

  // A live scrape, as promtool sees it.
  httplib::Client sim("127.0.0.1", port);
  const auto scrape = sim.Get("/metrics");
  ASSERT_TRUE(scrape);
  const auto lint = octo_test::promtool_check(scrape->body, (dir / "scrape.txt").string());
  EXPECT_EQ(lint.status, 0) << lint.output;

  auto number = [](const nlohmann::json& result) {
    return result.empty() ? -1.0 : std::stod(result[0]["value"][1].get<std::string>());
  };
  EXPECT_TRUE(octo_test::eventually(
      [&] { return number(octo_test::query(*prometheus, "sum(octohalo_cycles_total)")) > 0; }));
  EXPECT_TRUE(octo_test::eventually([&] {
    return number(octo_test::query(*prometheus, "sum(rate(octohalo_cycles_total[5s]))")) > 0;
  }));
  // The exact bound matches (it printed as 0.0050000000000000001 once, and matched nothing).
  EXPECT_TRUE(octo_test::eventually([&] {
    return !octo_test::query(*prometheus, "octohalo_cycle_duration_seconds_bucket{le=\"0.005\"}")
                .empty();
  }));
  EXPECT_TRUE(octo_test::eventually([&] {
    const double q = number(octo_test::query(
        *prometheus,
        "histogram_quantile(0.9, sum by (le) (rate(octohalo_cycle_duration_seconds_bucket[5s])))"));
    return q > 0 && q <= 5;  // NaN (no cycle in the window) parses as NaN, not > 0
  }));
  // The endpoints' latency histograms: the sim's requests take 4 ms (40 ms when they fail), so
  // the median falls in the (2.5 ms, 5 ms] bucket.
  EXPECT_TRUE(octo_test::eventually([&] {
    const double q =
        number(octo_test::query(*prometheus,
                                "histogram_quantile(0.5, sum by (le) "
                                "(rate(octohalo_endpoint_latency_seconds_bucket[5s])))"));
    return q > 0.0025 && q <= 0.005;
  }));
  std::string rest;
  while (std::fgets(buf, sizeof buf, p) != nullptr) rest += buf;
  const int st = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << rest;
  std::ifstream in(report);
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["notifiers"].size(), 1u);
  EXPECT_GT(j["notifiers"][0]["posts_ok"].get<int>(), 0);
  EXPECT_EQ(j["notifiers"][0]["posts_failed"], 0) << j["notifiers"].dump();
  // Every fault healed: nothing is left firing.
  EXPECT_TRUE(octo_test::eventually([&] { return octo_test::active_halo_alerts(*am).empty(); }, 5s))
      << octo_test::active_halo_alerts(*am).dump();
  fs::remove_all(dir);
}

}  // namespace

// HttpHandler without a server (what a service calls from its own HTTP stack): the token policy,
// the bounded per-subject series, and the service's own metric families on the same /metrics.
#include "halo/http/handler.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <stdexcept>
#include <string>

#include "manual_state.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

struct Rig : octo_test::ManualState {
  halo::Engine engine{state, halo::EngineConfig{}};
};

TEST(HttpHandler, AnEmptyTokenIsRefusedUnlessOpenLoopbackIsChosen) {
  Rig rig;
  try {
    halo::HttpHandler open({}, rig.engine);
    ADD_FAILURE() << "an empty token was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("token is empty"), std::string::npos) << e.what();
  }
  EXPECT_THROW(halo::HttpHandler({.token = "a\nb"}, rig.engine), std::invalid_argument);
  const halo::HttpHandler open({.open_loopback = true}, rig.engine);
  // Open: a mutating route answers without a token (404: no such approval, not 401).
  EXPECT_EQ(open.handle({.method = "POST", .target = "/approve/7"}, "").status, 404);
}

TEST(HttpHandler, TheTokenMustMatchExactly) {
  Rig rig;
  const halo::HttpHandler h({.token = "s3cret"}, rig.engine);
  for (const char* auth : {"", "Bearer s3cre", "Bearer s3cret ", "Bearer s3creT", "bearer s3cret",
                           "Bearer s3cretx", "Basic s3cret"}) {
    const auto r = h.handle({.method = "POST", .target = "/approve/7", .authorization = auth}, "");
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_TRUE(r.www_authenticate);
  }
  EXPECT_EQ(
      h.handle({.method = "POST", .target = "/approve/7", .authorization = "Bearer s3cret"}, "")
          .status,
      404);
  // Reads stay open.
  EXPECT_EQ(h.handle({.method = "GET", .target = "/status"}, "").status, 200);
}

TEST(HttpHandler, PerSubjectSeriesAreTheWorstFewPlusTheListedOnes) {
  Rig rig;
  for (int i = 0; i < 30; ++i) {
    auto& ep = rig.state.endpoint("/e" + std::to_string(i));
    for (int r = 0; r < 10; ++r) ep.record(5.0, r < i / 3);  // /e27../e29: 9 errors of 10
  }
  for (int i = 0; i < 50; ++i)
    rig.state.upsert_agent({.id = "a" + std::to_string(i), .last_heartbeat = rig.clock->now()});
  rig.advance(10ms);
  rig.clock->advance(30s);
  for (int i = 0; i < 50; ++i)
    if (i != 5 && i != 9) rig.state.heartbeat("a" + std::to_string(i));
  const halo::HttpHandler h(
      {.token = "t", .metrics = {.top_subjects = 3, .subjects = {"/e1", "a1", "/missing"}}},
      rig.engine);
  const auto m = h.handle({.method = "GET", .target = "/metrics"}, "").body;
  EXPECT_EQ(count_of(m, "octohalo_endpoint_error_ratio{"), 4u) << m;
  for (const char* e : {"/e1", "/e27", "/e28", "/e29"})
    EXPECT_NE(m.find(std::string("octohalo_endpoint_error_ratio{endpoint=\"") + e + "\"}"),
              std::string::npos)
        << e << "\n"
        << m;
  EXPECT_NE(m.find("octohalo_endpoint_error_ratio{endpoint=\"/e28\"} 0.9\n"), std::string::npos);
  // 10 requests over the 10 s window.
  EXPECT_NE(m.find("octohalo_endpoint_requests_per_second{endpoint=\"/e1\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(count_of(m, "octohalo_agent_heartbeat_age_seconds{"), 4u) << m;
  for (const char* stale : {"a5", "a9"})  // 30.01 s without a heartbeat
    EXPECT_NE(m.find(std::string("octohalo_agent_heartbeat_age_seconds{agent=\"") + stale +
                     "\"} 30.01\n"),
              std::string::npos)
        << m;
  EXPECT_NE(m.find("octohalo_agent_heartbeat_age_seconds{agent=\"a1\"} 0\n"), std::string::npos);
}

// The sample line `name{labels} value` as a number, or -1 when absent.
double sample_of(const std::string& m, const std::string& series) {
  const auto at = m.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(m.substr(at + series.size() + 1));
}

TEST(HttpHandler, EndpointLatencyIsAnAllTimeHistogramForTheExportedEndpoints) {
  Rig rig;
  for (int i = 0; i < 20; ++i) rig.state.endpoint("/e" + std::to_string(i)).record(1.0, false);
  auto& slow = rig.state.endpoint("/slow");
  for (int r = 0; r < 10; ++r) slow.record(r < 7 ? 3.0 : 800.0, r == 9);  // 7 fast, 3 slow
  const halo::HttpHandler h({.token = "t", .metrics = {.top_subjects = 2, .subjects = {"/e3"}}},
                            rig.engine);
  auto m = h.handle({.method = "GET", .target = "/metrics"}, "").body;
  // Bounded as the other per-subject families: 2 worst + 1 listed, 16 series each.
  EXPECT_EQ(count_of(m, "octohalo_endpoint_latency_seconds_count{"), 3u) << m;
  EXPECT_EQ(count_of(m, "octohalo_endpoint_latency_seconds_bucket{"), 3u * 14) << m;
  const std::string ep = "endpoint=\"/slow\"";
  auto bucket = [&](const char* le) {
    return sample_of(m, "octohalo_endpoint_latency_seconds_bucket{" + ep + ",le=\"" + le + "\"}");
  };
  EXPECT_EQ(bucket("0.0025"), 0);
  EXPECT_EQ(bucket("0.005"), 7);  // 3 ms
  EXPECT_EQ(bucket("0.5"), 7);
  EXPECT_EQ(bucket("1"), 10);  // 800 ms
  EXPECT_EQ(bucket("+Inf"), 10);
  EXPECT_EQ(sample_of(m, "octohalo_endpoint_latency_seconds_count{" + ep + "}"), 10);
  EXPECT_DOUBLE_EQ(sample_of(m, "octohalo_endpoint_latency_seconds_sum{" + ep + "}"),
                   (7 * 3.0 + 3 * 800.0) / 1000.0);
  EXPECT_EQ(sample_of(m, "octohalo_endpoint_latency_seconds_count{endpoint=\"/e3\"}"), 1);
  // Counters: a mark and the window passing take nothing away; new requests add.
  slow.mark();
  rig.advance(2 * slow.window());
  slow.record(3.0, true);
  m = h.handle({.method = "GET", .target = "/metrics"}, "").body;
  EXPECT_EQ(bucket("0.005"), 8);
  EXPECT_EQ(bucket("+Inf"), 11);
}

TEST(HttpHandler, TheServicesOwnFamiliesJoinTheScrape) {
  Rig rig;
  halo::HttpConfig c{.token = "t"};
  c.metrics.writers.push_back([](std::string& out) {
    out += "# HELP shop_orders_total Orders.\n# TYPE shop_orders_total counter\n";
    out += "shop_orders_total 42";  // no final newline: the handler adds it
  });
  c.metrics.writers.push_back([](std::string& out) {
    out += "half a fam";
    throw std::runtime_error("broken writer");
  });
  c.metrics.writers.push_back([](std::string& out) { out += "shop_up 1\n"; });
  const halo::HttpHandler h(std::move(c), rig.engine);
  const auto r = h.handle({.method = "GET", .target = "/metrics"}, "");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\nshop_orders_total 42\n# metrics writer 1 failed\nshop_up 1\n"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(r.body.find("half a fam"), std::string::npos);
  EXPECT_LT(r.body.find("octohalo_cycles_total"), r.body.find("shop_orders_total"));
}

}  // namespace

namespace {

nlohmann::json body_of(const halo::HttpResponse& r) { return nlohmann::json::parse(r.body); }

TEST(HttpHandler, TheConsoleIsOnePageServedWithoutATokenAndWithoutTheNetwork) {
  Rig rig;
  const halo::HttpHandler h({.token = "s3cret"}, rig.engine);
  for (const char* target : {"/", "/ui"}) {
    const auto r = h.handle({.method = "GET", .target = target}, "");
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_NE(r.body.find("<title>HALO console</title>"), std::string::npos);
    EXPECT_EQ(count_of(r.body, "://"), 0u) << "no CDN, no other host: everything is in the page";
    EXPECT_NE(r.body.find("Authorization"), std::string::npos) << "the token goes in a header";
  }
  EXPECT_EQ(h.handle({.method = "POST", .target = "/"}, "").status, 405);
}

TEST(HttpHandler, ApprovalsListWhatWaitsWithItsSubjectAndTask) {
  octo_test::ManualState ms;
  halo::EngineConfig cfg;
  cfg.safety.approval_required = {"graft.repair"};
  halo::Engine engine(ms.state, cfg);
  const halo::HttpHandler h({.token = "s3cret"}, engine);
  EXPECT_EQ(body_of(h.handle({.method = "GET", .target = "/approvals"}, "")),
            nlohmann::json::array());
  ms.state.upsert_graft({.id = "g-1", .status = halo::GraftStatus::kFailed});
  engine.run_cycle("manual");
  const auto list = body_of(h.handle({.method = "GET", .target = "/approvals"}, ""));
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["subject_type"], "graft");
  EXPECT_EQ(list[0]["subject_id"], "g-1");
  EXPECT_EQ(list[0]["task_type"], "graft.repair");
  EXPECT_EQ(list[0]["id"], engine.pending_approvals().at(0).id);
  EXPECT_NEAR(list[0]["expires_in_s"].get<double>(), 3600.0, 1.0);
}

TEST(HttpHandler, TheSeriesKeepsItsLastPointsWithWhatChangedBetweenThem) {
  Rig rig;
  const halo::HttpHandler h({.token = "s3cret"}, rig.engine);
  auto points = [&](const std::string& target) {
    return body_of(h.handle({.method = "GET", .target = target}, ""))["points"];
  };
  EXPECT_TRUE(points("/series").empty());
  h.sample();
  rig.engine.run_cycle("manual");
  rig.engine.run_cycle("manual");
  h.sample();
  h.sample();
  const auto p = points("/series");
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0]["cycles"], 0) << "the first point has nothing to compare with";
  EXPECT_EQ(p[1]["cycles"], 2);
  EXPECT_EQ(p[2]["cycles"], 0);
  EXPECT_LE(p[0]["t_ms"].get<std::int64_t>(), p[2]["t_ms"].get<std::int64_t>());
  EXPECT_EQ(p[0]["requests_per_s"], 0.0) << "no triggers registered";
  EXPECT_EQ(points("/series?limit=2").size(), 2u);
  EXPECT_EQ(points("/series?limit=2")[1], p[2]) << "the newest ones";
  for (const char* bad : {"/series?limit=0", "/series?limit=601", "/series?limit=x"})
    EXPECT_EQ(h.handle({.method = "GET", .target = bad}, "").status, 400) << bad;
  for (int i = 0; i < 700; ++i) h.sample();
  EXPECT_EQ(points("/series").size(), 600u) << "bounded";
}

}  // namespace

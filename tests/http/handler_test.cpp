// HttpHandler without a server (what a service calls from its own HTTP stack): the token policy,
// the bounded per-subject series, and the service's own metric families on the same /metrics.
#include "halo/http/handler.hpp"

#include <gtest/gtest.h>

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

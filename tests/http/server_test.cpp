#include "halo/http/server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "busy_port.hpp"  // tests/support
#include "halo/http/metrics.hpp"
#include "halo/utf8.hpp"
#include "manual_state.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;

// An engine with a pending approval, an executor, triggers on private signals, and the server.
struct Rig : octo_test::ManualState {
  halo::Signals signals{ticker, 10s, 100};
  std::unique_ptr<halo::Engine> engine;
  std::unique_ptr<octo::Executor> executor;
  halo::LoopHandle loop;
  std::unique_ptr<halo::HttpServer> http;

  explicit Rig(std::string token = {}, const std::function<void(halo::EngineConfig&)>& tweak = {}) {
    halo::EngineConfig ec;
    ec.safety.approval_required = {"env.sync"};
    ec.safety.verify_interval = {};  // the tests run their cycles themselves
    if (tweak) tweak(ec);
    engine = std::make_unique<halo::Engine>(state, ec);
    octo::ExecutorConfig xc;
    xc.threads = 2;
    for (auto& a : xc.arms)
      a.handler = [](const octo::Task&, const octo::Context&) { return octo::Outcome::success(); };
    executor = std::make_unique<octo::Executor>(std::move(xc));
    engine->attach(*executor);
    halo::TriggerConfig tc;
    tc.time_interval = 0s;
    tc.request_threshold = 0;
    loop = halo::register_loop(*engine, signals, tc);
    http = std::make_unique<halo::HttpServer>(
        halo::HttpConfig{
            .port = 0, .token = token, .open_loopback = token.empty(), .max_body_bytes = 1024},
        *engine, executor.get(), &*loop);
    http->start();
  }
  ~Rig() {
    http->stop();
    loop.stop();
    executor->shutdown();
  }
  httplib::Client client() const { return httplib::Client("127.0.0.1", http->port()); }
};

nlohmann::json body(const httplib::Result& r) { return nlohmann::json::parse(r->body); }

TEST(HttpServer, MetricsAreValidPrometheusText) {
  Rig rig;
  rig.state.upsert_agent({.id = "a", .online = false});
  ASSERT_TRUE(rig.engine->run_cycle("manual"));
  rig.executor->wait_idle();
  auto r = rig.client().Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain; version=0.0.4"),
            std::string::npos);
  const std::string& m = r->body;
  for (const char* needle :
       {"# HELP octohalo_cycles_total ", "# TYPE octohalo_cycles_total counter\n",
        "octohalo_cycles_total{trigger=\"manual\"} 1\n",
        "# TYPE octohalo_cycle_duration_seconds histogram\n",
        "octohalo_cycle_duration_seconds_bucket{le=\"+Inf\"} 1\n",
        "octohalo_cycle_duration_seconds_count 1\n", "octohalo_cycle_duration_seconds_sum ",
        "octohalo_arm_tasks_succeeded_total{arm=\"deploy\"} 1\n",
        "octohalo_repairs_total{outcome=\"succeeded\"} 1\n",
        "# TYPE octohalo_trigger_fired_total counter\n",
        "octohalo_trigger_fired_total{trigger=\"event\"} 0\n",
        // Bounds in their shortest exact form, so a query's le="0.005" matches.
        "octohalo_cycle_duration_seconds_bucket{le=\"0.005\"} ",
        "octohalo_cycle_duration_seconds_bucket{le=\"1\"} 1\n",
        // Label sets that exist are exported at zero before anything happens to them.
        "octohalo_cycles_total{trigger=\"deploy\"} 0\n",
        "octohalo_repairs_suppressed_total{reason=\"breaker-open\"} 0\n",
        "octohalo_arm_tasks_cancelled_total{arm=\"cleanup\"} 0\n",
        "octohalo_arm_pending{arm=\"deploy\"} 0\n", "octohalo_arm_enabled{arm=\"batch\"} 1\n",
        // The repair's queue wait and run time, every task, as Prometheus histograms.
        "# TYPE octohalo_arm_queue_wait_seconds histogram\n",
        "octohalo_arm_queue_wait_seconds_bucket{arm=\"deploy\",le=\"+Inf\"} 1\n",
        "octohalo_arm_queue_wait_seconds_bucket{arm=\"deploy\",le=\"3600\"} 1\n",
        "octohalo_arm_queue_wait_seconds_count{arm=\"deploy\"} 1\n",
        "octohalo_arm_run_time_seconds_count{arm=\"deploy\"} 1\n",
        "octohalo_arm_run_time_seconds_bucket{arm=\"batch\",le=\"+Inf\"} 0\n",
        "octohalo_arm_paused{arm=\"deploy\"} 0\n", "octohalo_arm_stuck{arm=\"deploy\"} 0\n",
        "octohalo_arm_tasks_expired_total{arm=\"deploy\"} 0\n"})
    EXPECT_NE(m.find(needle), std::string::npos) << needle << "\n" << m;
  // Every sample line is "name{labels} value" or "name value"; every family has HELP and TYPE.
  std::istringstream lines(m);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# ", 0) == 0) continue;
    ++samples;
    const auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    EXPECT_NO_THROW(std::stod(line.substr(space + 1) == "+Inf" ? "1" : line.substr(space + 1)))
        << line;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    const std::string family =
        name.substr(0, name.find("_bucket") != std::string::npos ? name.find("_bucket")
                       : name.rfind("_sum") == name.size() - 4   ? name.size() - 4
                       : name.rfind("_count") == name.size() - 6 ? name.size() - 6
                                                                 : name.size());
    EXPECT_NE(m.find("# TYPE " + family + " "), std::string::npos) << line;
  }
  EXPECT_GT(samples, 50);
}

TEST(HttpServer, StatusCyclesAndAudit) {
  Rig rig;
  rig.state.upsert_agent({.id = "a", .online = false});
  rig.engine->run_cycle("manual");
  rig.engine->run_cycle("manual");
  rig.executor->wait_idle();
  auto cli = rig.client();
  auto s = cli.Get("/status");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  const auto st = body(s);
  EXPECT_EQ(st["engine"]["cycles"], 2);
  EXPECT_EQ(st["executor"]["arms"].size(), 8u);
  EXPECT_TRUE(st["triggers"]["triggers"].contains("error-rate"));
  auto c = cli.Get("/cycles?limit=1");
  ASSERT_EQ(c->status, 200);
  const auto cycles = body(c);
  ASSERT_EQ(cycles.size(), 1u);
  EXPECT_EQ(cycles[0]["trigger"], "manual");
  EXPECT_EQ(cycles[0]["weak_points"][0]["subject_id"], "a");
  EXPECT_EQ(body(cli.Get("/cycles")).size(), 2u);
  auto a = cli.Get("/audit?limit=2");
  ASSERT_EQ(a->status, 200);
  EXPECT_EQ(body(a).size(), 2u);
  for (const char* bad : {"/cycles?limit=0", "/cycles?limit=abc", "/audit?limit=-1",
                          "/cycles?limit=99999999999999999999"}) {
    auto r = cli.Get(bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_TRUE(body(r).contains("error")) << bad;
  }
  auto missing = cli.Get("/nope");
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(body(missing)["error"], "no such route");
}

// An agent id (or endpoint path) with a byte that is not UTF-8 once made GET /audit end the
// process (the JSON library threw inside the server's exception handler) and GET /cycles answer
// 500; ?limit=%ff answered 500 too. Every response is valid UTF-8 JSON now.
TEST(HttpServer, BytesThatAreNotUtf8NeverBreakAResponse) {
  Rig rig;
  rig.state.upsert_agent({.id = "caf\xe9", .online = false});
  rig.engine->run_cycle("manual\xff");
  rig.executor->wait_idle();
  auto cli = rig.client();
  const std::string fffd(halo::kReplacementCharacter);
  for (const char* path : {"/audit", "/cycles", "/status"}) {
    auto r = cli.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    EXPECT_TRUE(halo::is_valid_utf8(r->body)) << path;
    EXPECT_TRUE(nlohmann::json::accept(r->body)) << path;
  }
  EXPECT_NE(cli.Get("/audit")->body.find("caf" + fffd), std::string::npos);
  EXPECT_NE(cli.Get("/cycles")->body.find("manual" + fffd), std::string::npos);
  auto m = cli.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_TRUE(halo::is_valid_utf8(m->body));
  EXPECT_NE(m->body.find("trigger=\"manual" + fffd + "\""), std::string::npos);
  auto bad = cli.Get("/audit?limit=%ff");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(halo::is_valid_utf8(bad->body));
  EXPECT_TRUE(body(bad).contains("error"));
}

TEST(HttpServer, TriggerRouteValidatesItsBody) {
  Rig rig;
  auto cli = rig.client();
  auto ok = cli.Post("/trigger", R"({"type":"api.endpoint.failed","severity":"critical"})",
                     "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 202);
  EXPECT_EQ(body(ok)["outcome"], "fired");
  auto unknown =
      cli.Post("/trigger", R"({"type":"nothing","severity":"critical"})", "application/json");
  EXPECT_EQ(unknown->status, 200);
  EXPECT_EQ(body(unknown)["outcome"], "unknown event type");
  for (const char* bad : {"{", "[]", R"({"type":1,"severity":"error"})", R"({"type":"x"})",
                          R"({"type":"api.endpoint.failed","severity":"apocalyptic"})"}) {
    auto r = cli.Post("/trigger", bad, "application/json");
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_TRUE(body(r).contains("error")) << bad;
  }
  auto big = cli.Post("/trigger", std::string(4096, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_NE(body(big)["error"].get<std::string>().find("1024"), std::string::npos);
  ASSERT_TRUE(rig.engine->wait_idle(30s));
  EXPECT_EQ(rig.engine->status().cycles_by_trigger.at("event"), 1u);
}

TEST(HttpServer, ApprovalRoutesNeedTheTokenAndKnownIds) {
  Rig rig("s3cret");
  rig.state.set_env_baseline({{"K", "v"}});
  rig.state.set_env_snapshot("prod", {});
  rig.state.set_env_snapshot("canary", {});
  rig.engine->run_cycle("manual");
  const auto pending = rig.engine->pending_approvals();
  ASSERT_EQ(pending.size(), 2u);
  auto cli = rig.client();
  const std::string approve = "/approve/" + std::to_string(pending[0].id);
  auto anon = cli.Post(approve, "", "application/json");
  EXPECT_EQ(anon->status, 401);
  EXPECT_EQ(rig.engine->pending_approvals().size(), 2u);
  auto wrong =
      cli.Post(approve, httplib::Headers{{"Authorization", "Bearer nope"}}, "", "application/json");
  EXPECT_EQ(wrong->status, 401);

  const httplib::Headers auth{{"Authorization", "Bearer s3cret"}};
  auto ok = cli.Post(approve, auth, "", "application/json");
  ASSERT_EQ(ok->status, 200);
  EXPECT_EQ(body(ok)["outcome"], "dispatched");
  auto again = cli.Post(approve, auth, "", "application/json");
  EXPECT_EQ(again->status, 404);
  auto rej = cli.Post("/reject/" + std::to_string(pending[1].id), auth, "", "application/json");
  EXPECT_EQ(body(rej)["outcome"], "rejected");
  EXPECT_EQ(cli.Post("/approve/123456", auth, "", "application/json")->status, 404);
  EXPECT_EQ(cli.Post("/approve/99999999999999999999999", auth, "", "application/json")->status,
            404);
  EXPECT_EQ(cli.Post("/trigger", R"({"type":"x","severity":"error"})", "application/json")->status,
            401);
  EXPECT_EQ(cli.Get("/metrics")->status, 200);  // reads stay open
  EXPECT_TRUE(rig.engine->pending_approvals().empty());
}

// The life cycle over HTTP: an escalated weak point in /status, /cycles and /metrics, cleared
// with POST /weak-points/{id}/clear; silences listed, added and ended under the token.
TEST(HttpServer, WeakPointStatesClearAndSilences) {
  Rig rig("s3cret", [](halo::EngineConfig& c) {
    c.safety.max_repairs = 1;
    c.safety.verify_timeout = 1s;
  });
  rig.state.upsert_agent({.id = "a1", .online = false});  // its repair fixes nothing
  rig.engine->run_cycle("manual");
  rig.executor->wait_idle();
  rig.clock->advance(1s);
  auto c = rig.engine->run_cycle("manual");
  ASSERT_EQ(c->weak_points.size(), 1u);
  const std::string wp = c->weak_points[0].id;
  auto cli = rig.client();
  const httplib::Headers auth{{"Authorization", "Bearer s3cret"}};

  const auto status = body(cli.Get("/status"))["engine"];
  EXPECT_EQ(status["weak_points_by_state"]["escalated"], 1);
  EXPECT_EQ(status["lifecycle"][0]["state"], "escalated");
  EXPECT_EQ(status["lifecycle"][0]["weak_point"], wp);
  EXPECT_EQ(status["breaker"]["open"], false);
  const auto cycles = body(cli.Get("/cycles?limit=1"));
  EXPECT_EQ(cycles[0]["weak_points"][0]["state"], "escalated");
  EXPECT_EQ(cycles[0]["tasks"][0]["reason"], "escalated");
  const std::string metrics = cli.Get("/metrics")->body;
  EXPECT_NE(metrics.find("octohalo_weak_points{state=\"escalated\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("octohalo_weak_point_flags{flag=\"flapping\"} 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("octohalo_escalations_total 1\n"), std::string::npos);

  EXPECT_EQ(cli.Post("/weak-points/" + wp + "/clear", "", "application/json")->status, 401);
  auto cleared = cli.Post("/weak-points/" + wp + "/clear", auth, "", "application/json");
  ASSERT_EQ(cleared->status, 200) << cleared->body;
  EXPECT_EQ(body(cleared)["weak_point"], wp);
  EXPECT_EQ(cli.Post("/weak-points/" + wp + "/clear", auth, "", "application/json")->status, 404);
  EXPECT_EQ(cli.Get("/weak-points/" + wp + "/clear")->status, 405);

  EXPECT_EQ(cli.Get("/silences")->status, 401);
  auto bad = [&](const std::string& b) {
    return cli.Post("/silences", auth, b, "application/json")->status;
  };
  EXPECT_EQ(bad("not json"), 400);
  EXPECT_EQ(bad(R"({"reason":"x"})"), 400);                  // no duration
  EXPECT_EQ(bad(R"({"duration_s":60})"), 400);               // no reason
  EXPECT_EQ(bad(R"({"duration_s":-1,"reason":"x"})"), 400);  // negative
  EXPECT_EQ(bad(R"({"duration_s":60,"reason":"x","subject_id":7})"), 400);
  auto added = cli.Post("/silences", auth,
                        R"({"subject_type":"agent","subject_id":"a*","duration_s":600,)"
                        R"("reason":"maintenance","author":"ops"})",
                        "application/json");
  ASSERT_EQ(added->status, 201) << added->body;
  const auto id = body(added)["id"].get<std::uint64_t>();
  EXPECT_DOUBLE_EQ(body(added)["ends_in_s"].get<double>(), 600.0);
  auto listed = body(cli.Get("/silences", auth));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["subject_id"], "a*");
  EXPECT_EQ(listed[0]["author"], "ops");
  // Silenced: the cleared weak point is not repaired.
  auto silenced = rig.engine->run_cycle("manual");
  EXPECT_EQ(silenced->dispatch_results.at(0).reason, "silenced by " + std::to_string(id));
  EXPECT_EQ(cli.Delete("/silences/" + std::to_string(id))->status, 401);
  EXPECT_EQ(cli.Delete("/silences/" + std::to_string(id), auth)->status, 200);
  EXPECT_EQ(cli.Delete("/silences/" + std::to_string(id), auth)->status, 404);
  EXPECT_EQ(cli.Delete("/silences/x", auth)->status, 404);
  EXPECT_TRUE(body(cli.Get("/silences", auth)).empty());
}

TEST(HttpServer, BadConfigAndBusyPort) {
  halo::SystemState state;
  halo::Engine engine(state);
  auto refused = [&](const halo::HttpConfig& c, const std::string& names) {
    try {
      halo::HttpServer s(c, engine);
      ADD_FAILURE() << "accepted: " << names;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
    }
  };
  refused({.port = 70000, .token = "t"}, "port 70000");
  refused({.token = "t", .max_body_bytes = 0}, "max_body_bytes");
  refused({.token = "t", .max_header_bytes = 100}, "max_header_bytes 100");
  refused({.token = "t", .max_connections = 0}, "max_connections");
  refused({.token = "t", .request_timeout = std::chrono::milliseconds(0)}, "request_timeout");
  refused({}, "token is empty");
  try {
    halo::HttpServer({.host = "not-an-address", .token = "t"}, engine).start();
    ADD_FAILURE() << "bound a host that is not an address";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not-an-address"), std::string::npos) << e.what();
  }
  // Open (no token) only on loopback: 0.0.0.0 is refused before anything is bound.
  try {
    halo::HttpServer({.host = "0.0.0.0", .open_loopback = true}, engine).start();
    ADD_FAILURE() << "an open server bound every interface";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("0.0.0.0"), std::string::npos) << e.what();
  }
  // ... while a token makes any address fine, and open_loopback on 127.0.0.1 serves.
  halo::HttpServer any({.host = "0.0.0.0", .token = "t"}, engine);
  EXPECT_NO_THROW(any.start());
  any.stop();
  halo::HttpServer loopback({.open_loopback = true}, engine);
  EXPECT_NO_THROW(loopback.start());
  loopback.stop();
  // A port held by a plain listening socket cannot be taken.
  const octo_test::BusyPort held;
  halo::HttpServer busy({.port = held.port(), .token = "t"}, engine);
  try {
    busy.start();
    ADD_FAILURE() << "bound a busy port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(held.port())), std::string::npos)
        << e.what();
  }
}

TEST(HttpServer, StopRightAfterStartDoesNotHang) {
  halo::SystemState state;
  halo::Engine engine(state);
  for (int i = 0; i < 20; ++i) {
    halo::HttpServer s({.port = 0, .token = "t"}, engine);
    s.start();
    s.stop();
    s.stop();  // twice is harmless
  }
}

}  // namespace

// The webhook notifier against a real HTTP receiver started by the test (cpp-httplib on
// 127.0.0.1): what arrives, in order; retries with backoff after refusals; a receiver that
// hangs never holds back a cycle, and what waits is bounded.
#include "halo/http/notifier.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine_rig.hpp"       // tests/support
#include "service_process.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo_test::open_rails;
using octo_test::Rig;

// Receives POSTs on a free port; answers `refuse_first` of them 500, then 200; may hold each
// request until `release` is set.
struct Receiver {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<nlohmann::json> bodies;
  int refuse_first = 0;
  int seen = 0;
  std::shared_future<void> gate;

  Receiver() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      if (gate.valid()) gate.wait();
      std::lock_guard lock(mu);
      ++seen;
      if (seen <= refuse_first) {
        res.status = 500;
        res.set_content("not now", "text/plain");
        return;
      }
      bodies.push_back(nlohmann::json::parse(req.body));
      cv.notify_all();
    });
    port = server.bind_to_any_port("127.0.0.1");  // listening: connections wait for accept
    thread = std::thread([this] { server.listen_after_bind(); });
    // stop() before the accept loop runs would be lost (and the join below would hang).
    while (!server.is_running()) std::this_thread::yield();
  }
  ~Receiver() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }
  std::vector<std::string> kinds() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& b : bodies)
      for (const auto& e : b["events"]) out.push_back(e["kind"]);
    return out;
  }
};

// A future that is ready once the engine's event thread has handed the next cycle-completed
// event to every subscriber registered before this one (handlers are called in subscription
// order), so the notifier has received the cycle's events before the test calls flush().
std::future<void> next_cycle_delivered(halo::Engine& engine) {
  auto done = std::make_shared<std::promise<void>>();
  auto once = std::make_shared<std::atomic<bool>>(false);
  engine.subscribe([done, once](const halo::Event& e) {
    if (e.kind == halo::EventKind::kCycleCompleted && !once->exchange(true)) done->set_value();
  });
  return done->get_future();
}

TEST(WebhookNotifier, PostsEveryEventInOrderAndRetriesRefusals) {
  Receiver rx;
  rx.refuse_first = 2;
  Rig rig(open_rails());
  halo::WebhookNotifier hook(
      *rig.engine, {.url = rx.url(),
                    .backoff_initial = 10ms,
                    .backoff_max = 40ms,
                    .kinds = {halo::EventKind::kWeakPointOpened, halo::EventKind::kRepairDispatched,
                              halo::EventKind::kCycleCompleted}});
  auto delivered = next_cycle_delivered(*rig.engine);
  rig.state.upsert_agent({.id = "a1", .online = false});
  const auto c = rig.cycle();
  ASSERT_EQ(delivered.wait_for(20s), std::future_status::ready);
  ASSERT_TRUE(hook.flush(20s));
  EXPECT_EQ(rx.kinds(), (std::vector<std::string>{"weak-point-opened", "repair-dispatched",
                                                  "cycle-completed"}));
  const auto s = hook.status();
  EXPECT_EQ(s.name, "webhook");
  EXPECT_EQ(s.posts_failed, 2u);
  EXPECT_GE(s.posts_ok, 1u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_TRUE(s.last_error.empty());
  EXPECT_TRUE(s.last_success.has_value());
  std::lock_guard lock(rx.mu);
  const auto& opened = rx.bodies.at(0)["events"][0];
  EXPECT_EQ(opened["subject_id"], "a1");
  EXPECT_EQ(opened["severity"], "critical");
  EXPECT_EQ(opened["cycle_id"], c->id);
  EXPECT_EQ(opened["weak_point"], c->weak_points.at(0).id);
}

TEST(WebhookNotifier, AHungReceiverNeverHoldsBackACycleAndWaitingIsBounded) {
  Receiver rx;
  std::promise<void> release;
  rx.gate = release.get_future().share();
  Rig rig(open_rails());
  halo::WebhookNotifier hook(*rig.engine, {.url = rx.url(), .timeout = 30s, .max_queue = 8});
  for (int i = 0; i < 40; ++i) {
    rig.state.upsert_agent({.id = "a" + std::to_string(i), .online = false});
    ASSERT_NE(rig.engine->run_cycle("manual"), nullptr);  // returns while the post hangs
  }
  // Everything past the bound is counted, nothing blocks: the engine's event thread too.
  EXPECT_TRUE(octo_test::eventually([&] {
    const auto st = rig.engine->status();
    return st.events_delivered + st.events_dropped >= 80;
  }));
  const auto s = hook.status();
  EXPECT_GT(s.events_dropped, 0u);
  EXPECT_LE(s.pending, 8u);
  release.set_value();
  EXPECT_TRUE(hook.flush(20s));
}

TEST(WebhookNotifier, AnUnreachableReceiverIsReportedAndBackedOff) {
  Rig rig(open_rails());
  const int port = octo_test::free_port();  // nothing listens there
  halo::WebhookNotifier hook(*rig.engine, {.url = "http://127.0.0.1:" + std::to_string(port) + "/x",
                                           .backoff_initial = 20ms});
  auto delivered = next_cycle_delivered(*rig.engine);
  rig.state.upsert_agent({.id = "a1", .online = false});
  rig.cycle();
  ASSERT_EQ(delivered.wait_for(20s), std::future_status::ready);
  EXPECT_FALSE(hook.flush(300ms));
  const auto s = hook.status();
  EXPECT_GE(s.posts_failed, 1u);
  // 20, 40, 80, 160 ms between attempts: a handful in 300 ms, not hundreds.
  EXPECT_LE(s.posts_failed, 6u);
  EXPECT_NE(s.last_error.find("connect"), std::string::npos) << s.last_error;
  EXPECT_GT(s.pending, 0u);
}

TEST(Notifier, BadConfigIsRefusedNamingIt) {
  Rig rig(open_rails());
  auto refused = [&](halo::NotifierConfig c, const std::string& names) {
    try {
      halo::WebhookNotifier n(*rig.engine, std::move(c));
      ADD_FAILURE() << "accepted: " << names;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
    }
  };
  refused({.url = "https://x:1/"}, "https");
  refused({.url = "http://:9093"}, "no host");
  refused({.url = "http://h:0"}, "1..65535");
  refused({.url = "http://h:99999"}, "1..65535");
  refused({.url = "http://u:p@h:1"}, "credentials");
  refused({.url = "http://h/a b"}, "space");
  refused({.url = "http://h", .timeout = 0ms}, "timeout");
  refused({.url = "http://h", .backoff_initial = 100ms, .backoff_max = 10ms}, "backoff_max");
  refused({.url = "http://h", .max_queue = 0}, "max_queue");
}

TEST(Notifier, MetricsWriterNamesEachNotifier) {
  Rig rig(open_rails());
  Receiver rx;
  halo::WebhookNotifier hook(*rig.engine, {.url = rx.url()});
  std::string out;
  halo::notifier_metrics({&hook})(out);
  EXPECT_NE(out.find("# TYPE octohalo_notifier_posts_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("octohalo_notifier_posts_total{notifier=\"webhook-0\",outcome=\"ok\"} 0\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("octohalo_notifier_pending{notifier=\"webhook-0\"} 0\n"), std::string::npos);
}

}  // namespace

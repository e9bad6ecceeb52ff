// Unique tasks on stream-backed arms: one claim in Redis for the whole fleet, released by the
// consumer at the task's start or end, passed from a delayed task to its stream entry, freed
// when its holder is gone; delayed tasks cancelled; fleet schedules whose overlap policy holds
// across processes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <latch>
#include <mutex>
#include <set>

#include "octo/redis_streams.hpp"
#include "redis_rig.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::Outcome;
using octo::RedisStreams;
using octo::Task;
using octo::UniqueScope;
using octo_test::config;
using octo_test::eventually;
using octo_test::redis;
using octo_test::RedisServer;

Task unique_job(std::string payload, std::string key, UniqueScope scope,
                std::chrono::milliseconds ttl = 60s) {
  Task t{.type = "job", .payload = std::move(payload)};
  t.unique = octo::Unique{.key = std::move(key), .ttl = ttl, .scope = scope};
  return t;
}

// A handler whose tasks with payload "held" wait for the gate (`started` counts down at the
// first one).
struct Held {
  std::latch started{1};
  std::atomic<bool> first{true};
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> runs{0};
  void open_gate() {
    try {
      gate.set_value();
    } catch (const std::future_error&) {  // already open
    }
  }
  octo::Handler handler() {
    return [this](const Task& t, const octo::Context&) {
      if (t.payload == "held") {
        if (first.exchange(false)) started.count_down();
        open.wait();
      }
      ++runs;
      return Outcome::success();
    };
  }
};

// Declared after the RedisStreams it guards: opens the gate before their destructors wait for
// the held task, when a failed assertion leaves the test early.
struct OpenOnExit {
  Held& held;
  ~OpenOnExit() { held.open_gate(); }
};

// "<ms>-<seq>", as Redis numbers stream entries. (Not std::regex: GCC 12's <regex> fails the
// ASan build with -Werror=maybe-uninitialized inside libstdc++.)
bool is_entry_id(const std::string& s) {
  const auto dash = s.find('-');
  auto digits = [](std::string_view v) {
    return !v.empty() &&
           std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return dash != std::string::npos && digits(std::string_view(s).substr(0, dash)) &&
         digits(std::string_view(s).substr(dash + 1));
}

std::string claim_of(const RedisServer& server, const std::string& key) {
  return server.command({"GET", "octo:work:unique:" + key});
}

TEST(RedisUnique, ADuplicateFromAnotherInstanceIsRefusedNamingTheHolderUntilTheRunEnds) {
  RedisServer server;
  Held held;
  auto rc = redis(server.port());
  rc.consumer = "c1";
  RedisStreams one(config(held.handler()), rc);
  rc.consumer = "publisher";
  rc.consume = false;
  RedisStreams two(config(nullptr), rc);
  OpenOnExit guard{held};

  const auto first = one.publish(unique_job("held", "k", UniqueScope::kQueuedOrRunning));
  ASSERT_TRUE(first) << first.error;
  EXPECT_TRUE(first.duplicate_of.empty());
  const auto queued = two.publish(unique_job("again", "k", UniqueScope::kQueuedOrRunning));
  EXPECT_FALSE(queued);
  EXPECT_EQ(queued.duplicate_of, first.entry_id);
  EXPECT_NE(queued.error.find("unique key 'k'"), std::string::npos) << queued.error;
  EXPECT_TRUE(queued.entry_id.empty());
  held.started.wait();
  const auto running = two.publish(unique_job("again", "k", UniqueScope::kQueuedOrRunning));
  EXPECT_EQ(running.duplicate_of, first.entry_id) << "still held while it runs";
  EXPECT_TRUE(two.publish(unique_job("other", "k2", UniqueScope::kQueuedOrRunning)))
      << "another key is free";
  held.open_gate();
  ASSERT_TRUE(eventually([&] { return one.status().arms[0].acked == 2; }));
  // Released in the same pipeline as the ack, after it: gone once the ack is counted.
  EXPECT_EQ(server.command({"EXISTS", "octo:work:unique:k"}), "0");
  EXPECT_EQ(server.command({"EXISTS", "octo:work:unique:k2"}), "0");
  const auto after = two.publish(unique_job("after", "k", UniqueScope::kQueuedOrRunning));
  ASSERT_TRUE(after) << after.error;
  EXPECT_NE(after.entry_id, first.entry_id);
  ASSERT_TRUE(eventually([&] { return one.status().arms[0].acked == 3; }));
  EXPECT_EQ(held.runs.load(), 3);
  EXPECT_EQ(two.status().arms[0].published, 2u) << "duplicates are not published";
}

TEST(RedisUnique, AClaimWhileQueuedIsReleasedWhenTheTaskStarts) {
  RedisServer server;
  auto rc = redis(server.port());
  rc.consume = false;
  rc.consumer = "publisher";
  RedisStreams publisher(config(nullptr), rc);
  const auto first = publisher.publish(unique_job("held", "k", UniqueScope::kQueued));
  ASSERT_TRUE(first) << first.error;
  // No consumer yet: queued, so held.
  EXPECT_EQ(publisher.publish(unique_job("x", "k", UniqueScope::kQueued)).duplicate_of,
            first.entry_id);
  EXPECT_EQ(claim_of(server, "k"), first.entry_id);

  Held held;
  rc.consume = true;
  rc.consumer = "c1";
  RedisStreams consumer(config(held.handler()), rc);
  OpenOnExit guard{held};
  held.started.wait();
  // The release goes out with the acker's next batch, after the start.
  ASSERT_TRUE(eventually([&] { return server.command({"EXISTS", "octo:work:unique:k"}) == "0"; }));
  const auto second = publisher.publish(unique_job("second", "k", UniqueScope::kQueued));
  EXPECT_TRUE(second) << "free once the first runs: " << second.error;
  held.open_gate();
  ASSERT_TRUE(eventually([&] { return consumer.status().arms[0].acked == 2; }));
  EXPECT_EQ(held.runs.load(), 2);
}

TEST(RedisUnique, ADelayedTasksClaimPassesToItsStreamEntryAndCancellingFreesIt) {
  RedisServer server;
  Held held;
  RedisStreams rs(config(held.handler()), redis(server.port()));
  OpenOnExit guard{held};
  const auto now = std::chrono::system_clock::now();

  Task later = unique_job("never", "k", UniqueScope::kQueuedOrRunning);
  later.run_at = now + 1h;
  const auto d = rs.publish(later);
  ASSERT_TRUE(d) << d.error;
  EXPECT_TRUE(d.entry_id.starts_with("delayed-")) << d.entry_id;
  EXPECT_EQ(rs.publish(unique_job("x", "k", UniqueScope::kQueuedOrRunning)).duplicate_of,
            d.entry_id);
  const auto cancelled = rs.cancel_delayed("work", d.entry_id);
  EXPECT_TRUE(cancelled.cancelled) << cancelled.error;
  EXPECT_EQ(server.command({"EXISTS", "octo:work:unique:k"}), "0") << "the claim went with it";
  EXPECT_EQ(server.command({"ZCARD", "octo:work:delayed"}), "0");
  const auto again = rs.cancel_delayed("work", d.entry_id);
  EXPECT_FALSE(again.cancelled);
  EXPECT_TRUE(again.error.empty()) << again.error;

  Task soon = unique_job("held", "k", UniqueScope::kQueuedOrRunning);
  soon.run_at = now + 200ms;
  const auto s = rs.publish(soon);
  ASSERT_TRUE(s) << s.error;
  held.started.wait();
  // Moved and running: the claim is the stream entry's now, and a cancel finds nothing.
  const std::string holder = claim_of(server, "k");
  EXPECT_TRUE(is_entry_id(holder)) << holder;
  EXPECT_EQ(rs.publish(unique_job("x", "k", UniqueScope::kQueuedOrRunning)).duplicate_of, holder);
  EXPECT_FALSE(rs.cancel_delayed("work", s.entry_id).cancelled);
  held.open_gate();
  ASSERT_TRUE(eventually([&] { return rs.status().arms[0].acked == 1; }));
  EXPECT_EQ(server.command({"EXISTS", "octo:work:unique:k"}), "0");
  EXPECT_EQ(held.runs.load(), 1) << "the cancelled task never ran";
}

// A claim whose holder is gone (its entry deleted by hand, a release lost with a connection)
// must not hold the key until its TTL.
TEST(RedisUnique, AClaimWhoseHolderIsGoneIsFree) {
  RedisServer server;
  auto rc = redis(server.port());
  rc.consume = false;
  RedisStreams publisher(config(nullptr), rc);
  const auto first = publisher.publish(unique_job("a", "k", UniqueScope::kQueuedOrRunning, 1h));
  ASSERT_TRUE(first) << first.error;
  EXPECT_EQ(server.command({"XDEL", "octo:work", first.entry_id}), "1");
  const auto second = publisher.publish(unique_job("b", "k", UniqueScope::kQueuedOrRunning, 1h));
  ASSERT_TRUE(second) << second.error;
  EXPECT_EQ(claim_of(server, "k"), second.entry_id);
  // Likewise a delayed holder no longer in the set.
  Task later = unique_job("c", "d", UniqueScope::kQueued, 1h);
  later.run_at = std::chrono::system_clock::now() + 1h;
  const auto d = publisher.publish(later);
  ASSERT_TRUE(d) << d.error;
  EXPECT_EQ(server.command({"ZREM", "octo:work:delayed", d.entry_id.substr(8)}), "1");
  EXPECT_TRUE(publisher.publish(later));
}

TEST(RedisUnique, BadClaimsAndBadCancelsAreRefusedNamingThem) {
  RedisServer server;
  Held held;
  RedisStreams rs(config(held.handler()), redis(server.port()));
  OpenOnExit guard{held};
  const auto empty = rs.publish(unique_job("x", "", UniqueScope::kQueued));
  EXPECT_NE(empty.error.find("an empty key"), std::string::npos) << empty.error;
  const auto zero = rs.publish(unique_job("x", "k", UniqueScope::kQueued, 0ms));
  EXPECT_NE(zero.error.find("TTL 0 ms"), std::string::npos) << zero.error;
  EXPECT_EQ(server.command({"XLEN", "octo:work"}), "0") << "nothing was published";
  try {
    rs.cancel_delayed("work", "1700000000000-1");
    ADD_FAILURE() << "a stream entry id is not a delayed task's";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'1700000000000-1'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rs.cancel_delayed("work", "delayed-"), std::invalid_argument);
  EXPECT_THROW(rs.cancel_delayed("work", "delayed-1x"), std::invalid_argument);
  EXPECT_THROW(rs.cancel_delayed("local", "delayed-1"), std::invalid_argument);
  // A local arm's duplicate is named too, by its task id.
  Task local{.type = "here", .payload = "held"};
  local.unique = octo::Unique{.key = "k", .ttl = 1min, .scope = UniqueScope::kQueuedOrRunning};
  const auto first = rs.publish(local);
  ASSERT_TRUE(first) << first.error;
  EXPECT_TRUE(first.entry_id.starts_with("local-"));
  const auto dup = rs.publish(local);
  EXPECT_EQ(dup.duplicate_of, first.entry_id);
  EXPECT_NE(dup.error.find("unique key 'k'"), std::string::npos) << dup.error;
}

// kSkip across two instances: while a firing's task runs, later firings are skipped wherever
// they are won, and no two runs overlap; kBufferOne holds one more in the stream.
TEST(RedisUnique, FleetScheduleOverlapPoliciesHoldAcrossInstances) {
  RedisServer server;
  std::mutex mu;
  int running = 0, most = 0, runs = 0;
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  auto handler = [&](const Task&, const octo::Context&) {
    bool first = false;
    {
      std::lock_guard lock(mu);
      most = std::max(most, ++running);
      first = ++runs == 1;
    }
    if (first) open.wait();
    std::lock_guard lock(mu);
    --running;
    return Outcome::success();
  };
  octo_test::TwoConsumers fleet(handler, server.port());
  RedisStreams& one = fleet.one;
  RedisStreams& two = fleet.two;
  struct OpenGateOnExit {
    std::promise<void>& p;
    ~OpenGateOnExit() {
      try {
        p.set_value();
      } catch (const std::future_error&) {  // already open
      }
    }
  } guard{gate};
  const octo::ScheduleSpec skip{
      .name = "tick", .every = 50ms, .task = {.type = "job"}, .overlap = octo::Overlap::kSkip};
  one.schedule(skip);
  two.schedule(skip);
  auto sum = [&](auto field) {
    return field(one.schedules().at(0)) + field(two.schedules().at(0));
  };
  auto skipped = [](const octo::FleetScheduleStatus& s) { return s.schedule.skipped; };
  auto fired = [](const octo::FleetScheduleStatus& s) { return s.schedule.fired; };
  ASSERT_TRUE(eventually([&] { return sum(skipped) >= 4; }));
  EXPECT_EQ(sum(fired), 1u) << "one firing runs; the rest were skipped while it ran";
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(runs, 1);
  }
  guard.p.set_value();
  const std::uint64_t before = sum(fired);
  ASSERT_TRUE(eventually([&] { return sum(fired) >= before + 3; }));
  EXPECT_TRUE(one.remove_schedule("tick") && two.remove_schedule("tick"));
  ASSERT_TRUE(eventually([&] {
    return one.status().arms[0].in_flight + two.status().arms[0].in_flight == 0 &&
           server.command({"XLEN", "octo:work"}) == "0";
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(most, 1) << "two firings of a kSkip schedule ran at once";
}

TEST(RedisUnique, AFleetScheduleWithBufferOneKeepsOneWaitingBehindTheRunningOne) {
  RedisServer server;
  Held held;
  // One consumer running one task at a time: the buffered firing waits in the stream.
  RedisStreams rs(config(held.handler(), 1), redis(server.port()));
  OpenOnExit guard{held};
  rs.schedule({.name = "tick",
               .every = 50ms,
               .task = {.type = "job", .payload = "held"},
               .overlap = octo::Overlap::kBufferOne});
  held.started.wait();
  ASSERT_TRUE(eventually([&] {
    const auto st = rs.schedules().at(0).schedule;
    return st.skipped >= 3 && st.fired >= 2;
  }));
  EXPECT_EQ(rs.schedules().at(0).schedule.fired, 2u) << "the running one and one buffered";
  EXPECT_EQ(server.command({"XLEN", "octo:work"}), "2");
  held.open_gate();
  ASSERT_TRUE(eventually([&] { return held.runs.load() >= 3; }));
  EXPECT_TRUE(rs.remove_schedule("tick"));
}

}  // namespace

// Redis faults: stream entries another writer got wrong, a killed server, a frozen one.
#include <gtest/gtest.h>

#include <csignal>

#include "redis_rig.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo_test::CountingConsumer;
using octo_test::eventually;
using octo_test::first_dead_reason;

TEST(RedisStreams, AnEntryWithoutATypeIsDeadLetteredNotRun) {
  CountingConsumer c;
  auto& [server, runs, rs] = c;
  // Written by something other than publish(): no "type" field.
  ASSERT_FALSE(server.command({"XADD", "octo:work", "*", "payload", "x"}).empty());
  ASSERT_TRUE(eventually([&] { return rs.status().arms[0].dead_lettered == 1; }));
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(server.command({"XLEN", "octo:work"}), "0");
  EXPECT_EQ(first_dead_reason(server), "malformed stream entry (no type field)");
  EXPECT_EQ(rs.status().arms[0].in_flight, 0u);
}

// A priority outside 0-3 once became Priority(255) and crashed every consumer (queue index out of
// bounds); it is dead-lettered with the value named, and a good entry behind it still runs.
TEST(RedisStreams, AnEntryWithABadPriorityIsDeadLetteredAndTheNextOneRuns) {
  CountingConsumer c;
  auto& [server, runs, rs] = c;
  ASSERT_FALSE(server.command({"XADD", "octo:work", "*", "type", "t", "priority", "-1"}).empty());
  ASSERT_FALSE(server.command({"XADD", "octo:work", "*", "type", "t", "priority", "2"}).empty());
  ASSERT_TRUE(eventually([&] { return rs.status().arms[0].dead_lettered == 1 && runs == 1; }));
  EXPECT_EQ(first_dead_reason(server), "malformed stream entry: priority '-1' is not 0-3");
}

TEST(RedisStreams, ConnectionLossIsReportedRetriedAndSurvived) {
  CountingConsumer c;
  auto& [server, done, rs] = c;
  ASSERT_TRUE(rs.publish({.type = "job"}));
  ASSERT_TRUE(eventually([&] { return done.load() == 1 && rs.status().connected; }));

  server.kill();
  ASSERT_TRUE(eventually([&] { return !rs.status().connected; }));
  const auto down = rs.status();
  EXPECT_FALSE(down.last_error.empty());
  EXPECT_GT(down.errors, 0u);
  const auto refused = rs.publish({.type = "job"});
  EXPECT_FALSE(refused);
  EXPECT_NE(refused.error.find("redis"), std::string::npos) << refused.error;

  server.start();  // same port, empty (no persistence): the group is created again
  ASSERT_TRUE(eventually([&] { return rs.status().connected; }));
  ASSERT_TRUE(eventually([&] { return static_cast<bool>(rs.publish({.type = "job"})); }));
  ASSERT_TRUE(eventually([&] { return done.load() == 2; }));
  EXPECT_GE(rs.status().reconnects, 1u);
}

// A frozen server (SIGSTOP) still accepts connections in its kernel, so reconnecting "worked"
// and status said connected while no command was answered. Commands time out, a connection
// counts only once PING is answered, and status shows the stall until the server is back.
TEST(RedisStreams, AFrozenServerIsDetectedByCommandTimeoutsAndShownInStatus) {
  CountingConsumer c;
  auto& [server, done, rs] = c;
  ASSERT_TRUE(rs.publish({.type = "job"}));
  ASSERT_TRUE(eventually([&] { return done.load() == 1 && rs.status().connected; }));

  server.signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return !rs.status().connected; }));
  EXPECT_NE(rs.status().last_error.find("no reply within"), std::string::npos)
      << rs.status().last_error;
  // Reconnects reach the kernel but get no PONG: it stays shown as not connected.
  const auto errors = rs.status().errors;
  ASSERT_TRUE(eventually([&] { return rs.status().errors >= errors + 2; }));
  EXPECT_FALSE(rs.status().connected);

  server.signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return rs.status().connected; }));
  ASSERT_TRUE(eventually([&] { return static_cast<bool>(rs.publish({.type = "job"})); }));
  ASSERT_TRUE(eventually([&] { return done.load() == 2; }));
}

}  // namespace

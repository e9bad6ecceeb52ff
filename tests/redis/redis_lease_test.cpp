// octo::RedisLease against a private redis-server: one holder at a time, fencing tokens that only
// grow, renew / release / holds only for the token that holds it, expiry, bad input, Redis down.
#include "octo/redis_lease.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "redis_rig.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::RedisLease;
using octo_test::eventually;
using octo_test::redis;
using octo_test::RedisServer;

TEST(RedisLease, OneHolderAtATimeWithGrowingTokens) {
  RedisServer server;
  RedisLease a(redis(server.port()), "a"), b(redis(server.port()), "b");
  const auto first = a.acquire("repair:db", 30s);
  ASSERT_TRUE(first.error.empty()) << first.error;
  ASSERT_GT(first.token, 0u);
  const auto lost = b.acquire("repair:db", 30s);
  EXPECT_EQ(lost.token, 0u);
  EXPECT_TRUE(lost.error.empty());
  EXPECT_EQ(lost.holder, "a");
  EXPECT_EQ(server.command({"GET", "octo:lease:repair:db"}), std::to_string(first.token) + " a");

  EXPECT_TRUE(a.holds("repair:db", first.token));
  EXPECT_FALSE(b.holds("repair:db", first.token + 1));
  EXPECT_FALSE(b.renew("repair:db", first.token + 1, 30s)) << "not the holder's token";
  EXPECT_FALSE(b.release("repair:db", first.token + 1));
  EXPECT_TRUE(a.renew("repair:db", first.token, 60s));
  const auto pttl = std::stoll(server.command({"PTTL", "octo:lease:repair:db"}));
  EXPECT_GT(pttl, 30'000) << "renewed to 60 s";
  EXPECT_TRUE(a.release("repair:db", first.token));
  EXPECT_FALSE(a.holds("repair:db", first.token));

  const auto second = b.acquire("repair:db", 30s);
  ASSERT_GT(second.token, first.token) << "fencing tokens only grow";
  // The first holder, stale now, can neither extend nor end its successor's lease.
  EXPECT_FALSE(a.renew("repair:db", first.token, 30s));
  EXPECT_FALSE(a.release("repair:db", first.token));
  EXPECT_TRUE(b.holds("repair:db", second.token));
  EXPECT_GT(a.acquire("other", 30s).token, 0u) << "leases are per name";
}

TEST(RedisLease, AHolderThatStopsRenewingLosesTheLeaseAfterItsTtl) {
  RedisServer server;
  RedisLease a(redis(server.port()), "a"), b(redis(server.port()), "b");
  const auto first = a.acquire("l", 50ms);
  ASSERT_GT(first.token, 0u);
  EXPECT_EQ(b.acquire("l", 50ms).token, 0u);
  // The TTL runs out in Redis (no renew): the key goes, and the next taker gets a larger token.
  ASSERT_TRUE(eventually([&] { return server.command({"EXISTS", "octo:lease:l"}) == "0"; }));
  const auto next = b.acquire("l", 30s);
  EXPECT_GT(next.token, first.token);
  EXPECT_FALSE(a.holds("l", first.token));
}

TEST(RedisLease, RacingTakersGetOneLease) {
  RedisServer server;
  constexpr int kTakers = 8;
  std::vector<std::unique_ptr<RedisLease>> leases;
  for (int i = 0; i < kTakers; ++i)
    leases.push_back(std::make_unique<RedisLease>(redis(server.port()), "t" + std::to_string(i)));
  for (int round = 0; round < 20; ++round) {
    std::latch go(kTakers);
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kTakers; ++i) {
      threads.emplace_back([&, i] {
        go.arrive_and_wait();
        const auto r =
            leases[static_cast<std::size_t>(i)]->acquire("race@" + std::to_string(round), 30s);
        EXPECT_TRUE(r.error.empty()) << r.error;
        if (r.token != 0) won.fetch_add(1);
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(won.load(), 1) << "round " << round;
  }
}

TEST(RedisLease, BadInputThrowsAndRedisDownIsAnErrorNotALease) {
  RedisLease down(redis(octo_test::free_port()), "x");
  EXPECT_THROW(down.acquire("", 1s), std::invalid_argument);
  EXPECT_THROW(down.acquire("l", 0ms), std::invalid_argument);
  const auto r = down.acquire("l", 1s);
  EXPECT_EQ(r.token, 0u);
  EXPECT_NE(r.error.find("redis unavailable"), std::string::npos) << r.error;
  EXPECT_FALSE(down.renew("l", 1, 1s));
  EXPECT_FALSE(down.holds("l", 1));
  EXPECT_FALSE(down.holds("l", 0));
}

}  // namespace

#include "octo/window_counter.hpp"

#include <gtest/gtest.h>

#include <array>
#include <future>
#include <latch>
#include <stdexcept>
#include <thread>
#include <vector>

#include "manual_time.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;

using octo_test::ManualTime;

TEST(WindowCounter, GeometryKeepsTheWindowWithPowerOfTwoBuckets) {
  ManualTime t;
  octo::WindowCounter exact(t.ticker, {.window = 100ms, .buckets = 10});
  EXPECT_EQ(exact.bucket_width(), 10ms);
  EXPECT_EQ(exact.buckets(), 10u);
  EXPECT_EQ(exact.window(), 100ms);

  // 10 s / 100 = 100 ms = 10 ticks -> 8 ticks (80 ms) per bucket, 125 buckets.
  octo::WindowCounter rounded(t.ticker, {.window = 10s, .buckets = 100});
  EXPECT_EQ(rounded.bucket_width(), 80ms);
  EXPECT_EQ(rounded.buckets(), 125u);
  EXPECT_EQ(rounded.window(), 10s);

  EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 1s, .buckets = 0}), std::invalid_argument);
  EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 1ms, .buckets = 1}), std::invalid_argument);
  EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 1s, .buckets = 70000}),
               std::invalid_argument);
}

TEST(WindowCounter, SumsAcrossRolloverAndBucketsExpire) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 100ms, .buckets = 10});
  c.record(5);  // bucket 0
  t.advance(50ms);
  c.record(3);  // bucket 5
  EXPECT_EQ(c.sum(), 8u);
  EXPECT_EQ(c.sum(10ms), 3u);  // only the current bucket
  EXPECT_EQ(c.sum(60ms), 8u);  // buckets 0..5
  t.advance(40ms);             // bucket 9: bucket 0 is the oldest one still inside
  EXPECT_EQ(c.sum(), 8u);
  t.advance(10ms);  // bucket 10: bucket 0 has left the window
  EXPECT_EQ(c.sum(), 3u);
  EXPECT_EQ(c.total(), 8u);
  t.advance(1s);  // everything expired; the all-time total stays
  EXPECT_EQ(c.sum(), 0u);
  c.record();  // overwrites an old slot; its count moves to the total
  EXPECT_EQ(c.sum(), 1u);
  EXPECT_EQ(c.total(), 9u);
  EXPECT_DOUBLE_EQ(c.rate(), 1.0 / 0.1);
}

// sum_after(b) leaves out bucket b itself and everything before it: what HALO's endpoint
// mark uses to judge a repaired endpoint on the traffic after its repair only.
TEST(WindowCounter, SumAfterCountsOnlyLaterBuckets) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 100ms, .buckets = 10});
  c.record(5);
  t.advance(20ms);
  c.record(3);
  const std::uint64_t mark = c.current_bucket();
  c.record(2);  // in the marked bucket: left out
  EXPECT_EQ(c.sum_after(mark), 0u);
  t.advance(10ms);
  c.record(4);
  EXPECT_EQ(c.sum_after(mark), 4u);
  EXPECT_EQ(c.sum(), 14u);
  t.advance(1s);  // the window moved past everything
  EXPECT_EQ(c.sum_after(mark), 0u);
  c.record(1);
  EXPECT_EQ(c.sum_after(mark), 1u);
}

// A bucket's count once shared a word with its stamp, 32 bits each: record(2^32 - 1) then
// record(1) carried into the stamp, and the counter read 0.
TEST(WindowCounter, CountsPastThirtyTwoBitsDoNotWrapOrCorruptTheBucket) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 100ms, .buckets = 10});
  constexpr std::uint64_t k32 = std::uint64_t{1} << 32;
  c.record(k32 - 1);
  c.record(1);
  EXPECT_EQ(c.sum(), k32);
  EXPECT_EQ(c.sum(10ms), k32);
  c.record(3 * k32);  // one record() past 32 bits
  EXPECT_EQ(c.sum(), 4 * k32);
  t.advance(10ms);  // a new bucket; the old one is still in the window
  c.record(7);
  EXPECT_EQ(c.sum(), 4 * k32 + 7);
  EXPECT_EQ(c.sum(10ms), 7u);
  t.advance(1s);  // both age out; the all-time total keeps them
  c.record();
  EXPECT_EQ(c.sum(), 1u);
  EXPECT_EQ(c.total(), 4 * k32 + 8);
}

TEST(WindowCounter, AtMostOneBucketOfErrorAtTheEdge) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 100ms, .buckets = 10});
  c.record(7);     // t = 0, bucket 0
  t.advance(9ms);  // still bucket 0
  c.record(1);
  t.advance(90ms);  // t = 99 ms, bucket 9: both events are inside the window
  EXPECT_EQ(c.sum(), 8u);
  t.advance(6ms);  // t = 105 ms, bucket 10: bucket 0 leaves as a whole
  // The event at 9 ms is only 96 ms old, yet no longer counted: whole buckets age out, so the
  // window may leave out at most one bucket (10 ms) of its oldest events.
  EXPECT_EQ(c.sum(), 0u);
  EXPECT_EQ(c.total(), 8u);
}

TEST(WindowCounter, ExactTotalsFromManyThreadsIncludingExitedOnes) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 1s, .buckets = 10});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100'000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < kPerThread; ++k) c.record();
    });
  }
  for (auto& th : threads) th.join();  // every writer has exited
  EXPECT_EQ(c.sum(), std::uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(c.total(), std::uint64_t{kThreads} * kPerThread);
  EXPECT_LE(c.shard_count(), static_cast<std::size_t>(kThreads));

  // New threads adopt the exited threads' shards instead of allocating more.
  const auto shards = c.shard_count();
  std::thread([&] { c.record(2); }).join();
  EXPECT_EQ(c.shard_count(), shards);
  EXPECT_EQ(c.total(), std::uint64_t{kThreads} * kPerThread + 2);

  // Exited threads' counts age out of the window like any other.
  t.advance(2s);
  EXPECT_EQ(c.sum(), 0u);
  EXPECT_EQ(c.total(), std::uint64_t{kThreads} * kPerThread + 2);
}

// Lanes: counts that move together share a row. Each lane sums, expires and totals on its own
// (a roll that reuses a slot clears every lane of its row, keeping the old counts in each
// lane's total), and record() adds to lane 0.
TEST(WindowCounter, LanesCountSideBySideAndExpireTogether) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 100ms, .buckets = 10, .lanes = 3});
  EXPECT_EQ(c.lanes(), 3u);
  auto* r = c.row();
  ASSERT_NE(r, nullptr);
  octo::WindowCounter::add(r[0], 1);
  octo::WindowCounter::add(r[1], 0);
  octo::WindowCounter::add(r[2], 250);
  c.record(4);  // lane 0
  t.advance(50ms);
  r = c.row();
  octo::WindowCounter::add(r[0], 2);
  octo::WindowCounter::add(r[1], 1);
  octo::WindowCounter::add(r[2], 40);
  EXPECT_EQ(c.sum(0), 7u);
  EXPECT_EQ(c.sum(1), 1u);
  EXPECT_EQ(c.sum(2), 290u);
  EXPECT_EQ(c.sum(10ms, 2), 40u);  // only the current bucket
  // All lanes in one pass, and the first two; after a bucket, as sum_after.
  std::array<std::uint64_t, 3> all{};
  c.sums(all);
  EXPECT_EQ(all, (std::array<std::uint64_t, 3>{7, 1, 290}));
  std::array<std::uint64_t, 2> two{};
  c.sums(two);
  EXPECT_EQ(two, (std::array<std::uint64_t, 2>{7, 1}));
  c.sums_after(c.current_bucket() - 1, all);
  EXPECT_EQ(all, (std::array<std::uint64_t, 3>{2, 1, 40}));
  std::array<std::uint64_t, 4> too_many{};
  EXPECT_THROW(c.sums(too_many), std::invalid_argument);
  EXPECT_EQ(c.sum(3), 0u);  // no such lane
  EXPECT_EQ(c.total(3), 0u);
  t.advance(50ms);  // bucket 10: bucket 0 has left the window
  EXPECT_EQ(c.sum(0), 2u);
  EXPECT_EQ(c.sum(2), 40u);
  t.advance(1s);
  r = c.row();  // reuses bucket 0's slot: every lane of its row starts again at 0
  octo::WindowCounter::add(r[1], 5);
  EXPECT_EQ(c.sum(0), 0u);
  EXPECT_EQ(c.sum(1), 5u);
  EXPECT_EQ(c.sum(2), 0u);
  EXPECT_EQ(c.total(0), 7u);
  EXPECT_EQ(c.total(1), 6u);
  EXPECT_EQ(c.total(2), 290u);

  EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 1s, .lanes = 0}), std::invalid_argument);
  EXPECT_THROW(
      octo::WindowCounter(t.ticker, {.window = 1s, .lanes = octo::WindowCounter::kMaxLanes + 1}),
      std::invalid_argument);
}

// Many threads, some exiting while others record, each adding to three lanes per row: every
// lane's total is exact, and the lanes stay in step (lane 1 = 2 x lane 0, lane 2 = 3 x lane 0).
TEST(WindowCounter, LaneTotalsStayExactAcrossThreadsThatExit) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 1s, .buckets = 10, .lanes = 3});
  constexpr int kWaves = 4;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50'000;
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        for (int k = 0; k < kPerThread; ++k) {
          auto* r = c.row();
          octo::WindowCounter::add(r[0], 1);
          octo::WindowCounter::add(r[1], 2);
          octo::WindowCounter::add(r[2], 3);
        }
      });
    }
    t.advance(300ms);  // rows roll while the writers run
    for (auto& th : threads) th.join();
  }
  constexpr std::uint64_t kAll = std::uint64_t{kWaves} * kThreads * kPerThread;
  EXPECT_EQ(c.total(0), kAll);
  EXPECT_EQ(c.total(1), 2 * kAll);
  EXPECT_EQ(c.total(2), 3 * kAll);
  EXPECT_EQ(c.sum(1), 2 * c.sum(0));
  EXPECT_EQ(c.sum(2), 3 * c.sum(0));
  EXPECT_LE(c.shard_count(), static_cast<std::size_t>(kThreads));  // exited threads' shards reused
}

// Tallies are per-thread all-time counts: exact across threads that exit (their shards, and so
// their tallies, pass to later threads), untouched by the window rolling.
TEST(WindowCounter, TalliesAddUpAcrossThreadsThatExitAndIgnoreTheWindow) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 1s, .buckets = 10, .tallies = 5});
  EXPECT_EQ(c.tallies(), 5u);
  constexpr int kWaves = 3;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 40'000;
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        for (int k = 0; k < kPerThread; ++k) {
          const auto rows = c.rows();
          octo::WindowCounter::add(rows.row[0], 1);
          octo::WindowCounter::add(rows.tallies[i], 1U);
        }
      });
    }
    t.advance(700ms);
    for (auto& th : threads) th.join();
  }
  t.advance(5s);  // the window is empty now; the tallies are not
  EXPECT_EQ(c.sum(), 0u);
  std::uint32_t tallies[6] = {9, 9, 9, 9, 9, 9};
  c.read_tallies(tallies);
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(tallies[i], std::uint32_t{kWaves} * kPerThread);
  EXPECT_EQ(tallies[4], 0u);
  EXPECT_EQ(tallies[5], 9u) << "past the counter's tallies: left alone";
  EXPECT_EQ(c.total(), std::uint64_t{kWaves} * kThreads * kPerThread);
  // A counter without tallies hands out none.
  octo::WindowCounter plain(t.ticker, {.window = 1s});
  EXPECT_EQ(plain.rows().tallies, nullptr);
  EXPECT_NE(plain.rows().row, nullptr);
  EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 1s, .tallies = 65537}),
               std::invalid_argument);
}

TEST(WindowCounter, ConcurrentReadersSeeMonotoneSumsWhileTimeStands) {
  ManualTime t;
  octo::WindowCounter c(t.ticker, {.window = 1s, .buckets = 10});
  std::atomic<bool> done{false};
  std::latch started(2);
  std::vector<std::thread> writers;
  for (int i = 0; i < 2; ++i) {
    writers.emplace_back([&] {
      started.count_down();
      for (int k = 0; k < 200'000; ++k) c.record();
    });
  }
  started.wait();
  std::uint64_t last = 0;
  while (!done.load()) {
    const auto s = c.sum();
    EXPECT_GE(s, last);
    last = s;
    if (s == 400'000) done = true;
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(c.sum(), 400'000u);
}

TEST(WindowCounter, ManyCountersAndRecycledIds) {
  ManualTime t;
  std::vector<std::unique_ptr<octo::WindowCounter>> counters;
  for (int i = 0; i < 100; ++i) {
    counters.push_back(std::make_unique<octo::WindowCounter>(
        t.ticker, octo::WindowCounter::Options{.window = 1s, .buckets = 10}));
  }
  for (int i = 0; i < 100; ++i) counters[i]->record(static_cast<std::uint64_t>(i));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(counters[i]->sum(), static_cast<std::uint64_t>(i));
  // A destroyed counter's id is reused; this thread's old slot must not leak into the new one.
  counters[42].reset();
  octo::WindowCounter fresh(t.ticker, {.window = 1s, .buckets = 10});
  fresh.record(5);
  EXPECT_EQ(fresh.sum(), 5u);
  EXPECT_EQ(counters[41]->sum(), 41u);
  EXPECT_EQ(counters[43]->sum(), 43u);
}

TEST(WindowCounter, PinnedSlotsAreExclusivePermanentAndRecordWithoutLookup) {
  ManualTime t;
  const auto epoch = [&] { return t.ticker.epoch_word().load(); };
  {
    octo::WindowCounter pinned(t.ticker, {.window = 100ms, .buckets = 10}, 1);
    EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 100ms, .buckets = 10}, 1),
                 std::invalid_argument);
    EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 100ms, .buckets = 10},
                                     octo::WindowCounter::kPinnedSlots),
                 std::invalid_argument);
    // This thread's first record goes through the counter; then the pinned path lands in the
    // same bucket, until the bucket ends.
    EXPECT_FALSE(octo::WindowCounter::record_pinned(1, epoch(), 2));
    pinned.record(3);
    EXPECT_TRUE(octo::WindowCounter::record_pinned(1, epoch(), 2));
    EXPECT_EQ(pinned.sum(), 5u);
    t.advance(10ms);  // the next bucket
    EXPECT_FALSE(octo::WindowCounter::record_pinned(1, epoch(), 1));
    pinned.record(1);
    EXPECT_TRUE(octo::WindowCounter::record_pinned(1, epoch(), 1));
    EXPECT_EQ(pinned.sum(), 7u);
    EXPECT_EQ(pinned.total(), 7u);
  }
  // Destroyed, the slot stays taken: this thread's handle there still names the old counter.
  EXPECT_THROW(octo::WindowCounter(t.ticker, {.window = 100ms, .buckets = 10}, 1),
               std::invalid_argument);
}

}  // namespace

// The executor's node pool (runtime/src/detail/task_slab.hpp): ids, reuse, the per-thread
// magazines and what happens to them when a thread exits or its slab is destroyed first.
#include "detail/task_slab.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace {

using octo::detail::TaskNode;
using octo::detail::TaskSlab;

std::uint64_t state_of(const TaskNode* n) { return n->word.load() & 3; }

TEST(TaskSlab, HandsOutDistinctQueuedNodesAndReusesThemUnderNewIds) {
  auto slab = TaskSlab::create();
  constexpr std::size_t kCount = TaskSlab::kChunk + 100;  // spans a second chunk
  std::vector<TaskNode*> nodes;
  std::set<std::uint32_t> slots;
  std::set<octo::TaskId> ids;
  for (std::size_t i = 0; i < kCount; ++i) {
    TaskNode* n = slab->acquire();
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(state_of(n), TaskNode::kQueued);
    EXPECT_EQ(slab->find(n->id()), n);
    slots.insert(n->slot);
    ids.insert(n->id());
    nodes.push_back(n);
  }
  EXPECT_EQ(slots.size(), kCount);
  EXPECT_EQ(slab->capacity(), 2u * TaskSlab::kChunk);
  for (std::size_t i = 0; i < nodes.size(); i += 32)
    slab->release(&nodes[i], std::min<std::size_t>(32, nodes.size() - i));
  for (const TaskNode* n : nodes) EXPECT_EQ(state_of(n), TaskNode::kFree);
  // The same memory comes back under a new generation: no old id names a reissued node.
  for (std::size_t i = 0; i < kCount; ++i) {
    TaskNode* n = slab->acquire();
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(ids.count(n->id()), 0u) << "slot " << n->slot;
  }
  EXPECT_EQ(slab->capacity(), 2u * TaskSlab::kChunk);  // reused, not grown
}

// Every node's prefetch hint names the node handed out kPrefetchAhead takes later from the same
// chain, or nothing when the chain ends before that: for new chunks and for released batches.
void expect_hints_follow_chains(const std::vector<TaskNode*>& seq) {
  constexpr std::size_t k = TaskSlab::kPrefetchAhead;
  std::size_t hinted = 0;
  for (std::size_t i = 0; i + k < seq.size(); ++i) {
    bool chain_ends = false;
    for (std::size_t j = i; j < i + k; ++j) {
      const std::uint32_t next = seq[j]->next_free.load();
      if (next == 0) {
        chain_ends = true;
        break;
      }
      ASSERT_EQ(next, seq[j + 1]->slot + 1) << "handed out out of chain order at " << j;
    }
    const std::uint32_t ahead = seq[i]->ahead.load();
    if (chain_ends) {
      EXPECT_EQ(ahead, 0u) << "hint past the chain's end at " << i;
    } else {
      EXPECT_EQ(ahead, seq[i + k]->slot + 1) << "at " << i;
      ++hinted;
    }
  }
  EXPECT_GT(hinted, seq.size() / 2);
}

TEST(TaskSlab, PrefetchHintsPointAlongTheChain) {
  auto slab = TaskSlab::create();
  std::vector<TaskNode*> seq;
  for (std::size_t i = 0; i < 3 * TaskSlab::kMaxChain; ++i) seq.push_back(slab->acquire());
  expect_hints_follow_chains(seq);  // chains cut from a new chunk
  // Batches of uneven sizes, shorter and longer than the hint's reach, come back as chains.
  std::size_t at = 0;
  for (std::size_t len : {1, 3, 4, 5, 17, 64, 42, 56}) {
    slab->release(&seq[at], len);
    at += len;
  }
  ASSERT_EQ(at, seq.size());
  std::vector<TaskNode*> again;
  for (std::size_t i = 0; i < seq.size(); ++i) again.push_back(slab->acquire());
  expect_hints_follow_chains(again);
}

TEST(TaskSlab, AThreadsMagazineGoesBackWhenTheThreadExits) {
  auto slab = TaskSlab::create();
  std::thread([&] {
    TaskNode* n = slab->acquire();  // takes a whole chain; the rest stays in the magazine
    slab->release(n);
    EXPECT_LT(slab->free_count(), slab->capacity());
  }).join();
  EXPECT_EQ(slab->free_count(), slab->capacity());
}

TEST(TaskSlab, AMagazineOutlivingItsSlabNeverTouchesIt) {
  // The thread holds nodes of slab A in its magazine when A is destroyed; it then moves on to B
  // and exits. Under ASan a write into A's freed chunks would be reported here.
  auto a = TaskSlab::create();
  auto b = TaskSlab::create();
  std::latch took_from_a(1), a_gone(1);
  std::thread t([&] {
    a->release(a->acquire());
    took_from_a.count_down();
    a_gone.wait();
    TaskNode* n = b->acquire();
    ASSERT_NE(n, nullptr);
    b->release(n);
  });
  took_from_a.wait();
  a.reset();
  a_gone.count_down();
  t.join();
  EXPECT_EQ(b->free_count(), b->capacity());
}

TEST(TaskSlab, ConcurrentProducersAndReleasersNeverShareANode) {
  auto slab = TaskSlab::create();
  constexpr int kThreads = 4, kRounds = 20'000;
  // One owner flag per slot the test can reach (4 threads hold at most 32 nodes each).
  std::vector<std::atomic<int>> owner(4 * TaskSlab::kChunk);
  std::atomic<int> clashes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<TaskNode*> held;
      for (int r = 0; r < kRounds; ++r) {
        const std::size_t want = 1 + rng() % 32;
        while (held.size() < want) {
          TaskNode* n = slab->acquire();
          if (n == nullptr || n->slot >= owner.size()) {
            clashes.fetch_add(1);
            return;
          }
          if (owner[n->slot].exchange(t + 1) != 0) clashes.fetch_add(1);
          held.push_back(n);
        }
        for (TaskNode* n : held) owner[n->slot].store(0);
        slab->release(held.data(), held.size());
        held.clear();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(clashes.load(), 0);
  EXPECT_EQ(slab->free_count(), slab->capacity());  // every thread's magazine came back
}

}  // namespace

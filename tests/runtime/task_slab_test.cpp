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

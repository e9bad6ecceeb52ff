// Pooled storage for typed tasks, addressable by TaskId so that cancel(id) is O(1) and lock-free.
//
// A TaskId is (generation << 32 | slot). Each slot's state word packs (generation << 2 | state);
// cancel and take are single CASes on that word, so a recycled slot (new generation) can never be
// cancelled by a stale id.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include <concurrentqueue/concurrentqueue.h>

#include "octo/task.hpp"

namespace octo::detail {

struct TaskNode {
  enum State : std::uint64_t { kFree = 0, kQueued = 1, kRunning = 2, kCancelled = 3 };
  static constexpr std::uint64_t kGenMask = (std::uint64_t{1} << 30) - 1;

  std::atomic<std::uint64_t> word{std::uint64_t{1} << 2};  // generation 1, free
  std::uint32_t slot = 0;
  Task task;

  std::uint64_t generation() const noexcept { return word.load(std::memory_order_relaxed) >> 2; }
  TaskId id() const noexcept { return (generation() << 32) | slot; }
};

class TaskSlab {
 public:
  static constexpr std::uint32_t kChunkBits = 12;
  static constexpr std::uint32_t kChunk = 1u << kChunkBits;
  static constexpr std::uint32_t kMaxChunks = 1024;  // 4M live typed tasks

  TaskSlab() = default;
  TaskSlab(const TaskSlab&) = delete;
  ~TaskSlab() {
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
  }

  // A free node in state kQueued, or nullptr when the slab is exhausted or memory ran out.
  TaskNode* acquire() noexcept {
    std::uint32_t slot;
    if (!free_.try_dequeue(slot) && !grow(slot)) return nullptr;
    TaskNode* n = at(slot);
    const std::uint64_t gen = n->generation();
    // Relaxed: the node is published to drainers by the queue push (release) that follows.
    n->word.store((gen << 2) | TaskNode::kQueued, std::memory_order_relaxed);
    return n;
  }

  // Returns a finished node to the pool under a new generation.
  void release(TaskNode* n) noexcept {
    std::uint64_t gen = (n->generation() + 1) & TaskNode::kGenMask;
    if (gen == 0) gen = 1;  // ids are never 0
    n->task.payload.clear();
    n->task.target_agents.clear();
    // Release: a later acquirer of this slot sees the reset task.
    n->word.store((gen << 2) | TaskNode::kFree, std::memory_order_release);
    free_.enqueue(n->slot);
  }

  // The node an id refers to if that slot exists (its generation may differ), else nullptr.
  TaskNode* find(TaskId id) const noexcept {
    const auto slot = static_cast<std::uint32_t>(id);
    if ((slot >> kChunkBits) >= kMaxChunks) return nullptr;
    TaskNode* chunk = chunks_[slot >> kChunkBits].load(std::memory_order_acquire);
    return chunk ? &chunk[slot & (kChunk - 1)] : nullptr;
  }

 private:
  TaskNode* at(std::uint32_t slot) const noexcept {
    return &chunks_[slot >> kChunkBits].load(std::memory_order_acquire)[slot & (kChunk - 1)];
  }

  bool grow(std::uint32_t& out) noexcept {
    std::lock_guard lock(grow_mu_);
    if (free_.try_dequeue(out)) return true;  // another thread grew meanwhile
    if (chunk_count_ == kMaxChunks) return false;
    TaskNode* chunk = new (std::nothrow) TaskNode[kChunk];
    if (!chunk) return false;
    const std::uint32_t base = chunk_count_ << kChunkBits;
    for (std::uint32_t i = 0; i < kChunk; ++i) chunk[i].slot = base + i;
    // Release: find()/at() on other threads see the initialised nodes.
    chunks_[chunk_count_++].store(chunk, std::memory_order_release);
    std::uint32_t slots[256];
    for (std::uint32_t i = 1; i < kChunk; i += 256) {
      std::uint32_t n = 0;
      for (std::uint32_t j = i; j < kChunk && n < 256; ++j) slots[n++] = base + j;
      free_.enqueue_bulk(slots, n);
    }
    out = base;
    return true;
  }

  std::atomic<TaskNode*> chunks_[kMaxChunks]{};
  std::uint32_t chunk_count_ = 0;  // guarded by grow_mu_
  std::mutex grow_mu_;
  moodycamel::ConcurrentQueue<std::uint32_t> free_;
};

}  // namespace octo::detail

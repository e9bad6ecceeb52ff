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

#include "octo/task.hpp"

namespace octo::detail {

struct TaskNode {
  enum State : std::uint64_t { kFree = 0, kQueued = 1, kRunning = 2, kCancelled = 3 };
  static constexpr std::uint64_t kGenMask = (std::uint64_t{1} << 30) - 1;

  std::atomic<std::uint64_t> word{std::uint64_t{1} << 2};  // generation 1, free
  std::atomic<std::uint32_t> next_free{0};                 // free-list link: slot + 1, 0 = end
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
    TaskNode* n = pop();
    if (n == nullptr && (n = grow()) == nullptr) return nullptr;
    const std::uint64_t gen = n->generation();
    // Relaxed: the node is published to drainers by the queue push (release) that follows.
    n->word.store((gen << 2) | TaskNode::kQueued, std::memory_order_relaxed);
    return n;
  }

  // Returns finished nodes to the pool under a new generation, with one CAS for the whole batch.
  void release(TaskNode* const* nodes, std::size_t count) noexcept {
    if (count == 0) return;
    for (std::size_t i = 0; i < count; ++i) {
      TaskNode* n = nodes[i];
      std::uint64_t gen = (n->generation() + 1) & TaskNode::kGenMask;
      if (gen == 0) gen = 1;  // ids are never 0
      n->task.payload.clear();
      n->task.target_agents.clear();
      n->word.store((gen << 2) | TaskNode::kFree, std::memory_order_relaxed);
      if (i + 1 < count) n->next_free.store(nodes[i + 1]->slot + 1, std::memory_order_relaxed);
    }
    push_chain(nodes[0], nodes[count - 1]);
  }
  void release(TaskNode* n) noexcept { release(&n, 1); }

  // The node an id refers to if that slot exists (its generation may differ), else nullptr.
  TaskNode* find(TaskId id) const noexcept {
    const auto slot = static_cast<std::uint32_t>(id);
    if ((slot >> kChunkBits) >= kMaxChunks) return nullptr;
    TaskNode* chunk = chunks_[slot >> kChunkBits].load(std::memory_order_acquire);
    return chunk ? &chunk[slot & (kChunk - 1)] : nullptr;
  }

 private:
  // The free list is a Treiber stack of slot indices: head = tag << 32 | (slot + 1), 0 = empty.
  // The tag changes on every pop, so a pop that raced with pop-push of the same slot (ABA) fails
  // its CAS. Nodes are never freed while the slab lives, so reading a stale next_free is harmless.
  TaskNode* pop() noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      const auto top = static_cast<std::uint32_t>(head);
      if (top == 0) return nullptr;
      TaskNode* n = at(top - 1);
      const std::uint64_t next = n->next_free.load(std::memory_order_relaxed);
      const std::uint64_t tag = (head >> 32) + 1;
      // Acquire on success: the node's reset (release by push_chain) happens-before our reuse.
      if (head_.compare_exchange_weak(head, (tag << 32) | next, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        // The next node was last written by a drainer on another core: start pulling its lines
        // now, so the next acquire (one task later) finds them local instead of missing on each.
        if (next != 0) prefetch_for_write(at(static_cast<std::uint32_t>(next) - 1));
        return n;
      }
    }
  }

  void push_chain(TaskNode* first, TaskNode* last) noexcept {
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      last->next_free.store(static_cast<std::uint32_t>(head), std::memory_order_relaxed);
      // Release: publishes the reset nodes and their links to the popping thread.
      if (head_.compare_exchange_weak(head, (head & ~std::uint64_t{0xffffffff}) | (first->slot + 1),
                                      std::memory_order_release, std::memory_order_relaxed)) {
        return;
      }
    }
  }

  static void prefetch_for_write(const TaskNode* n) noexcept {
    const char* p = reinterpret_cast<const char*>(n);
    for (std::size_t off = 0; off < sizeof(TaskNode); off += 64) __builtin_prefetch(p + off, 1);
  }

  TaskNode* at(std::uint32_t slot) const noexcept {
    return &chunks_[slot >> kChunkBits].load(std::memory_order_acquire)[slot & (kChunk - 1)];
  }

  TaskNode* grow() noexcept {
    std::lock_guard lock(grow_mu_);
    if (TaskNode* n = pop()) return n;  // another thread grew meanwhile
    if (chunk_count_ == kMaxChunks) return nullptr;
    TaskNode* chunk = new (std::nothrow) TaskNode[kChunk];
    if (!chunk) return nullptr;
    const std::uint32_t base = chunk_count_ << kChunkBits;
    for (std::uint32_t i = 0; i < kChunk; ++i) {
      chunk[i].slot = base + i;
      if (i + 1 < kChunk) chunk[i].next_free.store(base + i + 2, std::memory_order_relaxed);
    }
    // Release: find()/at() on other threads see the initialised nodes.
    chunks_[chunk_count_++].store(chunk, std::memory_order_release);
    if (kChunk > 1) push_chain(&chunk[1], &chunk[kChunk - 1]);
    return &chunk[0];
  }

  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<TaskNode*> chunks_[kMaxChunks]{};
  std::uint32_t chunk_count_ = 0;  // guarded by grow_mu_
  std::mutex grow_mu_;
};

}  // namespace octo::detail

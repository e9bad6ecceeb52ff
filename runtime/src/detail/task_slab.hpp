// Pooled storage for typed tasks, addressable by TaskId so that cancel(id) is O(1) and lock-free.
//
// A TaskId is (generation << 32 | slot). Each slot's state word packs (generation << 2 | state);
// cancel and take are single CASes on that word, so a recycled slot (new generation) can never be
// cancelled by a stale id.
//
// The free list is a stack of chains: a drainer returns its batch of finished nodes as one chain
// (one CAS), and a producer takes a whole chain (one CAS) into a thread_local magazine, then hands
// its nodes out one per enqueue with plain loads. Paid per node, that shared CAS (fought over by
// the producer and the drainers) was the producer's largest cost. A magazine holds nodes of one
// slab, at most one chain (kMaxChain); it gives them back when its thread exits or turns to
// another slab.
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
  // Free-list links, as slot + 1 (0 = none): the next node of this chain; on a chain's first
  // node, the first node of the next chain on the stack.
  std::atomic<std::uint32_t> next_free{0};
  std::atomic<std::uint32_t> next_chain{0};
  std::uint32_t slot = 0;
  // The node kPrefetchAhead places further along this chain (slot + 1, 0 = none): a hint only,
  // so that taking a node can start pulling in one that is needed a few tasks later.
  std::atomic<std::uint32_t> ahead{0};
  Task task;

  std::uint64_t generation() const noexcept { return word.load(std::memory_order_relaxed) >> 2; }
  TaskId id() const noexcept { return (generation() << 32) | slot; }
};

// Owned through a shared_ptr (create()): a thread's magazine can outlive the executor, and gives
// its nodes back only while the slab still exists.
class TaskSlab : public std::enable_shared_from_this<TaskSlab> {
  struct Private {};

 public:
  static constexpr std::uint32_t kChunkBits = 12;
  static constexpr std::uint32_t kChunk = 1u << kChunkBits;
  static constexpr std::uint32_t kMaxChunks = 1024;  // 4M live typed tasks
  static constexpr std::uint32_t kMaxChain = 64;     // longest chain release() / grow() push
  static constexpr std::uint32_t kPrefetchAhead = 4;

  static std::shared_ptr<TaskSlab> create() { return std::make_shared<TaskSlab>(Private{}); }

  explicit TaskSlab(Private) noexcept : id_(next_id_.fetch_add(1, std::memory_order_relaxed)) {}
  TaskSlab(const TaskSlab&) = delete;
  ~TaskSlab() {
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
  }

  // A free node in state kQueued, or nullptr when the slab is exhausted or memory ran out.
  TaskNode* acquire() noexcept {
    Magazine& m = magazine_;
    // The id, not the address: a new slab can be allocated where a destroyed one was.
    TaskNode* n = m.slab_id == id_ && m.next != nullptr ? m.next : refill(m);
    if (n == nullptr) return nullptr;
    const std::uint32_t next = n->next_free.load(std::memory_order_relaxed);
    m.next = next != 0 ? at(next - 1) : nullptr;
    // The chain's nodes were last written by a drainer on another core. One task is too short
    // for their lines to arrive, so pull in the node kPrefetchAhead places on; the next node is
    // fetched too, for the start of a chain.
    if (m.next != nullptr) prefetch_for_write(m.next);
    if (const std::uint32_t far = n->ahead.load(std::memory_order_relaxed); far != 0) {
      prefetch_for_write(at(far - 1));
    }
    const std::uint64_t gen = n->generation();
    // Relaxed: the node is published to drainers by the queue push (release) that follows.
    n->word.store((gen << 2) | TaskNode::kQueued, std::memory_order_relaxed);
    return n;
  }

  // Returns finished nodes (at most kMaxChain) to the pool under a new generation, as one chain
  // with one CAS.
  void release(TaskNode* const* nodes, std::size_t count) noexcept {
    if (count == 0) return;
    for (std::size_t i = 0; i < count; ++i) {
      TaskNode* n = nodes[i];
      std::uint64_t gen = (n->generation() + 1) & TaskNode::kGenMask;
      if (gen == 0) gen = 1;  // ids are never 0
      n->task.payload.clear();
      n->task.target_agents.reset();
      n->task.key.reset();
      n->task.unique.reset();
      n->word.store((gen << 2) | TaskNode::kFree, std::memory_order_relaxed);
      n->next_free.store(i + 1 < count ? nodes[i + 1]->slot + 1 : 0, std::memory_order_relaxed);
      n->ahead.store(i + kPrefetchAhead < count ? nodes[i + kPrefetchAhead]->slot + 1 : 0,
                     std::memory_order_relaxed);
    }
    push_chain(nodes[0]);
  }
  void release(TaskNode* n) noexcept { release(&n, 1); }

  // The node an id refers to if that slot exists (its generation may differ), else nullptr.
  TaskNode* find(TaskId id) const noexcept {
    const auto slot = static_cast<std::uint32_t>(id);
    if ((slot >> kChunkBits) >= kMaxChunks) return nullptr;
    TaskNode* chunk = chunks_[slot >> kChunkBits].load(std::memory_order_acquire);
    return chunk ? &chunk[slot & (kChunk - 1)] : nullptr;
  }

  // For tests, on a quiet slab: nodes on the shared free list (magazines not included), and
  // nodes in all.
  std::size_t free_count() const noexcept {
    std::size_t n = 0;
    for (auto c = static_cast<std::uint32_t>(head_.load(std::memory_order_acquire)); c != 0;
         c = at(c - 1)->next_chain.load(std::memory_order_relaxed)) {
      for (std::uint32_t k = c; k != 0; k = at(k - 1)->next_free.load(std::memory_order_relaxed))
        ++n;
    }
    return n;
  }
  std::size_t capacity() const noexcept {
    std::lock_guard lock(grow_mu_);
    return std::size_t{chunk_count_} * kChunk;
  }

 private:
  // head_ = tag << 32 | (first slot of the top chain + 1), 0 = empty. The tag changes on every
  // pop, so a pop that raced with pop-push of the same chain (ABA) fails its CAS. Nodes are never
  // freed while the slab lives, so reading a stale next_chain is harmless.
  TaskNode* pop_chain() noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      const auto top = static_cast<std::uint32_t>(head);
      if (top == 0) return nullptr;
      TaskNode* n = at(top - 1);
      const std::uint64_t next = n->next_chain.load(std::memory_order_relaxed);
      const std::uint64_t tag = (head >> 32) + 1;
      // Acquire on success: the chain's reset (release by push_chain) happens-before our reuse.
      if (head_.compare_exchange_weak(head, (tag << 32) | next, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        return n;
      }
    }
  }

  void push_chain(TaskNode* first) noexcept {
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      first->next_chain.store(static_cast<std::uint32_t>(head), std::memory_order_relaxed);
      // Release: publishes the reset nodes and their links to the popping thread.
      if (head_.compare_exchange_weak(head, (head & ~std::uint64_t{0xffffffff}) | (first->slot + 1),
                                      std::memory_order_release, std::memory_order_relaxed)) {
        return;
      }
    }
  }

  struct Magazine {
    std::uint64_t slab_id = 0;  // 0: none
    std::weak_ptr<TaskSlab> slab;
    TaskNode* next = nullptr;  // the rest of a popped chain, linked by next_free

    // The rest of the chain back to its slab if that still exists (else it went with it).
    void give_back() noexcept {
      if (auto s = slab.lock(); s && next != nullptr) s->push_chain(next);
      next = nullptr;
      slab_id = 0;
      slab.reset();
    }
    ~Magazine() { give_back(); }
  };

  TaskNode* refill(Magazine& m) noexcept {
    if (m.slab_id != id_) {
      m.give_back();
      m.slab = weak_from_this();
      m.slab_id = id_;
    }
    TaskNode* n = pop_chain();
    while (n == nullptr) {
      if (!grow()) return nullptr;
      n = pop_chain();  // may be empty again: other producers took the new chains first
    }
    return n;
  }

  static void prefetch_for_write(const TaskNode* n) noexcept {
    const char* p = reinterpret_cast<const char*>(n);
    for (std::size_t off = 0; off < sizeof(TaskNode); off += 64) __builtin_prefetch(p + off, 1);
  }

  TaskNode* at(std::uint32_t slot) const noexcept {
    return &chunks_[slot >> kChunkBits].load(std::memory_order_acquire)[slot & (kChunk - 1)];
  }

  // Adds a chunk to the free list, as chains of kMaxChain. False when the slab is at kMaxChunks or
  // memory ran out; true without adding one when the list is no longer empty (another thread grew
  // it meanwhile).
  bool grow() noexcept {
    std::lock_guard lock(grow_mu_);
    if (static_cast<std::uint32_t>(head_.load(std::memory_order_acquire)) != 0) return true;
    if (chunk_count_ == kMaxChunks) return false;
    TaskNode* chunk = new (std::nothrow) TaskNode[kChunk];
    if (!chunk) return false;
    const std::uint32_t base = chunk_count_ << kChunkBits;
    for (std::uint32_t i = 0; i < kChunk; ++i) {
      chunk[i].slot = base + i;
      const bool last_of_chain = (i + 1) % kMaxChain == 0 || i + 1 == kChunk;
      chunk[i].next_free.store(last_of_chain ? 0 : base + i + 2, std::memory_order_relaxed);
      const std::uint32_t far = i + kPrefetchAhead;
      const bool far_in_chain = far / kMaxChain == i / kMaxChain && far < kChunk;
      chunk[i].ahead.store(far_in_chain ? base + far + 1 : 0, std::memory_order_relaxed);
    }
    // Release: find()/at() on other threads see the initialised nodes.
    chunks_[chunk_count_++].store(chunk, std::memory_order_release);
    for (std::uint32_t i = 0; i < kChunk; i += kMaxChain) push_chain(&chunk[i]);
    return true;
  }

  static inline std::atomic<std::uint64_t> next_id_{1};
  static thread_local Magazine magazine_;

  const std::uint64_t id_;
  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<TaskNode*> chunks_[kMaxChunks]{};
  std::uint32_t chunk_count_ = 0;  // guarded by grow_mu_
  mutable std::mutex grow_mu_;
};

inline thread_local TaskSlab::Magazine TaskSlab::magazine_;

}  // namespace octo::detail

// halo/detail/cow_table.hpp — chunked copy-on-write tables behind SystemState's snapshots.
//
// A snapshot shares the writer's chunks and marks them frozen; the next write to a frozen chunk
// copies that chunk only (kChunk entries). Taking a snapshot is O(chunks), so analyzers read a
// consistent picture of a million subjects while writers keep going, paying one chunk copy per
// chunk they touch per snapshot. `frozen` is read and written only under the owner's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace halo::detail {

inline constexpr std::size_t kChunk = 1024;

template <class T>
struct Chunk {
  std::vector<T> items;
  bool frozen = false;
};

// Heterogeneous lookup so a std::string_view id finds a std::string key without allocating.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

}  // namespace halo::detail

namespace halo {

// An immutable, chunked sequence: what a Snapshot holds. Cheap to copy (shares chunks).
template <class T>
class Table {
 public:
  Table() = default;
  Table(std::vector<std::shared_ptr<const detail::Chunk<T>>> chunks, std::size_t size)
      : chunks_(std::move(chunks)), size_(size) {}

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const T& operator[](std::size_t i) const noexcept {
    return chunks_[i / detail::kChunk]->items[i % detail::kChunk];
  }
  std::size_t chunk_count() const noexcept { return chunks_.size(); }
  std::span<const T> chunk(std::size_t c) const noexcept {
    return {chunks_[c]->items.data(), chunks_[c]->items.size()};
  }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& c : chunks_)
      for (const T& t : c->items) f(t);
  }

 private:
  std::vector<std::shared_ptr<const detail::Chunk<T>>> chunks_;
  std::size_t size_ = 0;
};

namespace detail {

// The writer side of a Table, keyed by T::id. Not thread-safe: SystemState guards it.
template <class T>
class CowTable {
 public:
  // The entry with this id, or nullptr. The pointer is valid until the next call.
  T* find(std::string_view id) {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &mutable_at(it->second);
  }
  const T* find_const(std::string_view id) const {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &at(it->second);
  }
  // The slot of the entry with this id: its index in every Table frozen since it was added.
  std::optional<std::uint32_t> slot_of(std::string_view id) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  // The entry with this id, appended (default-constructed with `id` set) when absent.
  T& upsert(std::string_view id, bool* inserted = nullptr) {
    if (T* t = find(id)) {
      if (inserted) *inserted = false;
      return *t;
    }
    if (size_ % kChunk == 0) {
      chunks_.push_back(std::make_shared<Chunk<T>>());
      chunks_.back()->items.reserve(kChunk);
    }
    const auto slot = static_cast<std::uint32_t>(size_++);
    index_.emplace(std::string(id), slot);
    T& t = mutable_at(slot);
    t.id = std::string(id);
    if (inserted) *inserted = true;
    return t;
  }
  std::size_t size() const noexcept { return size_; }

  // Freezes every chunk and returns a view sharing them.
  Table<T> freeze() {
    std::vector<std::shared_ptr<const Chunk<T>>> shared;
    shared.reserve(chunks_.size());
    for (auto& c : chunks_) {
      c->frozen = true;
      shared.push_back(c);
    }
    return Table<T>(std::move(shared), size_);
  }

 private:
  const T& at(std::uint32_t slot) const { return chunks_[slot / kChunk]->items[slot % kChunk]; }
  T& mutable_at(std::uint32_t slot) {
    auto& c = chunks_[slot / kChunk];
    if (c->frozen) {
      auto copy = std::make_shared<Chunk<T>>();
      copy->items.reserve(kChunk);
      copy->items = c->items;
      c = std::move(copy);
    }
    auto& items = c->items;
    if (slot % kChunk == items.size()) items.emplace_back();
    return items[slot % kChunk];
  }

  std::vector<std::shared_ptr<Chunk<T>>> chunks_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> index_;
  std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace halo

// detail/entry_codec.hpp (private to octohalo::redis) — tasks as Redis stream entries, and
// stream entry ids as durable keys. No Redis here: the codec is tested (and fuzzed) on its own.
//
// An entry's fields, as XADD writes them: type, payload, priority (0-3), max_attempts,
// created_ms, deadline_ms and run_at_ms when set, key when set, unique, unique_ttl_ms and
// unique_scope (0 kQueued, 1 kQueuedOrRunning) when Task::unique is set, then one `target` per
// target agent. Decoding validates every value where it enters
// the process: an entry from another writer (or a bad one) is refused with a reason naming the
// field and the value, never turned into a task with an out-of-range priority.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "octo/task.hpp"

namespace octo::detail {

// Stream entry ids are "<ms>-<seq>"; the durable key packs them as ms << 20 | seq (one Redis does
// not produce a million entries in one millisecond), so an ack needs no id lookup table.
inline constexpr int kSeqBits = 20;
// 0 when `id` is not "<ms>-<seq>" with ms > 0 and seq < 2^20 (or ms too large to shift).
std::uint64_t key_of(std::string_view id) noexcept;
std::string id_of(std::uint64_t key);

// Field names and values, alternating.
std::vector<std::string> encode_task(const Task& task);

struct DecodedTask {
  std::optional<Task> task;  // set when the entry is well formed (durable_key from the id)
  std::string error;         // why not, otherwise
};
// `fields` alternate name and value. Unknown names are ignored (a newer writer may add some);
// a repeated name takes its last value, except `target`, which adds one each.
DecodedTask decode_task(std::span<const std::string_view> fields, std::string_view id);

}  // namespace octo::detail

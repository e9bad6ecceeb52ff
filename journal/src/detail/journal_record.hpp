// One journal record as the producers append it and the writer commits it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace octo::detail {

enum class Kind : std::uint8_t { kAccepted, kRetried, kSucceeded, kCancelled, kDeadLettered };

struct Record {
  Kind kind = Kind::kSucceeded;
  std::uint8_t priority = 0;
  std::uint32_t count = 0;  // max_attempts for accepts, attempts otherwise
  std::uint64_t key = 0;
  std::int64_t ms = 0;  // created (accepts) or finished (dead letters)
  // Accepts: Task::deadline and Task::run_at in ms since the epoch (0 = none; never negative).
  std::int64_t deadline_ms = 0, run_at_ms = 0;
  std::uint64_t seq = 0;  // the append's sequence number (durable once committed)
  std::string arm, type, payload, targets, reason, concurrency_key;
};

inline std::int64_t to_ms(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A deadline or due time as stored: none (0) for the epoch and before it. A deadline before the
// epoch never reaches the journal (it has expired at enqueue); a due time before it is "at once".
inline std::int64_t to_stored_ms(std::chrono::system_clock::time_point t) noexcept {
  const std::int64_t ms = to_ms(t);
  if (ms > 0) return ms;
  return t.time_since_epoch().count() > 0 ? 1 : 0;  // within the epoch's first millisecond
}

}  // namespace octo::detail

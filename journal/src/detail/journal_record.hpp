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
  std::int64_t ms = 0;    // created (accepts) or finished (dead letters)
  std::uint64_t seq = 0;  // the append's sequence number (durable once committed)
  std::string arm, type, payload, targets, reason;
};

inline std::int64_t to_ms(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace octo::detail

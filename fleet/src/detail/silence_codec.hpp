// A fleet silence as the `silences` hash stores it: one value of eight fields joined by 0x1f,
// "type, id, task, from_ms, until_ms, reason, author, instance" (the sync script reads the fifth
// to drop ended ones). Values come from Redis, written by any instance or by hand: decoding
// refuses anything that is not eight fields with times of 0 to kMaxSilenceMs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "halo/fleet.hpp"

namespace halo::detail {

inline constexpr char kSilenceSep = '\x1f';
// Milliseconds since the epoch that system_clock (nanoseconds, 64 bits) holds: up to 2262.
inline constexpr std::int64_t kMaxSilenceMs = 9'000'000'000'000;

// Empty when `s` can be stored; otherwise why not (a field holding 0x1f, a time outside range).
std::string silence_unencodable(const FleetSilence& s);
std::string encode_silence(const FleetSilence& s);
// False (and `out` unspecified) for a value that is not a silence.
bool decode_silence(std::string_view id, std::string_view value, FleetSilence& out);

}  // namespace halo::detail

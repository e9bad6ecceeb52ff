// Valid UTF-8 out of arbitrary bytes, for everything HALO writes as text (JSON, Prometheus
// labels): endpoint paths, agent ids and reasons come from the service and from outside, and one
// invalid byte must not make a whole response invalid (or make the JSON library throw).
//
//   std::string out;
//   halo::append_valid_utf8(out, "/api/caf\xe9");   // "/api/caf\xef\xbf\xbd" (U+FFFD)
//   halo::is_valid_utf8(out);                        // true
//
// Well-formed sequences (Unicode 15, table 3-7: no overlong forms, no surrogates, nothing above
// U+10FFFF) are copied; every byte that does not start one is replaced by U+FFFD. Cost: one pass;
// ASCII runs are copied as they are. Thread-safe (no state).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace halo {

inline constexpr std::string_view kReplacementCharacter = "\xef\xbf\xbd";  // U+FFFD

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 when `s` does not start
// with one (or is empty).
std::size_t utf8_sequence_length(std::string_view s) noexcept;
bool is_valid_utf8(std::string_view s) noexcept;
void append_valid_utf8(std::string& out, std::string_view s);
inline std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_valid_utf8(out, s);
  return out;
}

}  // namespace halo

// Matching generated text (ids, timestamps) against a shape instead of a fixed value.
#pragma once

#include <cstddef>
#include <string>

namespace octo_test {

// `shape`: 'd' a decimal digit, 'h' a lowercase hex digit, anything else itself.
inline bool has_shape(const std::string& s, const std::string& shape) {
  if (s.size() != shape.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = shape[i] == 'd'   ? (c >= '0' && c <= '9')
                    : shape[i] == 'h' ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                                      : c == shape[i];
    if (!ok) return false;
  }
  return true;
}

}  // namespace octo_test

// Splitting a fuzzer's input into the pieces a harness needs: NUL-separated strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace octohalo_fuzz {

inline std::vector<std::string_view> split_nul(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string_view> out;
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  for (std::size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || all[i] == '\0') {
      out.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

}  // namespace octohalo_fuzz

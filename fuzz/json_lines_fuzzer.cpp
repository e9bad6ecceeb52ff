// HistoryStore's reader over arbitrary file contents: never throws or crashes, keeps at most
// `keep` records, every one a JSON object, and counts no more bad lines than there are lines.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "halo/http/history_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t keep = size == 0 ? 1 : 1 + data[0] % 8;
  std::uint64_t corrupt = 0;
  const auto records = halo::detail::read_json_lines(text, keep, corrupt);
  std::size_t lines = 1;
  for (const char c : text) lines += c == '\n';
  if (records.size() > keep || corrupt > lines) std::abort();
  for (const auto& r : records)
    if (!r.is_object()) std::abort();
  // Kept records print back as one line each that reads back the same.
  for (const auto& r : records) {
    std::uint64_t again = 0;
    const auto round = halo::detail::read_json_lines(
        r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 1, again);
    if (round.size() != 1 || again != 0) std::abort();
  }
  return 0;
}

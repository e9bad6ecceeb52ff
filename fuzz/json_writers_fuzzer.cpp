// The JSON HALO writes, from arbitrary strings: an audit entry's JSON line and the HTTP
// server's serialisation are valid UTF-8 and valid JSON whatever bytes the fields hold, and
// the sanitiser keeps valid input as it is.
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "fuzz_input.hpp"
#include "halo/audit.hpp"
#include "halo/utf8.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parts = octohalo_fuzz::split_nul(data, size);
  parts.resize(std::max<std::size_t>(parts.size(), 5));
  halo::AuditEntry e{.kind = halo::AuditKind::kDispatched,
                     .cycle_id = std::string(parts[0]),
                     .weak_point = std::string(parts[1]),
                     .task_type = std::string(parts[2]),
                     .subject = std::string(parts[3]),
                     .reason = std::string(parts[4])};
  const std::string line = halo::to_json_line(e);
  if (!halo::is_valid_utf8(line) || !nlohmann::json::accept(line)) std::abort();

  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::string clean = halo::to_valid_utf8(all);
  if (!halo::is_valid_utf8(clean)) std::abort();
  if (halo::is_valid_utf8(all) && clean != all) std::abort();
  const nlohmann::json j = {{"error", std::string(all)}};
  const std::string dumped = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!halo::is_valid_utf8(dumped) || !nlohmann::json::accept(dumped)) std::abort();
  return 0;
}

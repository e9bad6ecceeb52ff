// Route compilation and lookup over arbitrary patterns and types, against a plain reference:
// exact names first (the last rule for a name wins), then the longest prefix (the first of equal
// ones).
#include <cstdlib>
#include <optional>
#include <string>

#include "detail/compiled_routes.hpp"
#include "fuzz_input.hpp"

namespace {

std::optional<octo::ArmId> reference(const octo::RoutingTable& table, std::string_view type,
                                     const std::vector<std::string>& arms) {
  auto arm_of = [&](const std::string& name) {
    for (std::size_t i = 0; i < arms.size(); ++i)
      if (arms[i] == name) return static_cast<octo::ArmId>(i);
    std::abort();
  };
  std::optional<octo::ArmId> exact;
  for (const auto& r : table.rules())
    if (!r.prefix && r.pattern == type) exact = arm_of(r.arm);
  if (exact) return exact;
  std::optional<octo::ArmId> best;
  std::size_t best_len = 0;
  for (const auto& r : table.rules()) {
    if (r.prefix && type.starts_with(r.pattern) && (!best || r.pattern.size() > best_len)) {
      best = arm_of(r.arm);
      best_len = r.pattern.size();
    }
  }
  return best;
}

}  // namespace

// Input: NUL-separated pieces; the first byte of each piece says what it is (rule or type).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> arms = {"a", "b", "c"};
  octo::RoutingTable table;
  std::vector<std::string_view> types;
  for (const std::string_view piece : octohalo_fuzz::split_nul(data, size)) {
    if (piece.size() < 2) continue;
    const std::string arm = arms[static_cast<unsigned char>(piece[0]) % arms.size()];
    const std::string_view text = piece.substr(1);
    switch (static_cast<unsigned char>(piece[0]) % 4) {
      case 0:
        table.add_exact(std::string(text), arm);
        break;
      case 1:
        table.add_prefix(std::string(text), arm);
        break;
      default:
        types.push_back(text);
    }
  }
  const auto compiled = octo::detail::compile_routes(table, [&](std::string_view name) {
    for (std::size_t i = 0; i < arms.size(); ++i)
      if (arms[i] == name) return std::optional<octo::ArmId>(static_cast<octo::ArmId>(i));
    return std::optional<octo::ArmId>();
  });
  for (const std::string_view type : types)
    if (compiled->find(type) != reference(table, type, arms)) std::abort();
  return 0;
}

// An installed routing table with arm names resolved to ids (what the executor routes with),
// and the compilation of a RoutingTable into it (routing.cpp). Immutable once published; find()
// is the enqueue hot path: one hash lookup for exact names, then the prefixes longest first, each
// compared a word at a time, with no allocation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "octo/arm.hpp"
#include "octo/routing.hpp"

namespace octo::detail {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// The first min(8, size) bytes of s as a word, zero-padded: prefix tests compare one word, not a
// memcmp call each (that call had ~10 % of all samples on the typed enqueue benchmark).
inline std::uint64_t head_word(std::string_view s) noexcept {
  unsigned char b[8] = {};
  if (s.size() >= 8) {
    std::memcpy(b, s.data(), 8);
  } else {
    for (std::size_t i = 0; i < s.size(); ++i) b[i] = static_cast<unsigned char>(s[i]);
  }
  std::uint64_t w;
  std::memcpy(&w, b, 8);
  return w;
}

struct PrefixRoute {
  PrefixRoute(std::string p, ArmId a) : text(std::move(p)), arm(a) {
    head = head_word(text);
    unsigned char m[8] = {};
    std::memset(m, 0xff, std::min<std::size_t>(text.size(), 8));
    std::memcpy(&mask, m, 8);
  }
  bool matches(std::string_view type, std::uint64_t type_head) const noexcept {
    if (type.size() < text.size() || (type_head & mask) != head) return false;
    return text.size() <= 8 || std::memcmp(type.data() + 8, text.data() + 8, text.size() - 8) == 0;
  }
  std::string text;
  ArmId arm;
  std::uint64_t head = 0;  // head_word(text)
  std::uint64_t mask = 0;  // the bytes of head that text fills
};

// An installed routing table with arm names resolved to ids. Immutable once published.
struct CompiledRoutes {
  std::unordered_map<std::string, ArmId, StringHash, std::equal_to<>> exact;
  std::vector<PrefixRoute> prefixes;  // longest first

  [[gnu::always_inline]] std::optional<ArmId> find(std::string_view type) const noexcept {
    // An empty map still hashes the key: skip it (tables of prefixes only are common).
    if (!exact.empty()) {
      if (auto it = exact.find(type); it != exact.end()) return it->second;
    }
    const std::uint64_t type_head = head_word(type);
    for (const PrefixRoute& p : prefixes) {
      if (p.matches(type, type_head)) return p.arm;
    }
    return std::nullopt;
  }
};

// Resolves every rule's arm with `find_arm`; throws std::invalid_argument naming a route whose
// arm is unknown.
std::unique_ptr<CompiledRoutes> compile_routes(
    const RoutingTable& table,
    const std::function<std::optional<ArmId>(std::string_view)>& find_arm);

}  // namespace octo::detail

#include "detail/entry_codec.hpp"

#include <charconv>
#include <chrono>
#include <limits>

namespace octo::detail {

namespace {

template <class T>
std::optional<T> to_number(std::string_view s) noexcept {
  T v{};
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// A value as it may appear in an error message: at most 64 bytes, printable ASCII (other bytes
// as \xNN), so a reason stays short and valid UTF-8 whatever the entry held.
std::string shown(std::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out.append("\\x").push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (v.size() > 64) out.append("...");
  return out;
}

DecodedTask refuse(std::string why) { return DecodedTask{std::nullopt, std::move(why)}; }

std::int64_t ms_of(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A time field's value, or nullopt (the caller refuses the entry naming `name`).
std::optional<std::chrono::system_clock::time_point> time_field(std::string_view value) noexcept {
  const auto ms = to_number<std::int64_t>(value);
  return ms ? time_from_ms(*ms) : std::nullopt;
}

DecodedTask refuse_time(std::string_view name, std::string_view value) {
  return refuse("malformed stream entry: " + std::string(name) + " '" + shown(value) +
                "' is not milliseconds from 0 to " + std::to_string(kMaxTimeMs));
}

}  // namespace

std::uint64_t key_of(std::string_view id) noexcept {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos) return 0;
  const auto ms = to_number<std::uint64_t>(id.substr(0, dash));
  const auto seq = to_number<std::uint64_t>(id.substr(dash + 1));
  if (!ms || !seq || *ms == 0 || *seq >= (std::uint64_t{1} << kSeqBits) ||
      *ms > (std::numeric_limits<std::uint64_t>::max() >> kSeqBits))
    return 0;
  return (*ms << kSeqBits) | *seq;
}

std::string id_of(std::uint64_t key) {
  return std::to_string(key >> kSeqBits) + "-" + std::to_string(key & ((1u << kSeqBits) - 1));
}

std::vector<std::string> encode_task(const Task& t) {
  std::vector<std::string> f = {"type",         t.type,
                                "payload",      t.payload,
                                "priority",     std::to_string(static_cast<int>(t.priority)),
                                "max_attempts", std::to_string(t.max_attempts),
                                "created_ms",   std::to_string(ms_of(t.created))};
  // Only when set, and never before the epoch (what time_from_ms() accepts back).
  if (const auto ms = ms_of(t.deadline); ms > 0) {
    f.emplace_back("deadline_ms");
    f.push_back(std::to_string(ms));
  }
  // Rounded up: a due time is "not before", and a whole millisecond late is within its promise.
  if (const auto ms =
          std::chrono::ceil<std::chrono::milliseconds>(t.run_at.time_since_epoch()).count();
      ms > 0) {
    f.emplace_back("run_at_ms");
    f.push_back(std::to_string(ms));
  }
  if (!t.key.empty()) {
    f.emplace_back("key");
    f.push_back(*t.key);
  }
  if (!t.unique.empty()) {
    f.emplace_back("unique");
    f.push_back(t.unique->key);
    f.emplace_back("unique_ttl_ms");
    f.push_back(std::to_string(t.unique->ttl.count()));
    f.emplace_back("unique_scope");
    f.push_back(std::to_string(static_cast<int>(t.unique->scope)));
  }
  for (const auto& target : *t.target_agents) {
    f.emplace_back("target");
    f.push_back(target);
  }
  return f;
}

DecodedTask decode_task(std::span<const std::string_view> fields, std::string_view id) {
  if (fields.size() % 2 != 0)
    return refuse("malformed stream entry: " + std::to_string(fields.size()) +
                  " field names and values (not pairs)");
  Task t;
  for (std::size_t i = 0; i < fields.size(); i += 2) {
    const std::string_view name = fields[i], value = fields[i + 1];
    if (name == "type") {
      t.type = value;
    } else if (name == "payload") {
      t.payload = value;
    } else if (name == "priority") {
      const auto p = to_number<int>(value);
      if (!p || *p < 0 || *p >= kPriorityCount)
        return refuse("malformed stream entry: priority '" + shown(value) + "' is not 0-3");
      t.priority = static_cast<Priority>(*p);
    } else if (name == "max_attempts") {
      const auto m = to_number<std::uint32_t>(value);
      if (!m)
        return refuse("malformed stream entry: max_attempts '" + shown(value) + "' is not a count");
      t.max_attempts = *m;
    } else if (name == "created_ms" || name == "deadline_ms" || name == "run_at_ms") {
      const auto when = time_field(value);
      if (!when) return refuse_time(name, value);
      (name == "created_ms" ? t.created : name == "deadline_ms" ? t.deadline : t.run_at) = *when;
    } else if (name == "key") {
      t.key = std::string(value);
    } else if (name == "target") {
      t.target_agents.edit().emplace_back(value);
    } else if (name == "unique") {
      if (value.empty()) return refuse("malformed stream entry: empty unique key");
      t.unique.edit().key = value;
    } else if (name == "unique_ttl_ms") {
      const auto ms = to_number<std::int64_t>(value);
      if (!ms || *ms <= 0)
        return refuse("malformed stream entry: unique_ttl_ms '" + shown(value) +
                      "' is not a positive count of milliseconds");
      t.unique.edit().ttl = std::chrono::milliseconds(*ms);
    } else if (name == "unique_scope") {
      if (value != "0" && value != "1")
        return refuse("malformed stream entry: unique_scope '" + shown(value) + "' is not 0-1");
      t.unique.edit().scope = value == "0" ? UniqueScope::kQueued : UniqueScope::kQueuedOrRunning;
    }
  }
  if (t.type.empty()) return refuse("malformed stream entry (no type field)");
  // The three travel together: a claim without its key or TTL would be refused by any executor.
  if (!t.unique.empty() && (t.unique->key.empty() || t.unique->ttl.count() <= 0))
    return refuse("malformed stream entry: unique_ttl_ms without unique, or unique without it");
  t.durable_key = key_of(id);
  return DecodedTask{std::move(t), {}};
}

}  // namespace octo::detail

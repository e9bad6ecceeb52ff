#include "detail/silence_codec.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

namespace halo::detail {

namespace {

std::int64_t ms_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Digits only, 0 to kMaxSilenceMs.
bool parse_ms(std::string_view text, std::int64_t& out) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && out <= kMaxSilenceMs;
}

}  // namespace

std::string silence_unencodable(const FleetSilence& s) {
  for (std::string_view f :
       {std::string_view(s.match.subject_type), std::string_view(s.match.subject_id),
        std::string_view(s.match.task_type), std::string_view(s.reason), std::string_view(s.author),
        std::string_view(s.instance)})
    if (f.find(kSilenceSep) != std::string_view::npos)
      return "a fleet silence's fields may not hold the byte 0x1f";
  for (const auto t : {s.from, s.until}) {
    const std::int64_t ms = ms_since_epoch(t);
    if (ms < 0 || ms > kMaxSilenceMs)
      return "a fleet silence's times must lie between 1970 and 2255 (" + std::to_string(ms) +
             " ms)";
  }
  return {};
}

std::string encode_silence(const FleetSilence& s) {
  std::string out;
  for (std::string_view part :
       {std::string_view(s.match.subject_type), std::string_view(s.match.subject_id),
        std::string_view(s.match.task_type)}) {
    out.append(part);
    out += kSilenceSep;
  }
  out += std::to_string(ms_since_epoch(s.from));
  out += kSilenceSep;
  out += std::to_string(ms_since_epoch(s.until));
  out += kSilenceSep;
  out += s.reason;
  out += kSilenceSep;
  out += s.author;
  out += kSilenceSep;
  out += s.instance;
  return out;
}

bool decode_silence(std::string_view id, std::string_view v, FleetSilence& s) {
  std::vector<std::string_view> f;
  while (f.size() <= 8) {
    const auto at = v.find(kSilenceSep);
    f.push_back(v.substr(0, at));
    if (at == std::string_view::npos) break;
    v.remove_prefix(at + 1);
  }
  std::int64_t from = 0, until = 0;
  if (f.size() != 8 || !parse_ms(f[3], from) || !parse_ms(f[4], until)) return false;
  s.id.assign(id);
  s.match = {std::string(f[0]), std::string(f[1]), std::string(f[2])};
  s.from = std::chrono::system_clock::time_point(std::chrono::milliseconds(from));
  s.until = std::chrono::system_clock::time_point(std::chrono::milliseconds(until));
  s.reason.assign(f[5]);
  s.author.assign(f[6]);
  s.instance.assign(f[7]);
  return true;
}

}  // namespace halo::detail

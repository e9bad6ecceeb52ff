// The fleet silence decoder over arbitrary hash values (any instance, or a person with
// redis-cli, writes them): it refuses, or returns a silence whose times system_clock holds and
// which encodes back to the same value and decodes to the same silence.
#include <cstdlib>
#include <string_view>

#include "detail/silence_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  halo::FleetSilence s;
  if (!halo::detail::decode_silence("7", value, s)) return 0;
  if (s.id != "7") std::abort();
  if (!halo::detail::silence_unencodable(s).empty()) std::abort();  // in range, no separator
  const std::string again = halo::detail::encode_silence(s);
  halo::FleetSilence t;
  if (!halo::detail::decode_silence("7", again, t)) std::abort();
  if (t.match.subject_type != s.match.subject_type || t.match.subject_id != s.match.subject_id ||
      t.match.task_type != s.match.task_type || t.from != s.from || t.until != s.until ||
      t.reason != s.reason || t.author != s.author || t.instance != s.instance)
    std::abort();
  // Leading zeros aside, the value was already in its encoded form.
  if (again.size() > value.size()) std::abort();
  return 0;
}

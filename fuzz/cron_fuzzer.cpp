// Cron expressions from arbitrary bytes: parse() either refuses with std::invalid_argument naming
// the expression, or gives a schedule whose next firing times are whole minutes, strictly later,
// matching, and with no matching minute skipped in the first hour after each.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "octo/cron.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto c = octo::CronSchedule::parse(text);
    // A start from the input's first bytes, within 1970-2200.
    std::uint64_t seed = 0;
    for (std::size_t i = 0; i < size && i < 8; ++i) seed = seed * 131 + data[i];
    system_clock::time_point t =
        sys_days(year(1970) / 1 / 1) + minutes(seed % (230ull * 366 * 1440));
    for (int k = 0; k < 4; ++k) {
      const auto next = c.next_after(t);
      if (next == system_clock::time_point::max()) break;
      if (next <= t || next != floor<minutes>(next) || !c.matches(next)) std::abort();
      for (auto m = floor<minutes>(t) + minutes(1); m < next && m < t + hours(1); m += minutes(1))
        if (c.matches(m)) std::abort();
      t = next;
    }
  } catch (const std::invalid_argument& e) {
    if (std::string_view(e.what()).find("octo::CronSchedule: '") == std::string_view::npos)
      std::abort();
  }
  return 0;
}

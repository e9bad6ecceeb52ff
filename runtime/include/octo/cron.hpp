// octo/cron.hpp — a cron expression (the standard five fields, in UTC) and its next firing time.
//
//   auto nightly = octo::CronSchedule::parse("30 2 * * MON-FRI");   // 02:30 UTC on weekdays
//   auto next = nightly.next_after(std::chrono::system_clock::now());
//
// Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), day of week
// (0-7 or SUN-SAT; 0 and 7 are Sunday). Each is `*`, a value, a range `a-b`, a step `*/n`, `a-b/n`
// or `a/n` (a to the field's end), or a comma-separated list of those; names are case-blind.
// Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly. As in Vixie cron,
// when both day fields are restricted a day matches if either does ("0 0 1 * MON": the 1st and
// every Monday). Times are UTC: no time zones, so no daylight-saving gaps or repeats.
//
// Contract: parse() throws std::invalid_argument naming the expression, the field and the part
// it could not read; an expression that can never fire (day 30 in February only, say) is refused
// too. A parsed schedule is immutable, cheap to copy (a few words) and safe to share between
// threads. next_after() skips whole months, days and hours that cannot match: a few dozen field
// checks for most schedules, a few thousand for the sparsest (a leap day that must be a Sunday).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace octo {

class CronSchedule {
 public:
  // Throws std::invalid_argument (see above).
  static CronSchedule parse(std::string_view expression);

  // The first whole minute strictly after `t` that matches; time_point::max() when that is past
  // the clock's range (2262-04-11). A parsed schedule always fires again.
  std::chrono::system_clock::time_point next_after(std::chrono::system_clock::time_point t) const;

  // Whether the minute holding `t` matches.
  bool matches(std::chrono::system_clock::time_point t) const noexcept;

  // The expression as given (trimmed).
  const std::string& expression() const noexcept { return expression_; }

 private:
  CronSchedule() = default;
  // The first matching minute in [from, limit], looking at most 400 years ahead.
  std::optional<std::chrono::sys_time<std::chrono::minutes>> search(
      std::chrono::sys_time<std::chrono::minutes> from,
      std::chrono::sys_time<std::chrono::minutes> limit) const noexcept;

  std::string expression_;
  std::uint64_t minutes_ = 0;  // bit m: minute m
  std::uint32_t hours_ = 0;    // bit h
  std::uint32_t days_ = 0;     // bit d (1-31)
  std::uint16_t months_ = 0;   // bit m (1-12)
  std::uint8_t weekdays_ = 0;  // bit w (0 = Sunday .. 6)
  // The day field began with `*` (as in Vixie cron: then a day must match both fields, and only
  // when both are restricted does either one do).
  bool days_star_ = true;
  bool weekdays_star_ = true;
};

}  // namespace octo

#include "octo/cron.hpp"

#include <array>
#include <bit>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <vector>

namespace octo {

namespace {

using Minutes = std::chrono::sys_time<std::chrono::minutes>;

struct Field {
  const char* name;
  int min, max;
  const char* const* names;  // three-letter names for min..., or nullptr
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",  "JUL",
                                       "AUG", "SEP", "OCT", "NOV", "DEC", nullptr};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", nullptr};

constexpr Field kFields[5] = {
    {"minute", 0, 59, nullptr},       {"hour", 0, 23, nullptr},
    {"day-of-month", 1, 31, nullptr}, {"month", 1, 12, kMonthNames},
    {"day-of-week", 0, 7, kDayNames},
};

// The Gregorian calendar (leap days and weekdays) repeats every 400 years: a schedule that does
// not fire within them never does.
constexpr int kSearchYears = 400;

[[noreturn]] void fail(std::string_view expr, std::string_view field, std::string_view part,
                       const std::string& why) {
  std::string m = "octo::CronSchedule: '" + std::string(expr) + "': ";
  if (!field.empty()) m += std::string(field) + " field '" + std::string(part) + "': ";
  throw std::invalid_argument(m + why);
}

struct Reader {
  std::string_view expr;
  const Field& f;
  std::string_view text;  // the whole field, for messages

  // A number or (where the field has them) a name; `min` of a name list is its first value.
  int value(std::string_view v) const {
    if (v.empty()) fail(expr, f.name, text, "a value is missing");
    if (std::isdigit(static_cast<unsigned char>(v[0]))) {
      if (v.size() > 2) fail(expr, f.name, text, "'" + std::string(v) + "' is out of range");
      int n = 0;
      for (char c : v) {
        if (!std::isdigit(static_cast<unsigned char>(c)))
          fail(expr, f.name, text, "'" + std::string(v) + "' is not a number");
        n = n * 10 + (c - '0');
      }
      if (n < f.min || n > f.max) {
        fail(expr, f.name, text,
             std::to_string(n) + " is outside " + std::to_string(f.min) + "-" +
                 std::to_string(f.max));
      }
      return n;
    }
    if (f.names != nullptr && v.size() == 3) {
      for (int i = 0; f.names[i] != nullptr; ++i) {
        bool same = true;
        for (int k = 0; k < 3; ++k)
          same = same && std::toupper(static_cast<unsigned char>(v[static_cast<std::size_t>(k)])) ==
                             f.names[i][k];
        if (same) return f.min + i;
      }
    }
    fail(expr, f.name, text, "'" + std::string(v) + "' is not a value");
  }

  // The field's values as bits (bit v: value v), and whether it began with '*'.
  std::uint64_t bits(bool& star) const {
    if (text.empty()) fail(expr, f.name, text, "empty");
    star = text[0] == '*';
    std::uint64_t out = 0;
    std::size_t begin = 0;
    for (;;) {
      const std::size_t comma = text.find(',', begin);
      const std::string_view part = text.substr(
          begin, comma == std::string_view::npos ? std::string_view::npos : comma - begin);
      out |= part_bits(part);
      if (comma == std::string_view::npos) break;
      begin = comma + 1;
    }
    return out;
  }

  std::uint64_t part_bits(std::string_view part) const {
    if (part.empty()) fail(expr, f.name, text, "an empty list item");
    std::string_view range = part;
    int step = 1;
    if (const std::size_t slash = part.find('/'); slash != std::string_view::npos) {
      range = part.substr(0, slash);
      const std::string_view s = part.substr(slash + 1);
      if (s.empty() || s.size() > 2 || s.find_first_not_of("0123456789") != std::string_view::npos)
        fail(expr, f.name, text, "step '" + std::string(s) + "' is not a number from 1");
      step = std::stoi(std::string(s));
      if (step == 0) fail(expr, f.name, text, "a step of 0");
    }
    int lo = 0, hi = 0;
    if (range == "*") {
      lo = f.min;
      hi = f.max;
    } else if (const std::size_t dash = range.find('-'); dash != std::string_view::npos) {
      lo = value(range.substr(0, dash));
      hi = value(range.substr(dash + 1));
      if (lo > hi) {
        fail(expr, f.name, text,
             "range " + std::string(range) + " runs backwards (" + std::to_string(lo) + " > " +
                 std::to_string(hi) + ")");
      }
    } else {
      lo = value(range);
      hi = part.find('/') != std::string_view::npos ? f.max : lo;  // "a/n": a to the end
    }
    std::uint64_t out = 0;
    for (int v = lo; v <= hi; v += step) out |= std::uint64_t{1} << v;
    return out;
  }
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

CronSchedule CronSchedule::parse(std::string_view expression) {
  const std::string_view expr = trim(expression);
  std::string_view text = expr;
  if (!expr.empty() && expr[0] == '@') {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros{{
        {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"},
        {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"},
        {"@daily", "0 0 * * *"},
        {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    }};
    text = {};
    for (const auto& [name, fields] : kMacros)
      if (expr == name) text = fields;
    if (text.empty()) {
      fail(expr, "", "",
           "unknown macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
           "@hourly)");
    }
  }
  std::vector<std::string_view> fields;
  for (std::size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5) {
    fail(expr, "", "",
         "expected 5 fields (minute hour day-of-month month day-of-week), got " +
             std::to_string(fields.size()));
  }
  CronSchedule c;
  c.expression_ = std::string(expr);
  bool star = false;
  c.minutes_ = Reader{expr, kFields[0], fields[0]}.bits(star);
  c.hours_ = static_cast<std::uint32_t>(Reader{expr, kFields[1], fields[1]}.bits(star));
  c.days_ = static_cast<std::uint32_t>(Reader{expr, kFields[2], fields[2]}.bits(c.days_star_));
  c.months_ = static_cast<std::uint16_t>(Reader{expr, kFields[3], fields[3]}.bits(star));
  std::uint64_t dow = Reader{expr, kFields[4], fields[4]}.bits(c.weekdays_star_);
  if (dow & (std::uint64_t{1} << 7)) dow = (dow & 0x7f) | 1;  // 7 is Sunday too
  c.weekdays_ = static_cast<std::uint8_t>(dow);
  // From 2000-01-01 (a leap year) the search covers every combination of leap day and weekday.
  const Minutes from = std::chrono::sys_days(std::chrono::year(2000) / 1 / 1);
  if (!c.search(from, Minutes::max())) {
    fail(expr, "", "", "never fires (no month has such a day)");
  }
  return c;
}

bool CronSchedule::matches(std::chrono::system_clock::time_point t) const noexcept {
  using namespace std::chrono;
  const auto m = floor<minutes>(t);
  const auto d = floor<days>(m);
  const year_month_day ymd(d);
  const hh_mm_ss hms(m - d);
  const unsigned month = static_cast<unsigned>(ymd.month());
  const unsigned day = static_cast<unsigned>(ymd.day());
  const unsigned wd = weekday(d).c_encoding();
  const bool dom = (days_ >> day) & 1u;
  const bool dow = (weekdays_ >> wd) & 1u;
  const bool day_ok = (days_star_ || weekdays_star_) ? (dom && dow) : (dom || dow);
  return ((months_ >> month) & 1u) && day_ok && ((hours_ >> hms.hours().count()) & 1u) &&
         ((minutes_ >> hms.minutes().count()) & 1u);
}

std::optional<std::chrono::sys_time<std::chrono::minutes>> CronSchedule::search(
    std::chrono::sys_time<std::chrono::minutes> tp,
    std::chrono::sys_time<std::chrono::minutes> limit) const noexcept {
  using namespace std::chrono;
  const int last_year = static_cast<int>(year_month_day(floor<days>(tp)).year()) + kSearchYears;
  while (tp <= limit) {
    const sys_days d = floor<days>(tp);
    const year_month_day ymd(d);
    if (static_cast<int>(ymd.year()) > last_year) return std::nullopt;
    if (!((months_ >> static_cast<unsigned>(ymd.month())) & 1u)) {
      const year_month next = ymd.year() / ymd.month() + months(1);  // calendar months
      tp = sys_days(next / 1);
      continue;
    }
    const bool dom = (days_ >> static_cast<unsigned>(ymd.day())) & 1u;
    const bool dow = (weekdays_ >> weekday(d).c_encoding()) & 1u;
    if (!((days_star_ || weekdays_star_) ? (dom && dow) : (dom || dow))) {
      tp = d + days(1);
      continue;
    }
    const hh_mm_ss hms(tp - d);
    const int h = static_cast<int>(hms.hours().count());
    const std::uint32_t later_hours = hours_ >> h;
    if (later_hours == 0) {
      tp = d + days(1);
      continue;
    }
    if ((later_hours & 1u) == 0) {
      tp = d + hours(h + std::countr_zero(later_hours));
      continue;
    }
    const int m = static_cast<int>(hms.minutes().count());
    const std::uint64_t later_minutes = minutes_ >> m;
    if (later_minutes == 0) {
      tp = d + hours(h + 1);
      continue;
    }
    tp += minutes(std::countr_zero(later_minutes));
    if (tp > limit) return std::nullopt;
    return tp;
  }
  return std::nullopt;
}

std::chrono::system_clock::time_point CronSchedule::next_after(
    std::chrono::system_clock::time_point t) const {
  using namespace std::chrono;
  // The last minute system_clock (nanoseconds in 64 bits) can hold; a parsed schedule always
  // fires again, so "none" means "not before the clock's end".
  const Minutes end = floor<minutes>(system_clock::time_point::max());
  const Minutes from = floor<minutes>(t);
  if (from >= end) return system_clock::time_point::max();
  const auto next = search(from + minutes(1), end);
  return next ? time_point_cast<system_clock::duration>(*next) : system_clock::time_point::max();
}

}  // namespace octo

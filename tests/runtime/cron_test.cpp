// octo::CronSchedule: the five standard fields in UTC, the macros, Vixie cron's day rule, next
// firing times across month, year and leap-day boundaries, and errors that name what is wrong.
#include "octo/cron.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono;
using octo::CronSchedule;

// A UTC time from its calendar fields.
system_clock::time_point at(int y, unsigned mo, unsigned d, int h = 0, int mi = 0) {
  return sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi);
}

TEST(Cron, NextFiringTimesOfCommonSchedules) {
  const auto t = at(2026, 12, 2, 6, 40);  // a Wednesday
  EXPECT_EQ(CronSchedule::parse("* * * * *").next_after(t), at(2026, 12, 2, 6, 41));
  EXPECT_EQ(CronSchedule::parse("*/15 * * * *").next_after(t), at(2026, 12, 2, 6, 45));
  EXPECT_EQ(CronSchedule::parse("30 2 * * *").next_after(t), at(2026, 12, 3, 2, 30));
  EXPECT_EQ(CronSchedule::parse("0 9-17/4 * * *").next_after(t), at(2026, 12, 2, 9, 0));
  EXPECT_EQ(CronSchedule::parse("0 0 1 * *").next_after(t), at(2027, 1, 1));
  EXPECT_EQ(CronSchedule::parse("0 0 1 1 *").next_after(t), at(2027, 1, 1));
  EXPECT_EQ(CronSchedule::parse("0 12 * * MON-FRI").next_after(at(2026, 12, 4, 13)),
            at(2026, 12, 7, 12))
      << "Friday afternoon: next Monday";
  EXPECT_EQ(CronSchedule::parse("0 0 * * 7").next_after(t), at(2026, 12, 6)) << "7 is Sunday";
  EXPECT_EQ(CronSchedule::parse("0 0 * * sun").next_after(t), at(2026, 12, 6));
  EXPECT_EQ(CronSchedule::parse("5,10,50 * * * *").next_after(t), at(2026, 12, 2, 6, 50));
  EXPECT_EQ(CronSchedule::parse("10/20 * * * *").next_after(t), at(2026, 12, 2, 6, 50))
      << "a/n: from a to the end of the field";
  EXPECT_EQ(CronSchedule::parse("0 0 31 * *").next_after(t), at(2026, 12, 31));
  EXPECT_EQ(CronSchedule::parse("0 0 31 * *").next_after(at(2026, 12, 31)), at(2027, 1, 31));
  EXPECT_EQ(CronSchedule::parse("0 0 31 * *").next_after(at(2027, 1, 31)), at(2027, 3, 31))
      << "February has no 31st";
  EXPECT_EQ(CronSchedule::parse("0 0 29 2 *").next_after(t), at(2028, 2, 29)) << "leap day";
  EXPECT_EQ(CronSchedule::parse("0 0 1 jan,JUL *").next_after(t), at(2027, 1, 1));
}

TEST(Cron, NextIsStrictlyAfterAndOnAWholeMinute) {
  const auto every = CronSchedule::parse("* * * * *");
  EXPECT_EQ(every.next_after(at(2026, 1, 1, 0, 0)), at(2026, 1, 1, 0, 1));
  EXPECT_EQ(every.next_after(at(2026, 1, 1) + seconds(59) + milliseconds(999)),
            at(2026, 1, 1, 0, 1));
  EXPECT_EQ(every.next_after(at(2026, 12, 31, 23, 59)), at(2027, 1, 1));
  EXPECT_EQ(every.next_after(system_clock::time_point::max()), system_clock::time_point::max())
      << "past the clock's range";
  EXPECT_EQ(CronSchedule::parse("0 0 1 1 *").next_after(at(2262, 2, 1)),
            system_clock::time_point::max())
      << "2263 is past the clock's end (2262-04-11)";
}

// The sparsest kind: a leap day that must also be a Sunday (the day-of-week field starts with '*',
// so both must match). 2100 is no leap year, so after 2088 the next is 40 years away.
TEST(Cron, ALeapDayOnASundayIsFoundAcrossACenturysMissingLeapDay) {
  const auto c = CronSchedule::parse("0 0 29 2 */7");
  EXPECT_EQ(c.next_after(at(2026, 12, 2)), at(2032, 2, 29));
  EXPECT_EQ(c.next_after(at(2089, 1, 1)), at(2128, 2, 29));
}

TEST(Cron, BothDayFieldsRestrictedMatchEitherAsInVixieCron) {
  // The 1st of the month or any Monday.
  const auto c = CronSchedule::parse("0 0 1 * MON");
  EXPECT_EQ(c.next_after(at(2026, 12, 2)), at(2026, 12, 7));  // Monday the 7th
  EXPECT_EQ(c.next_after(at(2026, 12, 28)), at(2027, 1, 1));  // Friday the 1st
  // A day field starting with '*' restricts nothing: both must match.
  const auto odd_mondays = CronSchedule::parse("0 0 */2 * MON");
  EXPECT_EQ(odd_mondays.next_after(at(2026, 12, 2)), at(2026, 12, 7));  // the 7th: odd, Monday
  EXPECT_EQ(odd_mondays.next_after(at(2026, 12, 7)), at(2026, 12, 21));
}

TEST(Cron, Macros) {
  const auto t = at(2026, 12, 2, 6, 40);
  EXPECT_EQ(CronSchedule::parse("@hourly").next_after(t), at(2026, 12, 2, 7));
  EXPECT_EQ(CronSchedule::parse("@daily").next_after(t), at(2026, 12, 3));
  EXPECT_EQ(CronSchedule::parse("@midnight").next_after(t), at(2026, 12, 3));
  EXPECT_EQ(CronSchedule::parse("@weekly").next_after(t), at(2026, 12, 6));
  EXPECT_EQ(CronSchedule::parse("@monthly").next_after(t), at(2027, 1, 1));
  EXPECT_EQ(CronSchedule::parse("@yearly").next_after(t), at(2027, 1, 1));
  EXPECT_EQ(CronSchedule::parse("  @annually ").expression(), "@annually");
}

// Against a minute-by-minute reference: next_after() is the first matching minute after t.
TEST(Cron, NextAfterAgreesWithAMinuteByMinuteSearch) {
  const char* exprs[] = {"*/7 3-5 * * *", "0 0 13 * FRI", "15 10 * 2,5,8,11 *", "0 */6 1-7 * 1",
                         "0 0 * * 6,0"};
  std::mt19937_64 rng(7);
  for (const char* e : exprs) {
    const auto c = CronSchedule::parse(e);
    for (int k = 0; k < 6; ++k) {
      const auto t = at(2026, 1, 1) + minutes(rng() % (2 * 366 * 24 * 60));
      const auto next = c.next_after(t);
      ASSERT_GT(next, t) << e;
      ASSERT_TRUE(c.matches(next)) << e;
      // No match in between (these schedules fire at least every 100 days).
      auto m = floor<minutes>(t) + minutes(1);
      int steps = 0;
      while (m < next && steps < 100 * 24 * 60) {
        ASSERT_FALSE(c.matches(m)) << e << " skipped a firing";
        m += minutes(1);
        ++steps;
      }
    }
  }
}

TEST(Cron, BadExpressionsAreRefusedNamingTheExpressionAndThePart) {
  auto expect_error = [](const std::string& expr, const std::string& needle) {
    try {
      CronSchedule::parse(expr);
      ADD_FAILURE() << "no error for '" << expr << "'";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("'" + expr + "'"), std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << expr << ": " << what;
    }
  };
  expect_error("", "expected 5 fields");
  expect_error("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4");
  expect_error("* * * * * *", "got 6");
  expect_error("60 * * * *", "minute field '60': 60 is outside 0-59");
  expect_error("* 24 * * *", "hour field '24'");
  expect_error("* * 0 * *", "day-of-month field '0': 0 is outside 1-31");
  expect_error("* * * 13 *", "month field '13'");
  expect_error("* * * * 8", "day-of-week field '8'");
  expect_error("5-1 * * * *", "range 5-1 runs backwards");
  expect_error("*/0 * * * *", "a step of 0");
  expect_error("*/x * * * *", "step 'x'");
  expect_error("1,,2 * * * *", "an empty list item");
  expect_error("* * * FOO *", "'FOO' is not a value");
  expect_error("* * * * MONDAY", "'MONDAY' is not a value");
  expect_error("1- * * * *", "a value is missing");
  expect_error("999 * * * *", "'999' is out of range");
  expect_error("* * * * JAN", "'JAN' is not a value");
  expect_error("@every5m", "unknown macro");
  expect_error("0 0 30 2 *", "never fires");
  expect_error("0 0 31 4,6,9,11 *", "never fires");
}

}  // namespace

#include "octo/schedule.hpp"

#include <stdexcept>
#include <string>

namespace octo {

std::optional<CronSchedule> validate_schedule(const ScheduleSpec& spec, std::string_view who) {
  if (spec.name.empty()) throw std::invalid_argument(std::string(who) + ": name must not be empty");
  const std::string at = std::string(who) + " '" + spec.name + "': ";
  if (spec.every.has_value() == !spec.cron.empty())
    throw std::invalid_argument(at + "give exactly one of `every` and `cron`");
  // At most about a century: the next firing is computed in system_clock time (nanoseconds,
  // good until 2262), and a longer period would overflow it.
  constexpr std::chrono::milliseconds kMaxEvery = std::chrono::hours(24 * 365 * 100);
  if (spec.every && (spec.every->count() < 1 || *spec.every > kMaxEvery)) {
    throw std::invalid_argument(at + "every must be in [1 ms, 100 years] (got " +
                                std::to_string(spec.every->count()) + " ms)");
  }
  if (spec.jitter.count() < 0 || spec.jitter > std::chrono::hours(1) ||
      (spec.every && spec.jitter >= *spec.every)) {
    throw std::invalid_argument(at + "jitter must be in [0, " +
                                (spec.every ? "every" : std::string("1 h")) + ") (got " +
                                std::to_string(spec.jitter.count()) + " ms)");
  }
  if (static_cast<unsigned>(spec.overlap) > static_cast<unsigned>(Overlap::kAllow)) {
    throw std::invalid_argument(at + "overlap " +
                                std::to_string(static_cast<unsigned>(spec.overlap)) +
                                " is not kSkip, kBufferOne or kAllow");
  }
  if (spec.task.type.empty()) throw std::invalid_argument(at + "task type '' matches no route");
  if (spec.cron.empty()) return std::nullopt;
  try {
    return CronSchedule::parse(spec.cron);
  } catch (const std::invalid_argument& bad) {
    throw std::invalid_argument(at + bad.what());
  }
}

std::chrono::system_clock::time_point next_period_after(std::chrono::system_clock::time_point t,
                                                        std::chrono::milliseconds every) {
  using Wall = std::chrono::system_clock;
  const auto period = std::chrono::duration_cast<Wall::duration>(every);
  const auto since = t.time_since_epoch();
  auto periods = since / period;
  if (since.count() < 0 && since % period != Wall::duration::zero()) --periods;
  return Wall::time_point((periods + 1) * period);
}

}  // namespace octo

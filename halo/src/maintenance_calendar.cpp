#include "detail/maintenance_calendar.hpp"

#include "octo/schedule.hpp"

#include <stdexcept>

namespace halo::detail {

namespace {

constexpr const char* kWho = "halo::Engine::add_maintenance_window";
// Starts looked at in one call before jumping ahead: a window of every second left alone for a
// day is 86,400 starts, not a loop of 86,400 steps.
constexpr std::uint64_t kMaxStepsPerLook = 10'000;

}  // namespace

MaintenanceCalendar::Wall::time_point MaintenanceCalendar::start_after(const Entry& e,
                                                                       Wall::time_point t) {
  return e.cron ? e.cron->next_after(t) : octo::next_period_after(t, *e.spec.every);
}

void MaintenanceCalendar::add(MaintenanceWindow window, Wall::time_point now) {
  if (window.name.empty()) throw std::invalid_argument(std::string(kWho) + ": name is empty");
  const std::string at = std::string(kWho) + " '" + window.name + "': ";
  if (windows_.count(window.name) != 0) throw std::invalid_argument(at + "the name is taken");
  if (windows_.size() >= kMaxWindows) {
    throw std::invalid_argument(at + std::to_string(kMaxWindows) +
                                " windows already; remove some first");
  }
  if (window.every.has_value() == !window.cron.empty())
    throw std::invalid_argument(at + "give exactly one of `every` and `cron`");
  constexpr std::chrono::milliseconds kMaxEvery = std::chrono::hours(24 * 365 * 100);
  if (window.every && (*window.every < std::chrono::seconds(1) || *window.every > kMaxEvery)) {
    throw std::invalid_argument(at + "every must be in [1 s, 100 years] (got " +
                                std::to_string(window.every->count()) + " ms)");
  }
  if (window.duration.count() <= 0 || window.duration > kMaxDuration ||
      (window.every && window.duration > *window.every)) {
    throw std::invalid_argument(at + "duration must be in (0, " +
                                (window.every ? "every" : std::string("7 days")) + "] (got " +
                                std::to_string(window.duration.count()) + " ms)");
  }
  Entry e;
  if (!window.cron.empty()) {
    try {
      e.cron = octo::CronSchedule::parse(window.cron);
    } catch (const std::invalid_argument& bad) {
      throw std::invalid_argument(at + bad.what());
    }
  }
  if (window.reason.empty()) window.reason = "maintenance window '" + window.name + "'";
  if (window.author.empty()) window.author = "maintenance window '" + window.name + "'";
  e.st.name = window.name;
  e.st.cron = window.cron;
  e.st.every = window.every.value_or(std::chrono::milliseconds(0));
  e.st.duration = window.duration;
  e.spec = std::move(window);
  // The first start after now - duration: at or before now, it is under way.
  e.next = start_after(e, now - e.spec.duration);
  e.st.next_start = e.next;
  const std::string name = e.spec.name;
  windows_.emplace(name, std::move(e));
}

std::optional<std::uint64_t> MaintenanceCalendar::remove(std::string_view name) {
  const auto it = windows_.find(name);
  if (it == windows_.end()) return std::nullopt;
  const std::uint64_t last = it->second.st.silence_id;
  windows_.erase(it);
  return last;
}

std::vector<MaintenanceCalendar::Opening> MaintenanceCalendar::due(Wall::time_point now) {
  std::vector<Opening> out;
  for (auto& [name, e] : windows_) {
    if (e.next > now) continue;
    std::optional<Wall::time_point> start;
    auto step = [&, &e = e] {
      if (e.next + e.spec.duration > now) {
        start = e.next;  // under way; a later one under way supersedes it
      } else {
        ++e.st.missed;
      }
      e.next = start_after(e, e.next);
    };
    for (std::uint64_t steps = 0; e.next <= now && steps < kMaxStepsPerLook; ++steps) step();
    if (e.next <= now) {
      // Left alone for long: the other passed starts count as one miss, and only those that can
      // still be under way are walked (at most 10,080: one a minute for 7 days; an `every`
      // window has at most one, its duration being at most its period).
      ++e.st.missed;
      e.next = std::max(e.next, start_after(e, now - e.spec.duration));
      while (e.next <= now) step();
    }
    e.st.next_start = e.next;
    if (start) out.push_back({&e.spec, *start, *start + e.spec.duration, e.st.silence_id});
  }
  return out;
}

void MaintenanceCalendar::opened(const Opening& opening, std::uint64_t silence_id) {
  const auto it = windows_.find(opening.window->name);
  if (it == windows_.end()) return;
  MaintenanceWindowStatus& st = it->second.st;
  if (silence_id == 0) {
    ++st.refused;
    return;
  }
  ++st.opened;
  st.last_start = opening.start;
  st.silence_id = silence_id;
}

std::vector<MaintenanceWindowStatus> MaintenanceCalendar::status() const {
  std::vector<MaintenanceWindowStatus> out;
  out.reserve(windows_.size());
  for (const auto& [name, e] : windows_) out.push_back(e.st);
  return out;
}

}  // namespace halo::detail

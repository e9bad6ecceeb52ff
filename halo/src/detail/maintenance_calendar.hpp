// The engine's maintenance windows (halo/maintenance_window.hpp): when each starts next, and
// which are due. No lock and no silences here: the safety rails hold it under their decisions
// lock and open the silences it hands them.
//
//   MaintenanceCalendar cal;
//   cal.add(window, wall_now);                 // validated; throws std::invalid_argument
//   for (const auto& o : cal.due(wall_now))    // the starts to open now
//     cal.opened(o, open_silence(o));          // its id, or 0 when refused
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "halo/maintenance_window.hpp"
#include "octo/cron.hpp"

namespace halo::detail {

class MaintenanceCalendar {
 public:
  using Wall = std::chrono::system_clock;
  // A start to open: a silence for `window` until `end`, ending `previous` (the window's last
  // silence, 0 for none) if it is still on. `window` stays valid until the next add or remove.
  struct Opening {
    const MaintenanceWindow* window = nullptr;
    Wall::time_point start, end;
    std::uint64_t previous = 0;
  };
  // Bounded: windows are configuration, not data.
  static constexpr std::size_t kMaxWindows = 1'000;
  static constexpr std::chrono::hours kMaxDuration{24 * 7};

  // Throws std::invalid_argument naming the window and the field: an empty or taken name, not
  // exactly one of every and cron, a bad cron expression, every outside [1 s, 100 years], a
  // duration outside (0, 7 days], or kMaxWindows windows already. The first start planned is
  // one under way at `now`, if any.
  void add(MaintenanceWindow window, Wall::time_point now);
  // The window's last silence (0: none), or nullopt for an unknown name.
  std::optional<std::uint64_t> remove(std::string_view name);
  // For each window with a start due by `now`: the latest start still under way (if any), with
  // the ones that passed entirely counted as missed and the next start planned.
  std::vector<Opening> due(Wall::time_point now);
  // What came of an opening from due(): the new silence's id, or 0 when it was refused.
  void opened(const Opening& opening, std::uint64_t silence_id);
  bool empty() const noexcept { return windows_.empty(); }
  std::size_t size() const noexcept { return windows_.size(); }
  // `active` left false: the caller knows which silences are still on.
  std::vector<MaintenanceWindowStatus> status() const;

 private:
  struct Entry {
    MaintenanceWindow spec;
    std::optional<octo::CronSchedule> cron;
    Wall::time_point next;
    MaintenanceWindowStatus st;
  };
  // The first start strictly after `t`.
  static Wall::time_point start_after(const Entry& e, Wall::time_point t);

  std::map<std::string, Entry, std::less<>> windows_;
};

}  // namespace halo::detail

// The engine's maintenance windows (halo/maintenance_window.hpp): when each starts next, and
// which are due. No lock and no silences here: the safety rails hold it under their decisions
// lock and open the silences it hands them.
//
//   MaintenanceCalendar cal;
//   cal.add(window, wall_now);                       // validated; throws std::invalid_argument
//   cal.open_due(wall_now, [&](const MaintenanceWindow& w, Wall::time_point start,
//                              Wall::time_point end, std::uint64_t previous) {
//     return open_silence(...);                      // its id, or 0 when refused
//   });
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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
  // Opens the silence of a start of `window` lasting until `end`, ending `previous` (the
  // window's last silence, 0 for none) if it is still on; returns the new silence's id, or 0.
  using Open = std::function<std::uint64_t(const MaintenanceWindow& window, Wall::time_point start,
                                           Wall::time_point end, std::uint64_t previous)>;
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
  // For each window with a start due by `now`: calls `open` once for the latest start still under
  // way, counts the ones that passed entirely as missed, and plans the next start.
  void open_due(Wall::time_point now, const Open& open);
  bool empty() const noexcept { return windows_.empty(); }
  std::size_t size() const noexcept { return windows_.size(); }
  // `active(silence id)`: whether that silence is still on.
  std::vector<MaintenanceWindowStatus> status(
      const std::function<bool(std::uint64_t)>& active) const;

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

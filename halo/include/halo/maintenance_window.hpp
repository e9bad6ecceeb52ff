// halo/maintenance_window.hpp — recurring silences: a schedule that opens a silence for a while
// at each of its starts (a nightly deploy, the database's weekly vacuum).
//
// Starts follow a cron expression in UTC (octo/cron.hpp) or a fixed period counted from the
// epoch (every 6 h: 00:00, 06:00, ... UTC), as octo schedules do. At each start the engine opens
// an ordinary silence (halo/silence.hpp: listed by silences(), audited, ended early by
// unsilence()) matching `match`, until the start plus `duration`. Windows are opened when the
// engine next looks, before it decides on any repair (each cycle, silences(), status()), so a
// window whose start passed while the engine was idle still covers the rest of its duration; a
// window that began and ended between two looks is counted `missed`. A window added while one of
// its starts is under way opens at once for what is left of it.
//
//   engine.add_maintenance_window({.name = "nightly-deploy", .cron = "0 2 * * *",
//                                  .duration = std::chrono::minutes(30),
//                                  .match = {.subject_type = "agent", .subject_id = "web-*"}});
//
// Times are read from SafetyConfig::wall_clock (the system clock unless given); the silence
// itself lives on the state's clock like every other.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "halo/silence.hpp"

namespace halo {

struct MaintenanceWindow {
  std::string name{};
  // Exactly one of the two: a period (1 s to 100 years) or a cron expression in UTC.
  std::optional<std::chrono::milliseconds> every{};
  std::string cron{};
  // How long each start silences: more than 0 and at most 7 days (and at most `every`). A cron
  // start while the window's last silence is still on replaces it with one to the new end: a
  // window holds one silence at a time.
  std::chrono::milliseconds duration{0};
  SilenceMatcher match{};
  // The silences' reason and author; empty = "maintenance window '<name>'".
  std::string reason{};
  std::string author{};
};

struct MaintenanceWindowStatus {
  std::string name;
  std::string cron;                    // empty for `every` windows
  std::chrono::milliseconds every{0};  // 0 for cron windows
  std::chrono::milliseconds duration{0};
  std::chrono::system_clock::time_point next_start{};  // the next start not yet opened
  std::chrono::system_clock::time_point last_start{};  // the last one opened (epoch: none yet)
  std::uint64_t opened = 0;                            // silences opened
  std::uint64_t missed = 0;      // starts whose whole window passed unseen (after a very long
                                 // time unseen, those count as one)
  std::uint64_t refused = 0;     // starts not opened: the engine's 10,000 silences were in use
  std::uint64_t silence_id = 0;  // the silence of the last start opened (0: none yet)
  bool active = false;           // that silence is still on
};

}  // namespace halo

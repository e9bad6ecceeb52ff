// halo/silence.hpp — silences: weak points that are detected and reported, never repaired.
//
// A silence matches a weak point when all three globs match (fnmatch(3) syntax: `*`, `?`,
// `[...]`; an empty glob matches everything): the subject's type and id, and the type of the
// repair task the strategies planned. It is active from `from` until `until` on the state's
// clock and ends by itself; Engine::unsilence() ends it early.
//
//   auto id = engine.silence({.match = {.subject_type = "endpoint", .subject_id = "/api/pay*"},
//                             .from = state.now(), .until = state.now() + 30min,
//                             .reason = "payments migration", .author = "ops@example"});
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace halo {

struct SilenceMatcher {
  std::string subject_type{};
  std::string subject_id{};
  std::string task_type{};
};

struct Silence {
  std::uint64_t id = 0;  // set by Engine::silence()
  SilenceMatcher match{};
  std::chrono::nanoseconds from{0};  // on the state's clock
  std::chrono::nanoseconds until{0};
  std::string reason{};
  std::string author{};
  // Held by the fleet (halo/fleet.hpp; Engine::silence() with a fleet configured): honoured by
  // every instance of the service and listed in each one's silences().
  bool fleet = false;
};

// True when `glob` (fnmatch syntax, empty = anything) matches `text`.
bool glob_match(std::string_view glob, std::string_view text);

}  // namespace halo

// halo/lifecycle.hpp — where a weak point is in its repair: the states and flags HALO reports.
//
// Every weak point has one state:
//   open -> repairing -> verifying -> healed       (a repair that worked)
//                    \-> open (next step)           (it failed, or failed its verification)
//   any -> escalated                                (over the repair budget, or flapping past
//                                                    the threshold: no automatic repair until
//                                                    Engine::clear() or auto_clear_after)
// and flags beside it: flapping (healed and broken again within flap_window), silenced (a
// silence matches: reported, never repaired), inhibited (a subject it depends on is unhealthy).
// A repair that reports success is trusted only once a cycle finds the subject healthy on
// evidence gathered after it finished (see SafetyConfig and docs/operations.md).
//
//   for (const auto& wp : cycle->weak_points)
//     if (wp.state == halo::WeakPointState::kEscalated) page(wp.id);
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace halo {

enum class WeakPointState : std::uint8_t { kOpen, kRepairing, kVerifying, kHealed, kEscalated };
inline constexpr std::size_t kWeakPointStates = 5;
std::string_view to_string(WeakPointState s) noexcept;

// Bits of WeakPoint::flags and WeakPointLife::flags.
enum WeakPointFlag : std::uint8_t {
  kFlapping = 1,
  kSilenced = 2,
  kInhibited = 4,
};
inline constexpr WeakPointFlag kWeakPointFlags[] = {kFlapping, kSilenced, kInhibited};
std::string_view to_string(WeakPointFlag f) noexcept;
// "flapping,silenced" ("" for none).
std::string flags_text(std::uint8_t flags);

// A subject by type and id, as dependencies name them.
struct SubjectRef {
  std::string type{};
  std::string id{};
};

// What the engine remembers about a subject it has repaired (or is watching because it
// escalated or flapped), as status() reports it.
struct WeakPointLife {
  std::string weak_point{};  // WeakPoint::id
  std::string subject_type{};
  std::string subject_id{};
  WeakPointState state = WeakPointState::kOpen;
  std::uint8_t flags = 0;
  std::uint32_t repairs = 0;  // dispatched within budget_window (ladder steps included)
  std::uint32_t step = 0;     // the ladder step the next repair takes (0 = the first)
  std::uint32_t flaps = 0;    // within flap_window
  std::chrono::system_clock::time_point since{};  // entered its state
  std::string reason{};                           // of the last transition
};

}  // namespace halo

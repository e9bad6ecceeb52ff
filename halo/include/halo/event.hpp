// halo/event.hpp — what the engine tells subscribers: cycles, weak points opening, turning
// critical, escalating and healing, repairs dispatched and finished, the breaker.
//
// Engine::subscribe() registers a handler; events are queued (bounded: past kEventQueue the
// newest are dropped and counted in EngineStatus::events_dropped) and delivered in order on the
// engine's event thread, never on a cycle's or the executor's thread: a slow handler delays
// only later events, never a cycle. Without subscribers nothing is built or queued. A handler
// that throws is counted (events_failed) and keeps its subscription. A handler may call the
// engine (status(), clear(), ...); one being called when it is unsubscribed finishes that call,
// so what a handler uses must outlive the engine, or be guarded (the notifiers and HistoryStore
// check a flag under a lock they clear before going away). The engine's destructor delivers
// what is queued.
//
//   engine.subscribe([](const halo::Event& e) {
//     if (e.kind == halo::EventKind::kEscalated) page(e.weak_point, e.reason);
//   });
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "halo/issue.hpp"
#include "halo/lifecycle.hpp"

namespace halo {

enum class EventKind : std::uint8_t {
  kEscalated,          // a weak point stopped being repaired automatically
  kHealed,             // verified healthy after a repair (or healthy again by itself)
  kBreakerOpened,      // automatic repair paused (reason says why)
  kBreakerClosed,      // resumed
  kCycleCompleted,     // a cycle finished (cycle_id; reason: trigger and counts)
  kWeakPointOpened,    // a weak point seen for the first time (severity: its own)
  kWeakPointCritical,  // a weak point reached kCritical (first seen so, or raised to it)
  kRepairDispatched,   // a repair task went to the executor (task_type, task_id)
  kRepairFinished,     // its outcome (reason: "succeeded", "failed: ...", "cancelled")
  kFleetUnavailable,   // the fleet (halo/fleet.hpp) cannot be reached: shared subjects are only
                       // reported (reason says why)
  kFleetRejoined,      // reached again
};
std::string_view to_string(EventKind k) noexcept;

struct Event {
  EventKind kind = EventKind::kHealed;
  std::chrono::system_clock::time_point when{};
  std::string weak_point{};  // empty for the breaker and cycles
  std::string subject_type{};
  std::string subject_id{};
  std::string reason{};
  std::string cycle_id{};         // the cycle that saw it (opened, critical, completed)
  Level severity = Level::kInfo;  // the weak point's, when one is named
  WeakPointState state = WeakPointState::kOpen;  // the weak point's after the event
  std::string task_type{};                       // repairs
  std::uint64_t task_id = 0;                     // repairs dispatched and finished
};

using EventHandler = std::function<void(const Event&)>;
inline constexpr std::size_t kEventQueue = 4096;

}  // namespace halo

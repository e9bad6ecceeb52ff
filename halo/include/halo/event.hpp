// halo/event.hpp — what the engine tells subscribers: escalations, heals, the breaker.
//
// Engine::subscribe() registers a handler; events are queued (bounded: past kEventQueue the
// newest are dropped and counted in EngineStatus::events_dropped) and delivered in order on the
// engine's event thread, never on a cycle's or the executor's thread: a slow handler delays
// only later events. A handler that throws is counted (events_failed) and keeps its
// subscription. A handler may call the engine (status(), clear(), ...); one being called when
// it is unsubscribed finishes that call. The engine's destructor delivers what is queued.
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

namespace halo {

enum class EventKind : std::uint8_t {
  kEscalated,      // a weak point stopped being repaired automatically
  kHealed,         // verified healthy after a repair (or healthy again by itself)
  kBreakerOpened,  // automatic repair paused (reason says why)
  kBreakerClosed,  // resumed
};
std::string_view to_string(EventKind k) noexcept;

struct Event {
  EventKind kind = EventKind::kHealed;
  std::chrono::system_clock::time_point when{};
  std::string weak_point{};  // empty for the breaker
  std::string subject_type{};
  std::string subject_id{};
  std::string reason{};
};

using EventHandler = std::function<void(const Event&)>;
inline constexpr std::size_t kEventQueue = 4096;

}  // namespace halo

// halo/triggers.hpp — the five ways a HALO cycle gets started.
//
// The service reports traffic with record_request() / record_error() (a few nanoseconds, no
// shared cache line: each is a WindowCounter record). A ticker evaluates the triggers every few
// milliseconds, off the hot path:
//   time          every `time_interval` (default 5 min);
//   volume        requests in the window >= `request_threshold` (default 150);
//   error rate    errors / requests in the window >= `error_rate_threshold` (default 0.25), only
//                 with at least `error_min_requests` requests (default 20); re-armed only after
//                 the rate falls below `error_rate_clear` (default half the threshold);
//   deploy        notify_deploy() requests a cycle at once, and a verification cycle after
//                 `deploy_verify_after` when that is non-zero;
//   event         trigger_from_event(type, severity) for configured types at or above a minimum
//                 severity (default: the original's four types, severity error or critical).
// Each trigger has a cooldown; a firing inside it is counted as suppressed: every refused deploy
// or event, and a volume or error-rate condition once per cooldown however many ticks it holds.
// Every firing calls the cycle-request callback with the trigger's name, a context and a mode.
//
//   halo::Signals signals(octo::Ticker::shared());          // or halo::default_signals()
//   auto loop = halo::register_loop({}, [&](const halo::CycleRequest& r) { engine.request(r); });
//   halo::record_request();  if (failed) halo::record_error();
//   loop.stop();                                             // or let it go out of scope
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "octo/ticker.hpp"
#include "octo/window_counter.hpp"

namespace halo {

// Analysis depth of a cycle: light = agent health, endpoint health, environment consistency.
enum class Mode : std::uint8_t { kLight, kFull };
std::string_view to_string(Mode m) noexcept;

enum class TriggerKind : std::uint8_t { kTime, kRequestVolume, kErrorRate, kDeploy, kEvent };
inline constexpr int kTriggerKinds = 5;
// "time", "request-volume", "error-rate", "deploy", "event".
std::string_view to_string(TriggerKind k) noexcept;

// Event severities, ordered. Parsing accepts exactly these names (and "warn" for warning).
enum class Severity : std::uint8_t { kInfo, kWarning, kError, kCritical };
// Throws std::invalid_argument naming the text and the accepted names.
Severity parse_severity(std::string_view text);
std::string_view to_string(Severity s) noexcept;

struct CycleRequest {
  TriggerKind kind;
  std::string trigger;  // to_string(kind), or "deploy-verify"
  std::map<std::string, std::string> context;
  Mode mode = Mode::kFull;
};
using CycleCallback = std::function<void(const CycleRequest&)>;

class Signals;
namespace detail {
void record_default_slow(std::uint32_t slot) noexcept;
}  // namespace detail

// The request and error counters the triggers watch. Signals are cheap to record into from any
// thread and must outlive every loop registered on them.
class Signals {
 public:
  explicit Signals(octo::Ticker& ticker, std::chrono::nanoseconds window = std::chrono::seconds(10),
                   std::uint32_t buckets = 100);

  // Counted only while a loop is registered on these signals (a cheap no-op otherwise).
  void record_request(std::uint64_t n = 1) noexcept {
    if (active_.load(std::memory_order_relaxed) != 0) requests_.record(n);
  }
  void record_error(std::uint64_t n = 1) noexcept {
    if (active_.load(std::memory_order_relaxed) != 0) errors_.record(n);
  }

  const octo::WindowCounter& requests() const noexcept { return requests_; }
  const octo::WindowCounter& errors() const noexcept { return errors_; }
  octo::Ticker& ticker() const noexcept { return ticker_; }
  bool active() const noexcept { return active_.load(std::memory_order_relaxed) != 0; }

 private:
  friend class Triggers;
  friend Signals& default_signals();
  friend void detail::record_default_slow(std::uint32_t) noexcept;
  struct Pinned {};
  Signals(octo::Ticker& ticker, Pinned);
  void activate(bool on) noexcept;
  octo::Ticker& ticker_;
  // Read on every record; written only when loops register or stop.
  alignas(64) std::atomic<std::uint32_t> active_{0};
  octo::WindowCounter requests_;
  octo::WindowCounter errors_;
};

// The process-wide signals behind the free functions below (shared ticker, 10 s window).
Signals& default_signals();

namespace detail {
// The default request and error counters hold the runtime's two pinned thread slots, so the
// free functions reach this thread's bucket word at a fixed TLS address: no counter lookup.
inline constexpr std::uint32_t kRequestSlot = 0;
inline constexpr std::uint32_t kErrorSlot = 1;
// The epoch the free functions compare against: the shared ticker's while a loop is registered
// on the default signals, otherwise a constant ~0 that sends every call to the slow path (which
// then does nothing). One load decides both "active?" and "same bucket?".
extern constinit std::atomic<const std::atomic<std::uint64_t>*> default_epoch;

inline void record_default(std::uint32_t slot) noexcept {
  // Acquire pairs with the release that publishes the ticker's epoch word.
  const std::uint64_t epoch =
      default_epoch.load(std::memory_order_acquire)->load(std::memory_order_relaxed);
  if (!octo::WindowCounter::record_pinned(slot, epoch)) [[unlikely]]
    record_default_slow(slot);
}
}  // namespace detail

// Count into the default signals while a loop is registered on them; a no-op otherwise.
inline void record_request() noexcept { detail::record_default(detail::kRequestSlot); }
inline void record_error() noexcept { detail::record_default(detail::kErrorSlot); }
inline void record_request(Signals& s) noexcept { s.record_request(); }
inline void record_error(Signals& s) noexcept { s.record_error(); }

struct TriggerConfig {
  std::chrono::nanoseconds time_interval = std::chrono::minutes(5);
  std::uint64_t request_threshold = 150;
  double error_rate_threshold = 0.25;
  // Negative means half of error_rate_threshold.
  double error_rate_clear = -1.0;
  std::uint64_t error_min_requests = 20;
  // Zero: no verification cycle after a deploy.
  std::chrono::nanoseconds deploy_verify_after{0};
  // Event type -> minimum severity that fires.
  std::map<std::string, Severity, std::less<>> events = {
      {"squad.task.failed", Severity::kError},
      {"api.endpoint.failed", Severity::kError},
      {"graft.install.failed", Severity::kError},
      {"halo.weakpoint.critical", Severity::kError}};
  // Per trigger, indexed by TriggerKind.
  std::chrono::nanoseconds cooldown[kTriggerKinds] = {
      std::chrono::seconds(0), std::chrono::seconds(30), std::chrono::seconds(30),
      std::chrono::seconds(5), std::chrono::seconds(5)};
  // Mode of the cycles each trigger requests, indexed by TriggerKind.
  Mode mode[kTriggerKinds] = {Mode::kFull, Mode::kLight, Mode::kFull, Mode::kFull, Mode::kFull};
  // Evaluate volume, error rate, time and pending verifications every this many ticks.
  std::uint32_t evaluate_every_ticks = 1;
  // The request-volume and error-rate window: the last this much of the signals' counters
  // (rounded up to their buckets), at most their whole window (the default signals keep 10 s
  // in 100 ms buckets). 0: the whole window. Shorter reacts sooner (a 2 s window sees 60 %
  // errors 2 s after they begin, not 4 s); recording is unchanged (only the evaluation reads less).
  std::chrono::nanoseconds window{0};
};

struct TriggerStatus {
  TriggerKind kind;
  std::uint64_t fired = 0;
  // Firings held back by the cooldown: each refused deploy or event; a volume or error-rate
  // condition counts once per cooldown (not once per tick it holds).
  std::uint64_t suppressed = 0;
  std::optional<std::chrono::nanoseconds> last_fired;  // ticker clock time
  std::chrono::nanoseconds cooldown{0};                // as configured
};

struct TriggersStatus {
  TriggerStatus triggers[kTriggerKinds];
  std::chrono::nanoseconds now{0};     // ticker clock time of this status (for last_fired)
  std::chrono::nanoseconds window{0};  // what window_requests and window_errors cover
  std::uint64_t request_threshold = 0;
  double error_rate_threshold = 0.0;
  std::uint64_t window_requests = 0;
  std::uint64_t window_errors = 0;
  double error_rate = 0.0;
  bool error_rate_armed = true;
  bool running = false;
};

enum class EventOutcome : std::uint8_t {
  kFired,
  kUnknownType,
  kBelowSeverity,
  kCooldown,
  kStopped
};
std::string_view to_string(EventOutcome e) noexcept;

// The five triggers bound to one Signals and one callback. Thread-safe.
class Triggers {
 public:
  // Throws std::invalid_argument on a bad configuration (names the field and value).
  Triggers(Signals& signals, TriggerConfig config, CycleCallback on_cycle);
  ~Triggers();
  Triggers(const Triggers&) = delete;
  Triggers& operator=(const Triggers&) = delete;

  // Stops all five; harmless to call twice. No callback runs after it returns.
  void stop();

  // Deploy trigger; `metadata` goes into the cycle's context.
  void notify_deploy(std::map<std::string, std::string> metadata = {});
  // Clock time of the last notify_deploy(), if any.
  std::optional<std::chrono::nanoseconds> last_deploy() const;
  // Event trigger. Throws std::invalid_argument on an unknown severity.
  EventOutcome trigger_from_event(std::string_view type, std::string_view severity);

  // Runs one evaluation now (the ticker does this by itself; tests with a manual clock call it).
  void evaluate();

  TriggersStatus status() const;

 private:
  // Under mu_: counts the firing (or the suppression); true when the request should be sent.
  // `level`: the condition is re-evaluated every tick (volume, error rate), so a refusal counts
  // once until the trigger fires again.
  bool admit(TriggerKind kind, std::chrono::nanoseconds now, bool bypass_cooldown = false,
             bool level = false);
  // Without mu_: sends the admitted requests unless the loop stopped meanwhile.
  void send(std::vector<CycleRequest>& requests);

  Signals& signals_;
  const TriggerConfig config_;
  const double clear_level_;
  CycleCallback on_cycle_;
  const std::chrono::nanoseconds window_;  // config_.window, or the signals' whole window
  std::mutex callback_mu_;                 // held while on_cycle_ runs, so stop() can wait for it
  std::atomic<bool> stopped_{false};
  mutable std::mutex mu_;  // everything below
  bool running_ = true;
  bool error_armed_ = true;
  std::chrono::nanoseconds next_time_fire_{0};
  std::optional<std::chrono::nanoseconds> last_deploy_;
  std::optional<std::chrono::nanoseconds> verify_due_;
  std::map<std::string, std::string> verify_context_;
  TriggerStatus status_[kTriggerKinds];
  bool held_[kTriggerKinds] = {};  // a level trigger's refusal already counted this cooldown
  std::uint64_t tick_count_ = 0;
  std::uint64_t callback_id_ = 0;
};

// A registered loop: owns its Triggers; stop() and the destructor stop all five.
class LoopHandle {
 public:
  LoopHandle() = default;
  explicit LoopHandle(std::unique_ptr<Triggers> t) : triggers_(std::move(t)) {}
  LoopHandle(LoopHandle&&) noexcept = default;
  LoopHandle& operator=(LoopHandle&&) noexcept = default;
  ~LoopHandle() { stop(); }

  void stop() {
    if (triggers_) triggers_->stop();
  }
  Triggers* operator->() const noexcept { return triggers_.get(); }
  Triggers& operator*() const noexcept { return *triggers_; }

 private:
  std::unique_ptr<Triggers> triggers_;
};

// Registers the five triggers on `signals` (the default signals if omitted).
LoopHandle register_loop(TriggerConfig config, CycleCallback on_cycle);
LoopHandle register_loop(Signals& signals, TriggerConfig config, CycleCallback on_cycle);

}  // namespace halo

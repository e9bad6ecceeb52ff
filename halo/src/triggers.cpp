#include "halo/triggers.hpp"

#include <stdexcept>
#include <string>

namespace halo {

std::string_view to_string(Mode m) noexcept { return m == Mode::kLight ? "light" : "full"; }

std::string_view to_string(TriggerKind k) noexcept {
  switch (k) {
    case TriggerKind::kTime:
      return "time";
    case TriggerKind::kRequestVolume:
      return "request-volume";
    case TriggerKind::kErrorRate:
      return "error-rate";
    case TriggerKind::kDeploy:
      return "deploy";
    case TriggerKind::kEvent:
      return "event";
  }
  return "unknown";
}

std::string_view to_string(Severity s) noexcept {
  switch (s) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
    case Severity::kCritical:
      return "critical";
  }
  return "unknown";
}

Severity parse_severity(std::string_view text) {
  if (text == "info") return Severity::kInfo;
  if (text == "warning" || text == "warn") return Severity::kWarning;
  if (text == "error") return Severity::kError;
  if (text == "critical") return Severity::kCritical;
  throw std::invalid_argument("halo: unknown severity '" + std::string(text) +
                              "' (expected info, warning, error or critical)");
}

std::string_view to_string(EventOutcome e) noexcept {
  switch (e) {
    case EventOutcome::kFired:
      return "fired";
    case EventOutcome::kUnknownType:
      return "unknown event type";
    case EventOutcome::kBelowSeverity:
      return "below the type's minimum severity";
    case EventOutcome::kCooldown:
      return "suppressed by cooldown";
    case EventOutcome::kStopped:
      return "loop stopped";
  }
  return "unknown";
}

Signals::Signals(octo::Ticker& ticker, std::chrono::nanoseconds window, std::uint32_t buckets)
    : ticker_(ticker),
      requests_(ticker, {.window = window, .buckets = buckets}),
      errors_(ticker, {.window = window, .buckets = buckets}) {}

Signals::Signals(octo::Ticker& ticker, Pinned)
    : ticker_(ticker),
      requests_(ticker, {.window = std::chrono::seconds(10), .buckets = 100}, detail::kRequestSlot),
      errors_(ticker, {.window = std::chrono::seconds(10), .buckets = 100}, detail::kErrorSlot) {}

namespace detail {
namespace {
constinit const std::atomic<std::uint64_t> kNeverEpoch{~std::uint64_t{0}};
}  // namespace
constinit std::atomic<const std::atomic<std::uint64_t>*> default_epoch{&kNeverEpoch};

void record_default_slow(std::uint32_t slot) noexcept {
  if (default_epoch.load(std::memory_order_acquire) == &kNeverEpoch) return;  // no loop: no-op
  Signals& d = default_signals();
  octo::WindowCounter& c = slot == kRequestSlot ? d.requests_ : d.errors_;
  c.record();  // the counter's own path rolls (or sets up) this thread's pinned slot
}
}  // namespace detail

namespace {
std::atomic<Signals*> g_default_signals{nullptr};
}  // namespace

Signals& default_signals() {
  // Never destroyed: request threads may record during static destruction.
  static Signals* const signals = [] {
    auto* s = new Signals(octo::Ticker::shared(), Signals::Pinned{});
    g_default_signals.store(s, std::memory_order_release);
    return s;
  }();
  return *signals;
}

void Signals::activate(bool on) noexcept {
  // Cold path (a loop starting or stopping): one lock orders the count with the publication.
  static std::mutex mu;
  std::lock_guard lock(mu);
  const std::uint32_t now_active = on ? active_.fetch_add(1, std::memory_order_relaxed) + 1
                                      : active_.fetch_sub(1, std::memory_order_relaxed) - 1;
  if (this != g_default_signals.load(std::memory_order_acquire)) return;
  // The free functions count exactly while at least one loop is registered on the defaults.
  detail::default_epoch.store(now_active != 0 ? &ticker_.epoch_word() : &detail::kNeverEpoch,
                              std::memory_order_release);
}

namespace {

void validate(const TriggerConfig& c) {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("halo::TriggerConfig: " + what);
  };
  if (c.time_interval.count() < 0) fail("time_interval must be >= 0 (0 disables the time trigger)");
  if (c.window.count() < 0) fail("window must be >= 0 (0: the signals' whole window)");
  if (!(c.error_rate_threshold > 0.0 && c.error_rate_threshold <= 1.0)) {
    fail("error_rate_threshold must be in (0, 1] (got " + std::to_string(c.error_rate_threshold) +
         ")");
  }
  if (c.error_rate_clear >= c.error_rate_threshold) {
    fail("error_rate_clear (" + std::to_string(c.error_rate_clear) +
         ") must be below error_rate_threshold (" + std::to_string(c.error_rate_threshold) + ")");
  }
  if (c.deploy_verify_after.count() < 0) fail("deploy_verify_after must be >= 0");
  if (c.evaluate_every_ticks == 0) fail("evaluate_every_ticks must be >= 1 (got 0)");
  for (int k = 0; k < kTriggerKinds; ++k) {
    if (c.cooldown[k].count() < 0) {
      fail("cooldown of trigger '" + std::string(to_string(static_cast<TriggerKind>(k))) +
           "' must be >= 0");
    }
    // Checked here, not when a trigger fires on the ticker's thread.
    if (c.mode[k] != Mode::kFull && c.mode[k] != Mode::kLight) {
      fail("mode of trigger '" + std::string(to_string(static_cast<TriggerKind>(k))) + "' is " +
           std::to_string(static_cast<int>(c.mode[k])) + ", neither kFull nor kLight");
    }
  }
  for (const auto& [type, severity] : c.events) {
    if (static_cast<int>(severity) > static_cast<int>(Severity::kCritical))
      fail("event '" + type + "' has severity " + std::to_string(static_cast<int>(severity)) +
           ", not one of info, warning, error, critical");
  }
}

}  // namespace

Triggers::Triggers(Signals& signals, TriggerConfig config, CycleCallback on_cycle)
    : signals_(signals),
      config_((validate(config), std::move(config))),
      clear_level_(config_.error_rate_clear < 0 ? config_.error_rate_threshold / 2
                                                : config_.error_rate_clear),
      on_cycle_(std::move(on_cycle)),
      window_(config_.window.count() > 0 ? config_.window : signals_.requests().window()) {
  if (!on_cycle_) throw std::invalid_argument("halo::Triggers: the cycle callback is empty");
  if (config_.window > signals_.requests().window())
    throw std::invalid_argument("halo::TriggerConfig: window " +
                                std::to_string(config_.window.count() / 1'000'000) +
                                " ms is longer than the signals' " +
                                std::to_string(signals_.requests().window().count() / 1'000'000) +
                                " ms (register the loop on a Signals with a longer window)");
  for (int k = 0; k < kTriggerKinds; ++k) status_[k].kind = static_cast<TriggerKind>(k);
  next_time_fire_ = signals_.ticker().now() + config_.time_interval;
  signals_.activate(true);
  callback_id_ = signals_.ticker().add_callback([this](std::chrono::nanoseconds) {
    if (++tick_count_ % config_.evaluate_every_ticks == 0) evaluate();
  });
}

Triggers::~Triggers() { stop(); }

void Triggers::stop() {
  if (stopped_.exchange(true)) return;
  // No lock held here: the ticker holds its own lock while our callback runs.
  signals_.ticker().remove_callback(callback_id_);
  {
    std::lock_guard lock(mu_);
    running_ = false;
  }
  // Wait for a callback already on its way out of notify_deploy / trigger_from_event.
  { std::lock_guard wait(callback_mu_); }
  signals_.activate(false);
}

bool Triggers::admit(TriggerKind kind, std::chrono::nanoseconds now, bool bypass_cooldown,
                     bool level) {
  const int k = static_cast<int>(kind);
  TriggerStatus& st = status_[k];
  if (!bypass_cooldown && st.last_fired && now - *st.last_fired < config_.cooldown[k]) {
    if (!level || !held_[k]) ++st.suppressed;
    held_[k] = level;
    return false;
  }
  held_[k] = false;
  ++st.fired;
  st.last_fired = now;
  return true;
}

void Triggers::send(std::vector<CycleRequest>& requests) {
  if (requests.empty()) return;
  std::lock_guard lock(callback_mu_);
  {
    std::lock_guard state(mu_);
    if (!running_) return;
  }
  for (const auto& r : requests) on_cycle_(r);
}

void Triggers::evaluate() {
  std::vector<CycleRequest> out;
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    const auto now = signals_.ticker().now();
    auto request = [&](TriggerKind k, std::string name, std::map<std::string, std::string> ctx) {
      out.push_back({k, std::move(name), std::move(ctx), config_.mode[static_cast<int>(k)]});
    };

    if (config_.time_interval.count() > 0 && now >= next_time_fire_) {
      next_time_fire_ = now + config_.time_interval;
      if (admit(TriggerKind::kTime, now)) request(TriggerKind::kTime, "time", {});
    }

    const std::uint64_t requests = signals_.requests().sum(window_);
    const std::uint64_t errors = signals_.errors().sum(window_);
    if (config_.request_threshold > 0 && requests >= config_.request_threshold &&
        admit(TriggerKind::kRequestVolume, now, false, /*level=*/true)) {
      request(TriggerKind::kRequestVolume, "request-volume",
              {{"requests", std::to_string(requests)},
               {"threshold", std::to_string(config_.request_threshold)}});
    }

    const double rate =
        requests > 0 ? static_cast<double>(errors) / static_cast<double>(requests) : 0.0;
    if (!error_armed_ && rate < clear_level_) error_armed_ = true;  // hysteresis: re-arm
    if (error_armed_ && requests >= config_.error_min_requests &&
        rate >= config_.error_rate_threshold &&
        admit(TriggerKind::kErrorRate, now, false, /*level=*/true)) {
      error_armed_ = false;
      request(TriggerKind::kErrorRate, "error-rate",
              {{"errors", std::to_string(errors)},
               {"requests", std::to_string(requests)},
               {"rate", std::to_string(rate)}});
    }

    if (verify_due_ && now >= *verify_due_) {
      verify_due_.reset();
      // A verification was promised at deploy time: it is not subject to the cooldown.
      if (admit(TriggerKind::kDeploy, now, /*bypass_cooldown=*/true)) {
        request(TriggerKind::kDeploy, "deploy-verify", std::move(verify_context_));
      }
    }
  }
  send(out);
}

void Triggers::notify_deploy(std::map<std::string, std::string> metadata) {
  std::vector<CycleRequest> out;
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    const auto now = signals_.ticker().now();
    last_deploy_ = now;
    if (config_.deploy_verify_after.count() > 0) {
      verify_due_ = now + config_.deploy_verify_after;
      verify_context_ = metadata;
    }
    if (admit(TriggerKind::kDeploy, now)) {
      out.push_back({TriggerKind::kDeploy, "deploy", std::move(metadata),
                     config_.mode[static_cast<int>(TriggerKind::kDeploy)]});
    }
  }
  send(out);
}

std::optional<std::chrono::nanoseconds> Triggers::last_deploy() const {
  std::lock_guard lock(mu_);
  return last_deploy_;
}

EventOutcome Triggers::trigger_from_event(std::string_view type, std::string_view severity) {
  const Severity sev = parse_severity(severity);
  std::vector<CycleRequest> out;
  {
    std::lock_guard lock(mu_);
    if (!running_) return EventOutcome::kStopped;
    auto it = config_.events.find(type);
    if (it == config_.events.end()) return EventOutcome::kUnknownType;
    if (sev < it->second) return EventOutcome::kBelowSeverity;
    if (!admit(TriggerKind::kEvent, signals_.ticker().now())) return EventOutcome::kCooldown;
    out.push_back({TriggerKind::kEvent,
                   "event",
                   {{"type", std::string(type)}, {"severity", std::string(to_string(sev))}},
                   config_.mode[static_cast<int>(TriggerKind::kEvent)]});
  }
  send(out);
  return EventOutcome::kFired;
}

TriggersStatus Triggers::status() const {
  TriggersStatus s;
  s.now = signals_.ticker().now();
  s.window = window_;
  s.request_threshold = config_.request_threshold;
  s.error_rate_threshold = config_.error_rate_threshold;
  s.window_requests = signals_.requests().sum(window_);
  s.window_errors = signals_.errors().sum(window_);
  s.error_rate = s.window_requests > 0
                     ? static_cast<double>(s.window_errors) / static_cast<double>(s.window_requests)
                     : 0.0;
  std::lock_guard lock(mu_);
  for (int k = 0; k < kTriggerKinds; ++k) {
    s.triggers[k] = status_[k];
    s.triggers[k].cooldown = config_.cooldown[k];
  }
  s.error_rate_armed = error_armed_;
  s.running = running_;
  return s;
}

LoopHandle register_loop(TriggerConfig config, CycleCallback on_cycle) {
  return register_loop(default_signals(), std::move(config), std::move(on_cycle));
}

LoopHandle register_loop(Signals& signals, TriggerConfig config, CycleCallback on_cycle) {
  return LoopHandle(std::make_unique<Triggers>(signals, std::move(config), std::move(on_cycle)));
}

}  // namespace halo

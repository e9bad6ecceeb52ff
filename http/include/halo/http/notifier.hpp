// halo/http/notifier.hpp — HALO's events sent out over HTTP: to Prometheus Alertmanager (API v2)
// as alerts, or to any URL as JSON (a webhook). Each notifier subscribes to the engine and
// posts from a thread of its own: a cycle, the executor and the engine's event thread never wait
// for the network. Posts retry with exponential backoff; what waits is bounded (max_queue
// events, max_alerts alerts) and what does not fit is counted, never blocking.
//
// Alertmanager: a weak point that turns critical or escalates becomes a firing alert, labels
// alertname="HaloWeakPoint", subject_type, subject_id, severity, fingerprint (the weak point's
// id), state ("open" when it turned critical, "escalated" once a person is needed; an
// escalation replaces the open alert) plus config.labels; annotations summary and last_repair.
// It is resolved (endsAt) when the weak point heals, or when the newest full cycle no longer
// reports it. Firing alerts are re-sent every repeat_interval, as Alertmanager expects (it
// resolves an alert not re-sent within its resolve_timeout, 5 min by default).
//
// Webhook: every event (all kinds, or config.kinds) as JSON, batched: {"events": [{"kind":
// "escalated", "when": "...", "weak_point": "wp-...", ...}, ...]}, at most 100 per post.
//
//   halo::AlertmanagerNotifier alerts(engine, {.url = "http://127.0.0.1:9093"});
//   halo::WebhookNotifier hook(engine, {.url = "http://hooks.internal:8080/halo"});
//   http_config.metrics.writers.push_back(halo::notifier_metrics({&alerts, &hook}));
//
// Only http:// URLs (no TLS): put a local proxy in front for https. The engine must outlive
// the notifiers. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "halo/engine.hpp"
#include "halo/event.hpp"

namespace halo {

struct NotifierConfig {
  // "http://host:port" (Alertmanager: its base; /api/v2/alerts is added) or "http://host:port/path"
  // (webhook). Throws std::invalid_argument naming it when it is not http:// with a host.
  std::string url{};
  std::chrono::milliseconds timeout{5'000};  // one post, connect to response
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds repeat_interval{60'000};  // Alertmanager: re-send firing alerts
  std::size_t max_queue = 4096;                       // events waiting to be handled or sent
  std::size_t max_alerts = 1000;                      // Alertmanager: alerts firing at once
  std::map<std::string, std::string> labels{};        // added to every alert ("service": "shop")
  std::set<EventKind> kinds{};                        // webhook: only these (empty: every kind)
  std::string generator_url{};                        // Alertmanager: generatorURL of each alert
};

struct NotifierStatus {
  std::string name;  // "alertmanager" or "webhook"
  std::string url;
  std::uint64_t events_received = 0;
  std::uint64_t events_dropped = 0;  // past max_queue (or max_alerts)
  std::uint64_t posts_ok = 0;
  std::uint64_t posts_failed = 0;  // each failed attempt
  std::size_t pending = 0;         // events not yet sent (webhook), alerts to send (Alertmanager)
  std::size_t alerts_firing = 0;   // Alertmanager
  std::string last_error{};        // the newest failure, empty once a post succeeds
  std::optional<std::chrono::system_clock::time_point> last_success{};
};

class Notifier {
 public:
  virtual ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  NotifierStatus status() const;
  // Waits until everything received so far has been sent (true), or `timeout` passed (false).
  bool flush(std::chrono::milliseconds timeout);

  struct Core;

 protected:
  explicit Notifier(std::unique_ptr<Core> core);
  std::unique_ptr<Core> core_;
};

class AlertmanagerNotifier final : public Notifier {
 public:
  AlertmanagerNotifier(Engine& engine, NotifierConfig config);
  ~AlertmanagerNotifier() override;
};

class WebhookNotifier final : public Notifier {
 public:
  WebhookNotifier(Engine& engine, NotifierConfig config);
  ~WebhookNotifier() override;
};

// A MetricsConfig writer for the notifiers (each must outlive the writer's use):
// octohalo_notifier_posts_total{notifier,outcome}, octohalo_notifier_events_dropped_total,
// octohalo_notifier_pending, octohalo_notifier_alerts_firing.
std::function<void(std::string&)> notifier_metrics(std::vector<const Notifier*> notifiers);

}  // namespace halo

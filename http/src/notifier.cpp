#include "halo/http/notifier.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <utility>

#include "detail/http_post.hpp"
#include "halo/audit.hpp"
#include "halo/utf8.hpp"
#include "octo/detail/thread_name.hpp"

namespace halo {

using SteadyTime = std::chrono::steady_clock;

// The part both notifiers share: the inbox the engine's event thread fills, the thread that
// drains it and posts, backoff and status. What is sent is the subclass's.
struct Notifier::Core {
  Core(Engine& engine, NotifierConfig config, std::string name, std::string_view default_path)
      : engine_(engine), config_(std::move(config)), url_(detail::parse_url(config_.url)) {
    if (url_.target == "/" && !default_path.empty()) url_.target = std::string(default_path);
    auto positive = [](std::chrono::milliseconds v, const char* field) {
      if (v.count() <= 0)
        throw std::invalid_argument(std::string("halo::NotifierConfig: ") + field +
                                    " must be positive");
    };
    positive(config_.timeout, "timeout");
    positive(config_.backoff_initial, "backoff_initial");
    positive(config_.repeat_interval, "repeat_interval");
    if (config_.backoff_max < config_.backoff_initial)
      throw std::invalid_argument("halo::NotifierConfig: backoff_max is below backoff_initial");
    if (config_.max_queue == 0 || config_.max_alerts == 0)
      throw std::invalid_argument("halo::NotifierConfig: max_queue and max_alerts must be >= 1");
    status_.name = std::move(name);
    status_.url = config_.url;
    backoff_ = config_.backoff_initial;
  }
  virtual ~Core() = default;

  void start() {
    thread_ = std::thread([this] {
      octo::detail::name_this_thread("halo-notifier");
      run();
    });
    // Through the gate: a handler call already under way when unsubscribe() returns (the engine
    // lets it finish) must not reach a notifier being destroyed.
    subscription_ = engine_.subscribe([gate = gate_](const Event& e) {
      std::lock_guard lock(gate->mu);
      if (gate->core != nullptr) gate->core->receive(e);
    });
  }

  // Unsubscribes first (no new events), then stops the thread; what was not sent is left.
  void stop() {
    engine_.unsubscribe(subscription_);
    {
      std::lock_guard lock(gate_->mu);
      gate_->core = nullptr;
    }
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // On the engine's event thread: a push, never a wait for the network.
  void receive(const Event& e) {
    {
      std::lock_guard lock(mu_);
      ++status_.events_received;
      if (!wants(e.kind)) return;
      if (inbox_.size() + model_size_ >= config_.max_queue) {
        ++status_.events_dropped;
        return;
      }
      inbox_.push_back(e);
    }
    cv_.notify_all();
  }

  NotifierStatus status() const {
    std::lock_guard lock(mu_);
    NotifierStatus s = status_;
    s.pending = inbox_.size() + model_size_;
    s.alerts_firing = firing_;
    return s;
  }

  bool flush(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout,
                        [&] { return inbox_.empty() && model_size_ == 0 && !busy_; });
  }

 protected:
  // What a subclass does with an event, and what it would send now (nullopt: nothing due).
  virtual bool wants(EventKind) const { return true; }
  virtual void absorb(Event e, SteadyTime::time_point now) = 0;
  virtual std::optional<std::string> payload(SteadyTime::time_point now) = 0;
  virtual void sent(SteadyTime::time_point now) = 0;
  // Items waiting to be sent, and the next time something is due without new events.
  virtual std::size_t waiting() const = 0;
  virtual std::optional<SteadyTime::time_point> next_due() const = 0;
  virtual std::size_t firing() const { return 0; }
  void count_dropped(std::uint64_t n) {
    std::lock_guard lock(mu_);
    status_.events_dropped += n;
  }

  Engine& engine_;
  const NotifierConfig config_;
  detail::Url url_;

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      std::optional<SteadyTime::time_point> wake = next_due_;
      if (wake && retry_at_ && *retry_at_ > *wake) wake = retry_at_;
      auto ready = [&] {
        return stopping_ || !inbox_.empty() || (wake && SteadyTime::now() >= *wake);
      };
      if (wake) {
        cv_.wait_until(lock, *wake, ready);
      } else {
        cv_.wait(lock, ready);
      }
      if (stopping_) return;
      std::deque<Event> events;
      events.swap(inbox_);
      busy_ = true;
      lock.unlock();

      auto now = SteadyTime::now();
      for (Event& e : events) absorb(std::move(e), now);
      std::optional<std::string> body;
      if (!retry_at_ || now >= *retry_at_) body = payload(now);
      detail::PostResult result;
      if (body) result = detail::post_json(url_, url_.target, std::move(*body), config_.timeout);
      now = SteadyTime::now();
      if (body && result.ok()) sent(now);

      lock.lock();
      if (body) {
        if (result.ok()) {
          ++status_.posts_ok;
          status_.last_error.clear();
          status_.last_success = std::chrono::system_clock::now();
          backoff_ = config_.backoff_initial;
          retry_at_.reset();
        } else {
          ++status_.posts_failed;
          status_.last_error = to_valid_utf8(result.error);
          retry_at_ = now + backoff_;
          backoff_ = std::min(backoff_ * 2, config_.backoff_max);
        }
      }
      model_size_ = waiting();
      firing_ = firing();
      next_due_ = next_due();
      busy_ = false;
      cv_.notify_all();
    }
  }

  struct Gate {
    explicit Gate(Core* c) : core(c) {}
    std::mutex mu;
    Core* core;  // null once stopping
  };
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>(this);
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> inbox_;
  NotifierStatus status_;
  std::size_t model_size_ = 0;  // waiting(), as of the thread's last pass
  std::size_t firing_ = 0;
  std::optional<SteadyTime::time_point> next_due_;
  std::optional<SteadyTime::time_point> retry_at_;  // backing off until then
  std::chrono::milliseconds backoff_;
  bool busy_ = false;
  bool stopping_ = false;
  std::uint64_t subscription_ = 0;
  std::thread thread_;
};

namespace {

std::string iso(std::chrono::system_clock::time_point t) { return format_iso8601(t); }

nlohmann::json event_json(const Event& e) {
  nlohmann::json j = {{"kind", to_string(e.kind)}, {"when", iso(e.when)}};
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  add("weak_point", e.weak_point);
  add("subject_type", e.subject_type);
  add("subject_id", e.subject_id);
  add("reason", e.reason);
  add("cycle_id", e.cycle_id);
  if (!e.weak_point.empty()) {
    j["severity"] = to_string(e.severity);
    j["state"] = to_string(e.state);
  }
  add("task_type", e.task_type);
  if (e.task_id != 0) j["task_id"] = e.task_id;
  return j;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class AlertCore final : public Notifier::Core {
 public:
  AlertCore(Engine& engine, NotifierConfig config)
      : Core(engine, std::move(config), "alertmanager", "/api/v2/alerts") {
    if (url_.target != "/api/v2/alerts") {
      // A base path ("http://host/am") gets the API path appended.
      if (url_.target.back() == '/') url_.target.pop_back();
      if (!url_.target.ends_with("/api/v2/alerts")) url_.target += "/api/v2/alerts";
    }
  }

 private:
  struct Alert {
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> annotations;
    std::chrono::system_clock::time_point starts_at;
    std::optional<std::chrono::system_clock::time_point> ends_at;
    std::string severity;
  };

  bool wants(EventKind k) const override {
    return k != EventKind::kWeakPointOpened && k != EventKind::kBreakerOpened &&
           k != EventKind::kBreakerClosed && k != EventKind::kFleetUnavailable &&
           k != EventKind::kFleetRejoined;
  }

  void fire(const Event& e, std::string state, std::string severity) {
    auto it = firing_.find(e.weak_point);
    if (it != firing_.end()) {
      if (it->second.labels["state"] == state) return;
      // Labels name an alert: a new state is a new alert, and the old one ends.
      resolve(it, e.when);
    }
    if (firing_.size() >= config_.max_alerts) {
      count_dropped(1);
      return;
    }
    Alert a;
    a.labels = config_.labels;
    a.labels["alertname"] = "HaloWeakPoint";
    a.labels["subject_type"] = e.subject_type;
    a.labels["subject_id"] = e.subject_id;
    a.labels["fingerprint"] = e.weak_point;
    a.labels["severity"] = severity;
    a.labels["state"] = std::move(state);
    a.annotations["summary"] = e.reason.empty() ? e.subject_type + " " + e.subject_id : e.reason;
    if (auto r = last_repair_.find(e.weak_point); r != last_repair_.end())
      a.annotations["last_repair"] = r->second;
    a.starts_at = e.when;
    a.severity = std::move(severity);
    firing_[e.weak_point] = std::move(a);
    dirty_ = true;
  }

  void resolve(std::map<std::string, Alert>::iterator it,
               std::chrono::system_clock::time_point when) {
    it->second.ends_at = std::max(when, it->second.starts_at);
    resolving_.push_back(std::move(it->second));
    firing_.erase(it);
    dirty_ = true;
  }

  // Alerts whose weak point the newest full cycle no longer reports end (healthy, forgotten,
  // or cleared): what events alone could miss.
  void reconcile(std::chrono::system_clock::time_point when) {
    if (firing_.empty()) return;
    const auto newest = engine_.history(1);
    if (newest.empty() || newest[0]->mode != Mode::kFull) return;
    std::unordered_set<std::string_view> seen;
    for (const auto& wp : newest[0]->weak_points)
      if (firing_.contains(wp.id)) seen.insert(wp.id);
    for (auto it = firing_.begin(); it != firing_.end();) {
      auto next = std::next(it);
      if (!seen.contains(it->first)) resolve(it, when);
      it = next;
    }
  }

  void absorb(Event e, SteadyTime::time_point) override {
    switch (e.kind) {
      case EventKind::kWeakPointCritical:
        fire(e, "open", "critical");
        break;
      case EventKind::kEscalated: {
        // The severity it was alerting at; an escalation that was never critical is "high".
        auto it = firing_.find(e.weak_point);
        fire(e, "escalated", it != firing_.end() ? it->second.severity : "high");
        break;
      }
      case EventKind::kHealed:
        if (auto it = firing_.find(e.weak_point); it != firing_.end()) resolve(it, e.when);
        last_repair_.erase(e.weak_point);
        break;
      case EventKind::kRepairDispatched:
      case EventKind::kRepairFinished: {
        auto it = firing_.find(e.weak_point);
        if (it == firing_.end()) break;
        const std::string text = e.task_type + " (task " + std::to_string(e.task_id) + "): " +
                                 (e.kind == EventKind::kRepairDispatched ? "dispatched" : e.reason);
        last_repair_[e.weak_point] = text;
        it->second.annotations["last_repair"] = text;
        dirty_ = true;
        break;
      }
      case EventKind::kCycleCompleted:
        reconcile(e.when);
        break;
      default:
        break;
    }
    // Only firing weak points keep a last repair.
    std::erase_if(last_repair_, [&](const auto& kv) { return !firing_.contains(kv.first); });
  }

  std::optional<std::string> payload(SteadyTime::time_point now) override {
    if (firing_.empty() && resolving_.empty()) {
      dirty_ = false;  // nothing to say: not due again until something changes
      return std::nullopt;
    }
    if (!dirty_ && now < next_repeat_) return std::nullopt;
    nlohmann::json arr = nlohmann::json::array();
    auto add = [&](const Alert& a) {
      nlohmann::json j = {
          {"labels", a.labels}, {"annotations", a.annotations}, {"startsAt", iso(a.starts_at)}};
      if (a.ends_at) j["endsAt"] = iso(*a.ends_at);
      if (!config_.generator_url.empty()) j["generatorURL"] = config_.generator_url;
      arr.push_back(std::move(j));
    };
    for (const auto& [id, a] : firing_) add(a);
    for (const auto& a : resolving_) add(a);
    return dump(arr);
  }

  void sent(SteadyTime::time_point now) override {
    resolving_.clear();
    dirty_ = false;
    next_repeat_ = now + config_.repeat_interval;
  }

  std::size_t waiting() const override { return dirty_ ? firing_.size() + resolving_.size() : 0; }
  std::optional<SteadyTime::time_point> next_due() const override {
    if (dirty_) return SteadyTime::now();
    if (!firing_.empty()) return next_repeat_;
    return std::nullopt;
  }
  std::size_t firing() const override { return firing_.size(); }

  // Touched only by the notifier's thread.
  std::map<std::string, Alert> firing_;
  std::vector<Alert> resolving_;
  std::map<std::string, std::string> last_repair_;
  bool dirty_ = false;
  SteadyTime::time_point next_repeat_{};
};

class HookCore final : public Notifier::Core {
 public:
  HookCore(Engine& engine, NotifierConfig config)
      : Core(engine, std::move(config), "webhook", "") {}

 private:
  static constexpr std::size_t kBatch = 100;

  bool wants(EventKind k) const override {
    return config_.kinds.empty() || config_.kinds.contains(k);
  }
  void absorb(Event e, SteadyTime::time_point) override { outbox_.push_back(std::move(e)); }
  std::optional<std::string> payload(SteadyTime::time_point) override {
    if (outbox_.empty()) return std::nullopt;
    nlohmann::json arr = nlohmann::json::array();
    for (std::size_t i = 0; i < std::min(kBatch, outbox_.size()); ++i)
      arr.push_back(event_json(outbox_[i]));
    in_post_ = arr.size();
    return dump({{"events", std::move(arr)}});
  }
  void sent(SteadyTime::time_point) override {
    outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<std::ptrdiff_t>(in_post_));
  }
  std::size_t waiting() const override { return outbox_.size(); }
  std::optional<SteadyTime::time_point> next_due() const override {
    if (outbox_.empty()) return std::nullopt;
    return SteadyTime::now();
  }

  std::deque<Event> outbox_;  // the notifier's thread only
  std::size_t in_post_ = 0;
};

}  // namespace

Notifier::Notifier(std::unique_ptr<Core> core) : core_(std::move(core)) { core_->start(); }
Notifier::~Notifier() = default;

NotifierStatus Notifier::status() const { return core_->status(); }
bool Notifier::flush(std::chrono::milliseconds timeout) { return core_->flush(timeout); }

AlertmanagerNotifier::AlertmanagerNotifier(Engine& engine, NotifierConfig config)
    : Notifier(std::make_unique<AlertCore>(engine, std::move(config))) {}
AlertmanagerNotifier::~AlertmanagerNotifier() { core_->stop(); }

WebhookNotifier::WebhookNotifier(Engine& engine, NotifierConfig config)
    : Notifier(std::make_unique<HookCore>(engine, std::move(config))) {}
WebhookNotifier::~WebhookNotifier() { core_->stop(); }

std::function<void(std::string&)> notifier_metrics(std::vector<const Notifier*> notifiers) {
  return [notifiers = std::move(notifiers)](std::string& out) {
    std::vector<NotifierStatus> all;
    for (const Notifier* n : notifiers)
      if (n != nullptr) all.push_back(n->status());
    auto family = [&](const char* name, const char* type, const char* help, auto value) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
      for (std::size_t i = 0; i < all.size(); ++i) value(name, all[i], i);
    };
    auto label = [](const NotifierStatus& s, std::size_t i) {
      return "notifier=\"" + s.name + "-" + std::to_string(i) + "\"";
    };
    family("octohalo_notifier_posts_total", "counter", "Posts by outcome.",
           [&](const char* name, const NotifierStatus& s, std::size_t i) {
             out += std::string(name) + "{" + label(s, i) + ",outcome=\"ok\"} " +
                    std::to_string(s.posts_ok) + "\n";
             out += std::string(name) + "{" + label(s, i) + ",outcome=\"failed\"} " +
                    std::to_string(s.posts_failed) + "\n";
           });
    family("octohalo_notifier_events_dropped_total", "counter",
           "Events (or alerts) past the notifier's bounds.",
           [&](const char* name, const NotifierStatus& s, std::size_t i) {
             out += std::string(name) + "{" + label(s, i) + "} " +
                    std::to_string(s.events_dropped) + "\n";
           });
    family("octohalo_notifier_pending", "gauge", "Events or alerts waiting to be sent.",
           [&](const char* name, const NotifierStatus& s, std::size_t i) {
             out += std::string(name) + "{" + label(s, i) + "} " + std::to_string(s.pending) + "\n";
           });
    family("octohalo_notifier_alerts_firing", "gauge", "Alerts the notifier keeps firing.",
           [&](const char* name, const NotifierStatus& s, std::size_t i) {
             out += std::string(name) + "{" + label(s, i) + "} " + std::to_string(s.alerts_firing) +
                    "\n";
           });
  };
}

}  // namespace halo

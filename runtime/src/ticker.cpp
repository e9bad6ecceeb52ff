#include "octo/ticker.hpp"

#include "octo/detail/thread_name.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace octo {

Ticker::Ticker(Options options)
    : resolution_(options.resolution),
      idle_resolution_(options.idle_resolution),
      idle_after_(options.idle_after),
      clock_(options.clock ? std::move(options.clock) : std::make_shared<SteadyClock>()) {
  if (resolution_.count() <= 0) {
    throw std::invalid_argument("octo::Ticker: resolution must be positive (got " +
                                std::to_string(resolution_.count()) + " ns)");
  }
  epoch_.store(static_cast<std::uint64_t>(clock_->now() / resolution_), std::memory_order_relaxed);
  if (options.own_thread)
    thread_ = std::thread([this] {
      detail::name_this_thread("octo-ticker");
      run();
    });
}

Ticker::~Ticker() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Ticker& Ticker::shared() {
  // Never destroyed: recording threads may outlive static destruction order.
  static Ticker* const instance = new Ticker(Options{});
  return *instance;
}

void Ticker::tick() {
  const auto now = clock_->now();
  epoch_.store(static_cast<std::uint64_t>(now / resolution_), std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  for (auto& [id, cb] : callbacks_) cb(now);
}

std::uint64_t Ticker::add_callback(Callback cb) {
  std::lock_guard lock(mu_);
  callbacks_.emplace_back(next_id_, std::move(cb));
  return next_id_++;
}

void Ticker::remove_callback(std::uint64_t id) {
  std::lock_guard lock(mu_);
  std::erase_if(callbacks_, [id](const auto& e) { return e.first == id; });
}

std::uint64_t Ticker::active_epoch() const noexcept {
  active_.store(true, std::memory_order_relaxed);
  if (!idle_.load(std::memory_order_relaxed)) return epoch_.load(std::memory_order_relaxed);
  // Idle: the published epoch may be up to idle_resolution old. Publish the clock's (never
  // backwards) and bring the thread back to its fast pace.
  const auto fresh = static_cast<std::uint64_t>(clock_->now() / resolution_);
  std::uint64_t cur = epoch_.load(std::memory_order_relaxed);
  while (cur < fresh && !epoch_.compare_exchange_weak(cur, fresh, std::memory_order_relaxed)) {
  }
  if (idle_.exchange(false, std::memory_order_relaxed)) {
    {
      std::lock_guard lock(stop_mu_);
      woken_ = true;
    }
    stop_cv_.notify_all();
  }
  return std::max(cur, fresh);
}

void Ticker::run() {
  auto next = std::chrono::steady_clock::now();
  auto last_active = next;
  std::unique_lock lock(stop_mu_);
  while (!stop_) {
    next += idle_.load(std::memory_order_relaxed) ? idle_resolution_ : resolution_;
    if (stop_cv_.wait_until(lock, next, [this] { return stop_ || woken_; }) && stop_) break;
    if (woken_) {
      woken_ = false;
      next = std::chrono::steady_clock::now();
    }
    lock.unlock();
    tick();
    lock.lock();
    const auto now = std::chrono::steady_clock::now();
    if (active_.exchange(false, std::memory_order_relaxed)) last_active = now;
    // Both ways: activity that raced with going idle (it saw idle_ still false) is seen here.
    idle_.store(idle_resolution_ > resolution_ && now - last_active >= idle_after_,
                std::memory_order_relaxed);
    // After a long stall (suspend, debugger) resume from now instead of ticking in a burst.
    if (now - next > 10 * resolution_) next = now;
  }
}

}  // namespace octo

#include "octo/ticker.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace octo {

Ticker::Ticker(Options options)
    : resolution_(options.resolution),
      clock_(options.clock ? std::move(options.clock) : std::make_shared<SteadyClock>()) {
  if (resolution_.count() <= 0) {
    throw std::invalid_argument("octo::Ticker: resolution must be positive (got " +
                                std::to_string(resolution_.count()) + " ns)");
  }
  epoch_.store(static_cast<std::uint64_t>(clock_->now() / resolution_), std::memory_order_relaxed);
  if (options.own_thread) thread_ = std::thread([this] { run(); });
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

void Ticker::run() {
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(stop_mu_);
  while (!stop_) {
    next += resolution_;
    if (stop_cv_.wait_until(lock, next, [this] { return stop_; })) break;
    lock.unlock();
    tick();
    lock.lock();
    // After a long stall (suspend, debugger) resume from now instead of ticking in a burst.
    const auto now = std::chrono::steady_clock::now();
    if (now - next > 10 * resolution_) next = now;
  }
}

}  // namespace octo

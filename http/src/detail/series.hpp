// The console's charts (GET /series): a bounded ring of samples of the service and the loop,
// one per sample() call (HttpServer calls it once a second). Each point holds the request rate
// and error rate of the triggers' window, and the cycles and repairs since the previous point.
// Thread-safe (one mutex; a sample is a few stores). Cost of sample(): one Engine::status() and
// one Triggers::status().
#pragma once

#include <octo/detail/annotated_mutex.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

namespace halo::detail {

struct SeriesPoint {
  std::int64_t t_ms = 0;  // wall clock, ms since the epoch
  double requests_per_s = 0;
  double error_rate = 0;
  std::uint64_t cycles = 0;   // since the previous point
  std::uint64_t repairs = 0;  // dispatched since the previous point
  std::uint64_t open_weak_points = 0;
};

class Series {
 public:
  static constexpr std::size_t kMaxPoints = 600;  // ten minutes at one a second

  // `cycles_total` and `repairs_total` are the engine's running counts: the point holds their
  // change since the last call (none for the first).
  void add(std::int64_t t_ms, double requests_per_s, double error_rate, std::uint64_t cycles_total,
           std::uint64_t repairs_total, std::uint64_t open_weak_points) {
    octo::detail::LockGuard lock(mu_);
    SeriesPoint p{.t_ms = t_ms,
                  .requests_per_s = requests_per_s,
                  .error_rate = error_rate,
                  .cycles = seen_ ? cycles_total - last_cycles_ : 0,
                  .repairs = seen_ ? repairs_total - last_repairs_ : 0,
                  .open_weak_points = open_weak_points};
    seen_ = true;
    last_cycles_ = cycles_total;
    last_repairs_ = repairs_total;
    points_.push_back(p);
    if (points_.size() > kMaxPoints) points_.pop_front();
  }
  // The newest `n` points, oldest first.
  std::vector<SeriesPoint> last(std::size_t n) const {
    octo::detail::LockGuard lock(mu_);
    const std::size_t k = n < points_.size() ? n : points_.size();
    return {points_.end() - static_cast<std::ptrdiff_t>(k), points_.end()};
  }

 private:
  mutable octo::detail::Mutex mu_;
  std::deque<SeriesPoint> points_ OCTO_GUARDED_BY(mu_);
  bool seen_ OCTO_GUARDED_BY(mu_) = false;
  std::uint64_t last_cycles_ OCTO_GUARDED_BY(mu_) = 0;
  std::uint64_t last_repairs_ OCTO_GUARDED_BY(mu_) = 0;
};

}  // namespace halo::detail

// Escalation bookkeeping: which weak points a cycle saw again, which it no longer sees, and what
// the repairs' outcomes changed.
#include <algorithm>
#include <atomic>
#include <cassert>

#include "detail/engine_internals.hpp"
#include "detail/parallel.hpp"
#include "detail/safety_rails.hpp"
#include "detail/subject_types.hpp"
#include "halo/engine.hpp"

namespace halo {

using octo::detail::LockGuard;

namespace {

Level raise(Level l, std::uint32_t levels) {
  const int v = std::min<int>(static_cast<int>(Level::kCritical),
                              static_cast<int>(l) + static_cast<int>(levels));
  return static_cast<Level>(v);
}

}  // namespace

std::uint64_t Engine::analyzer_bit(std::string_view name) {
  for (const auto& [n, bit] : analyzer_bits_)
    if (n == name) return bit;
  // Past 63 names the rest share the top bit: such weak points are forgotten only when all of
  // those analyzers ran, which is conservative.
  const std::uint64_t bit = std::uint64_t{1} << std::min<std::size_t>(analyzer_bits_.size(), 63);
  analyzer_bits_.emplace_back(std::string(name), bit);
  return bit;
}

void Engine::track(CycleResult& cycle, std::uint64_t seq, detail::TypeCounts& unhealthy,
                   std::vector<Event>* events) {
  LockGuard lock(mu_);
  apply_track_updates();
  // The parallel part below reads and writes these under mu_, held by this thread for it; the
  // analysis does not follow lock ownership into the tasks, so they go by pointer.
  auto* const tracked = &tracked_;
  const auto* const analyzer_bits = &analyzer_bits_;
  std::uint64_t ran = 0;
  for (const auto& a : cycle.analysis) ran |= analyzer_bit(a.name);
  auto& wps = cycle.weak_points;
  assert(std::is_sorted(wps.begin(), wps.end(), [](const WeakPoint& a, const WeakPoint& b) {
    return a.fingerprint < b.fingerprint;
  }));
  std::array<std::size_t, kTrackShards + 1> bounds{};
  for (std::size_t s = 1; s < kTrackShards; ++s) {
    bounds[s] = static_cast<std::size_t>(
        std::partition_point(wps.begin(), wps.end(),
                             [s](const WeakPoint& wp) { return track_shard(wp.fingerprint) < s; }) -
        wps.begin());
  }
  bounds[kTrackShards] = wps.size();
  // An issue naming an analyzer that has no bit yet (a user analyzer may name another) is seen
  // to after the parallel part, which must not grow analyzer_bits_. This cycle's weak points are
  // not forgotten below, so their entries are still there then.
  std::atomic<bool> unnamed{false};
  auto bits_of = [&](const WeakPoint& wp) {
    std::uint64_t bits = 0;
    for (const auto& i : wp.issues) {
      auto it = std::find_if(analyzer_bits->begin(), analyzer_bits->end(),
                             [&](const auto& nb) { return nb.first == i.analyzer; });
      if (it != analyzer_bits->end()) {
        bits |= it->second;
      } else {
        unnamed.store(true, std::memory_order_relaxed);  // read after the parallel part joins
      }
    }
    return bits;
  };
  // Per shard, summed after the parallel part.
  std::array<detail::TypeCounts, kTrackShards> by_type{};
  // Per shard, joined after it; each shard keeps at most its share of the queue's bound.
  std::array<std::vector<Event>, kTrackShards> noticed;
  constexpr std::size_t kNoticedPerShard = kEventQueue / kTrackShards;
  const auto wall = std::chrono::system_clock::now();
  auto notice = [&](std::size_t shard, EventKind kind, const WeakPoint& wp) {
    if (noticed[shard].size() >= kNoticedPerShard) return;
    noticed[shard].push_back(Event{.kind = kind,
                                   .when = wall,
                                   .weak_point = wp.id,
                                   .subject_type = wp.subject_type,
                                   .subject_id = wp.subject_id,
                                   .reason = wp.summary,
                                   .cycle_id = cycle.id,
                                   .severity = wp.severity,
                                   .state = wp.state});
  };
  auto shards = [&](std::size_t sb, std::size_t se) {
    for (std::size_t s = sb; s != se; ++s) {
      auto& map = (*tracked)[s];
      for (std::size_t k = bounds[s]; k != bounds[s + 1]; ++k) {
        WeakPoint& wp = wps[k];
        ++by_type[s][detail::subject_type_index(wp.subject_type)];
        Tracked& t = map[wp.fingerprint];
        t.cycles_seen += 1;
        t.last_seen = seq;
        t.analyzers = bits_of(wp);
        wp.cycles_seen = t.cycles_seen;
        wp.escalation = t.failure_escalation + (t.cycles_seen >= config_.escalate_after ? 1 : 0);
        wp.severity = raise(wp.base_severity, wp.escalation);
        if (events != nullptr) {
          if (t.cycles_seen == 1) notice(s, EventKind::kWeakPointOpened, wp);
          if (wp.severity == Level::kCritical && t.severity != Level::kCritical)
            notice(s, EventKind::kWeakPointCritical, wp);
        }
        t.severity = wp.severity;
      }
      // Forget weak points this cycle could have seen but did not: they are healthy again.
      std::erase_if(map, [&](const auto& kv) {
        return kv.second.last_seen != seq && (kv.second.analyzers & ~ran) == 0;
      });
    }
  };
  if (wps.size() >= detail::kParallelMin) {
    arena_->arena.execute([&] { detail::parallel_ranges(kTrackShards, 1, shards); });
  } else {
    shards(0, kTrackShards);
  }
  for (const auto& counts : by_type)
    for (std::size_t t = 0; t < counts.size(); ++t) unhealthy[t] += counts[t];
  if (events != nullptr)
    for (auto& shard : noticed)
      for (Event& e : shard) events->push_back(std::move(e));
  if (unnamed.load(std::memory_order_relaxed)) {
    for (const WeakPoint& wp : wps) {
      Tracked& t = tracked_[track_shard(wp.fingerprint)][wp.fingerprint];
      for (const auto& i : wp.issues) t.analyzers |= analyzer_bit(i.analyzer);
    }
  }
}

void Engine::apply_track_updates() const {
  std::vector<detail::TrackUpdate> updates;
  rails_->take_track_updates(updates);
  for (const detail::TrackUpdate& u : updates) {
    auto& map = tracked_[track_shard(u.fingerprint)];
    if (u.healed) {
      map.erase(u.fingerprint);
    } else if (auto t = map.find(u.fingerprint); t != map.end()) {
      t->second.failure_escalation += 1;
    }
  }
}

}  // namespace halo

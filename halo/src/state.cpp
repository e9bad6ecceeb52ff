#include "halo/state.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <stdexcept>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace halo {

namespace {

std::uint64_t next_state_instance() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// The per-thread endpoint lookup cache of SystemState::endpoint(): direct-mapped by hash.
struct EndpointCache {
  static constexpr std::size_t kSlots = 512;
  struct Entry {
    std::uint64_t instance = 0;
    std::uint64_t removals = 0;
    std::uint64_t hash = 0;
    EndpointCounters* counters = nullptr;
    std::string path;
  };
  std::array<Entry, kSlots> slots{};
};

EndpointCache& endpoint_cache() {
  // Allocated on the thread's first lookup, freed with the thread.
  thread_local const std::unique_ptr<EndpointCache> cache = std::make_unique<EndpointCache>();
  return *cache;
}

void require_id(std::string_view what, std::string_view id) {
  if (id.empty())
    throw std::invalid_argument(std::string("halo::SystemState: empty ") + std::string(what) +
                                " id");
}

void require_graft_status(GraftStatus s) {
  if (s != GraftStatus::kInstalled && s != GraftStatus::kPending && s != GraftStatus::kFailed)
    throw std::invalid_argument("halo::SystemState: graft status " +
                                std::to_string(static_cast<int>(s)) + " is not one of the three");
}

void require_check(std::string_view kind, const Check& c) {
  if (c.name.empty())
    throw std::invalid_argument("halo::SystemState: " + std::string(kind) +
                                " check with an empty name");
  if (!c.run)
    throw std::invalid_argument("halo::SystemState: " + std::string(kind) + " check '" + c.name +
                                "' has no callable");
}

std::shared_ptr<const std::vector<Check>> with_check(
    const std::shared_ptr<const std::vector<Check>>& old, Check check) {
  auto next = std::make_shared<std::vector<Check>>(*old);
  for (auto& c : *next) {
    if (c.name == check.name) {
      c = std::move(check);
      return next;
    }
  }
  next->push_back(std::move(check));
  return next;
}

}  // namespace

std::string_view to_string(Level l) noexcept {
  switch (l) {
    case Level::kInfo:
      return "info";
    case Level::kLow:
      return "low";
    case Level::kMedium:
      return "medium";
    case Level::kHigh:
      return "high";
    case Level::kCritical:
      return "critical";
  }
  return "?";
}

Level parse_level(std::string_view text) {
  for (Level l : {Level::kInfo, Level::kLow, Level::kMedium, Level::kHigh, Level::kCritical})
    if (to_string(l) == text) return l;
  throw std::invalid_argument("halo::parse_level: unknown level '" + std::string(text) +
                              "' (expected info, low, medium, high or critical)");
}

std::string_view Issue::get(std::string_view key) const noexcept {
  for (const auto& [k, v] : data)
    if (k == key) return v;
  return {};
}

std::string_view to_string(GraftStatus s) noexcept {
  switch (s) {
    case GraftStatus::kInstalled:
      return "installed";
    case GraftStatus::kPending:
      return "pending";
    case GraftStatus::kFailed:
      return "failed";
  }
  return "?";
}

std::string_view to_string(CheckStatus s) noexcept {
  switch (s) {
    case CheckStatus::kGreen:
      return "green";
    case CheckStatus::kAmber:
      return "amber";
    case CheckStatus::kRed:
      return "red";
  }
  return "?";
}

double LatencyWindow::quantile_ms(double q) const noexcept {
  const int b = Buckets::quantile_bucket(counts, count, q);
  return b < 0 ? 0.0 : static_cast<double>(Buckets::midpoint(b)) / 1000.0;
}

double LatencyWindow::max_ms() const noexcept {
  const int b = Buckets::top_bucket(counts);
  return b < 0 ? 0.0 : static_cast<double>(Buckets::midpoint(b)) / 1000.0;
}

std::uint64_t LatencyWindow::count_at_most(double bound_ms) const noexcept {
  // Latencies are whole microseconds: a bound in between counts the buckets up to its floor.
  const double bound_us = std::floor(bound_ms * 1000.0);
  if (!(bound_us >= 0.0)) return 0;
  const double top = static_cast<double>(Buckets::kMaxValue);
  return Buckets::count_at_most(
      counts, bound_us >= top ? Buckets::kMaxValue : static_cast<std::uint64_t>(bound_us));
}

bool LatencyWindow::quantile_exceeds_ms(double q, double bound_ms) const noexcept {
  const int b = Buckets::quantile_bucket(counts, count, q);
  if (b < 0) return false;
  // Latencies are whole microseconds: every one in the bucket is >= its lower edge.
  return static_cast<double>(Buckets::lower(b)) > bound_ms * 1000.0;
}

EndpointCounters::EndpointCounters(const octo::Ticker& ticker, std::chrono::nanoseconds window)
    : epoch_(&ticker.epoch_word()),
      // 15 buckets asked for: the counter makes 15 to 31 of them, so its ring is 32 rows.
      counts_(ticker, {.window = window,
                       .buckets = 15,
                       .lanes = 3,
                       .tallies = static_cast<std::uint32_t>(LatencyWindow::Buckets::kCount)}),
      slot_epochs_([&] {
        // A slot is window / kLatencySlots rounded up to whole buckets: a bucket's start is the
        // only point where every thread leaves its fast path (see rows_slow()).
        const auto bucket =
            static_cast<std::uint64_t>(counts_.bucket_width() / ticker.resolution());
        const std::uint64_t buckets = (counts_.buckets() + kLatencySlots - 1) / kLatencySlots;
        return std::max<std::uint64_t>(1, bucket) * buckets;
      }()) {
  // The origin, all zero: taken here, before any record could race with it.
  const std::uint64_t start = epoch_->load(std::memory_order_relaxed) / slot_epochs_ * slot_epochs_;
  snapshots_[0].counts = std::make_unique<std::uint32_t[]>(LatencyWindow::Buckets::kCount);
  snapshots_[0].epoch = start;
  newest_ = 0;
  next_snapshot_epoch_.store(start + slot_epochs_, std::memory_order_relaxed);
}

octo::WindowCounter::Rows EndpointCounters::rows_slow() noexcept {
  // Before this record is counted, so the snapshot holds the slot's start.
  if (epoch_->load(std::memory_order_relaxed) >=
      next_snapshot_epoch_.load(std::memory_order_relaxed))
    snapshot_if_due();
  return counts_.rows();
}

void EndpointCounters::snapshot_if_due() noexcept {
  std::unique_lock lock(hist_mu_, std::try_to_lock);
  // Busy: another thread is taking it (or reading); this slot's snapshot is theirs to take.
  if (!lock.owns_lock()) return;
  snapshot_locked(epoch_->load(std::memory_order_relaxed));
}

void EndpointCounters::snapshot_locked(std::uint64_t epoch) const noexcept {
  if (epoch < next_snapshot_epoch_.load(std::memory_order_relaxed)) return;
  const std::uint64_t start = epoch / slot_epochs_ * slot_epochs_;
  const std::size_t next = (newest_ + 1) % snapshots_.size();
  Snapshot& snap = snapshots_[next];
  if (snap.counts == nullptr) {
    snap.counts.reset(new (std::nothrow) std::uint32_t[LatencyWindow::Buckets::kCount]);
    if (snap.counts == nullptr) return;  // out of memory: the window stretches back further
  }
  counts_.read_tallies({snap.counts.get(), LatencyWindow::Buckets::kCount});
  if (totals_ != nullptr) {
    const std::uint32_t* prev = snapshots_[newest_].counts.get();
    for (std::size_t b = 0; b < static_cast<std::size_t>(LatencyWindow::Buckets::kCount); ++b) {
      // Modulo 2^32: exact while fewer than 2^32 latencies fall in one bucket within a slot.
      totals_[b] += static_cast<std::uint32_t>(snap.counts[b] - prev[b]);
    }
  }
  snap.epoch = start;
  newest_ = next;
  next_snapshot_epoch_.store(start + slot_epochs_, std::memory_order_relaxed);
}

LatencyWindow EndpointCounters::latency() const {
  constexpr auto kCount = static_cast<std::size_t>(LatencyWindow::Buckets::kCount);
  std::array<std::uint32_t, kCount> now{};
  std::lock_guard lock(hist_mu_);
  const std::uint64_t epoch = epoch_->load(std::memory_order_relaxed);
  snapshot_locked(epoch);
  counts_.read_tallies(now);
  // The base: the histogram as it stood at `oldest`, the start of the slot kLatencySlots slots
  // ago. That is the oldest snapshot from then on: a slot without a snapshot had no record (its
  // first record would have taken one), so the state at its start is the next snapshot's. The
  // ring holds them all (at most kLatencySlots + 1 slots start from `oldest` on), and the one just
  // taken is among them. A mark from then on, taken after its slot's snapshot, replaces it.
  const std::uint64_t slot_start = epoch / slot_epochs_ * slot_epochs_;
  const std::uint64_t oldest =
      slot_start >= kLatencySlots * slot_epochs_ ? slot_start - kLatencySlots * slot_epochs_ : 0;
  const Snapshot* base = nullptr;
  for (const Snapshot& s : snapshots_) {
    if (s.counts != nullptr && s.epoch >= oldest && (base == nullptr || s.epoch < base->epoch))
      base = &s;
  }
  if (mark_.counts != nullptr && mark_.epoch >= oldest &&
      (base == nullptr || mark_.epoch >= base->epoch))
    base = &mark_;
  LatencyWindow w;
  w.counts.resize(kCount);
  for (std::size_t b = 0; b < kCount; ++b) {
    // Modulo 2^32: exact while fewer than 2^32 latencies fall in one bucket within a window.
    const std::uint32_t d = base == nullptr ? now[b] : now[b] - base->counts[b];
    w.counts[b] = d;
    w.count += d;
  }
  if (w.count == 0) w.counts.clear();
  return w;
}

LatencyWindow EndpointCounters::latency_total() const {
  constexpr auto kCount = static_cast<std::size_t>(LatencyWindow::Buckets::kCount);
  std::array<std::uint32_t, kCount> now{};
  std::lock_guard lock(hist_mu_);
  snapshot_locked(epoch_->load(std::memory_order_relaxed));
  const std::uint32_t* newest = snapshots_[newest_].counts.get();
  if (totals_ == nullptr) {
    // From zero: the tallies hold every latency so far (exact unless a bucket passed 2^32).
    totals_ = std::make_unique<std::uint64_t[]>(kCount);
    for (std::size_t b = 0; b < kCount; ++b) totals_[b] = newest[b];
  }
  counts_.read_tallies(now);
  LatencyWindow w;
  w.counts.resize(kCount);
  for (std::size_t b = 0; b < kCount; ++b) {
    w.counts[b] = totals_[b] + static_cast<std::uint32_t>(now[b] - newest[b]);
    w.count += w.counts[b];
  }
  if (w.count == 0) w.counts.clear();
  return w;
}

std::uint64_t EndpointCounters::count(std::uint32_t lane) const {
  // Relaxed: the mark is a hint about which buckets to count; a reader that misses a fresh
  // mark counts the old window once more.
  const std::uint64_t m = marked_bucket_.load(std::memory_order_relaxed);
  return m == kUnmarked ? counts_.sum(lane) : counts_.sum_after(m, lane);
}

EndpointCounters::WindowCounts EndpointCounters::window_counts() const {
  std::array<std::uint64_t, 3> c{};
  // Relaxed: as in count().
  const std::uint64_t m = marked_bucket_.load(std::memory_order_relaxed);
  if (m == kUnmarked) {
    counts_.sums(c);
  } else {
    counts_.sums_after(m, c);
  }
  return {.requests = c[kRequests], .errors = c[kErrors], .latency_sum_us = c[kLatencyUs]};
}

std::uint64_t EndpointCounters::requests() const { return count(kRequests); }
std::uint64_t EndpointCounters::errors() const { return count(kErrors); }

std::uint64_t EndpointCounters::total_latency_sum_us() const { return counts_.total(kLatencyUs); }

double EndpointCounters::mean_latency_ms() const { return window_counts().mean_latency_ms(); }

void EndpointCounters::mark() noexcept {
  marked_bucket_.store(counts_.current_bucket(), std::memory_order_relaxed);
  std::lock_guard lock(hist_mu_);
  const std::uint64_t epoch = epoch_->load(std::memory_order_relaxed);
  // The slot's snapshot first: a record that found the mutex taken by this call left it to us.
  snapshot_locked(epoch);
  if (mark_.counts == nullptr) {
    mark_.counts.reset(new (std::nothrow) std::uint32_t[LatencyWindow::Buckets::kCount]);
    if (mark_.counts == nullptr) return;  // out of memory: percentiles keep the whole window
  }
  counts_.read_tallies({mark_.counts.get(), LatencyWindow::Buckets::kCount});
  mark_.epoch = epoch;
}

std::optional<std::string> checksum_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  XXH3_state_t* st = XXH3_createState();
  if (st == nullptr) return std::nullopt;
  XXH3_64bits_reset(st);
  char buf[64 * 1024];
  while (in) {
    in.read(buf, sizeof buf);
    if (in.gcount() > 0) XXH3_64bits_update(st, buf, static_cast<std::size_t>(in.gcount()));
  }
  const bool failed = in.bad();
  const XXH64_hash_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  if (failed) return std::nullopt;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string(hex, 16);
}

SystemState::SystemState(std::shared_ptr<const octo::Clock> clock, const octo::Ticker* ticker,
                         std::chrono::nanoseconds endpoint_window)
    : clock_(clock ? std::move(clock) : std::make_shared<octo::SteadyClock>()),
      ticker_(ticker ? *ticker : octo::Ticker::shared()),
      endpoint_window_(endpoint_window),
      env_(std::make_shared<EnvState>()),
      integrity_checks_(std::make_shared<std::vector<Check>>()),
      patrol_checks_(std::make_shared<std::vector<Check>>()),
      instance_(next_state_instance()) {}

void SystemState::upsert_agent(AgentInfo agent) {
  require_id("agent", agent.id);
  const auto now = clock_->now();
  std::lock_guard lock(mu_);
  bool inserted = false;
  AgentInfo& a = agents_.upsert(agent.id, &inserted);
  const bool was_present = !inserted && a.present;
  if (agent.last_heartbeat.count() == 0) agent.last_heartbeat = inserted ? now : a.last_heartbeat;
  agent.present = true;
  a = std::move(agent);
  if (!was_present) ++agents_present_;
}

bool SystemState::heartbeat(std::string_view id) { return heartbeat(id, clock_->now()); }

bool SystemState::heartbeat(std::string_view id, std::chrono::nanoseconds when) {
  std::lock_guard lock(mu_);
  AgentInfo* a = agents_.find(id);
  if (a == nullptr || !a->present) return false;
  a->last_heartbeat = when;
  return true;
}

bool SystemState::set_agent_online(std::string_view id, bool online) {
  std::lock_guard lock(mu_);
  AgentInfo* a = agents_.find(id);
  if (a == nullptr || !a->present) return false;
  a->online = online;
  return true;
}

bool SystemState::remove_agent(std::string_view id) {
  std::lock_guard lock(mu_);
  AgentInfo* a = agents_.find(id);
  if (a == nullptr || !a->present) return false;
  a->present = false;
  --agents_present_;
  return true;
}

std::optional<AgentInfo> SystemState::agent(std::string_view id) const {
  std::lock_guard lock(mu_);
  const AgentInfo* a = agents_.find_const(id);
  if (a == nullptr || !a->present) return std::nullopt;
  return *a;
}

void SystemState::upsert_squad(SquadInfo squad) {
  require_id("squad", squad.id);
  std::lock_guard lock(mu_);
  SquadInfo& s = squads_.upsert(squad.id);
  squad.present = true;
  squad.completed_before = std::min(s.completed_before, squad.completed);
  squad.failed_before = std::min(s.failed_before, squad.failed);
  s = std::move(squad);
}

void SystemState::record_squad_task(std::string_view id, bool ok, double duration_ms) {
  require_id("squad", id);
  std::lock_guard lock(mu_);
  SquadInfo& s = squads_.upsert(id);
  const double n = static_cast<double>(s.completed + s.failed);
  s.average_duration_ms = (s.average_duration_ms * n + duration_ms) / (n + 1.0);
  (ok ? s.completed : s.failed) += 1;
}

EndpointCounters& SystemState::endpoint(std::string_view path) {
  EndpointCache& cache = endpoint_cache();
  const std::uint64_t hash = XXH3_64bits(path.data(), path.size());
  EndpointCache::Entry& slot = cache.slots[hash & (EndpointCache::kSlots - 1)];
  // Acquire: pairs with remove_endpoint's release increment, so a thread that sees the count
  // unchanged since it cached the path has not missed a removal made before it.
  const std::uint64_t removals = endpoint_removals_.load(std::memory_order_acquire);
  // The path compared last, as bytes: string == string_view goes through a three-way compare.
  if (slot.counters != nullptr && slot.hash == hash && slot.instance == instance_ &&
      slot.removals == removals && slot.path.size() == path.size() &&
      std::memcmp(slot.path.data(), path.data(), path.size()) == 0) {
    return *slot.counters;
  }
  EndpointCounters& c = endpoint_slow(path);
  slot.instance = instance_;
  slot.removals = removals;
  slot.hash = hash;
  slot.path.assign(path);
  slot.counters = &c;
  return c;
}

EndpointCounters& SystemState::endpoint_slow(std::string_view path) {
  require_id("endpoint", path);
  std::lock_guard lock(mu_);
  auto it = counters_.find(path);
  if (it != counters_.end()) {
    // Looked at without copying: upsert() would copy a chunk a snapshot shares.
    const EndpointInfo* seen = endpoints_.find_const(path);
    if (seen == nullptr || !seen->present) {
      // Re-created after remove_endpoint: present again, counting from now.
      it->second->mark();
      EndpointInfo& e = endpoints_.upsert(path);
      e.counters = it->second;
      e.present = true;
    }
    return *it->second;
  }
  auto c = std::make_shared<EndpointCounters>(ticker_, endpoint_window_);
  counters_.emplace(std::string(path), c);
  EndpointInfo& e = endpoints_.upsert(path);
  e.counters = c;
  e.present = true;
  return *c;
}

void SystemState::report_probe(std::string_view path, int status, double duration_ms) {
  require_id("endpoint", path);
  const auto now = clock_->now();
  std::lock_guard lock(mu_);
  EndpointInfo& e = endpoints_.upsert(path);
  e.probe = ProbeResult{status, duration_ms, now};
  e.present = true;
}

bool SystemState::remove_endpoint(std::string_view path) {
  std::lock_guard lock(mu_);
  EndpointInfo* e = endpoints_.find(path);
  if (e == nullptr || !e->present) return false;
  e->present = false;
  endpoint_removals_.fetch_add(1, std::memory_order_release);
  return true;
}

void SystemState::set_env_baseline(std::map<std::string, std::string> baseline) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<EnvState>(*env_);
  next->baseline = std::move(baseline);
  env_ = std::move(next);
}

void SystemState::set_env_snapshot(std::string_view name,
                                   std::map<std::string, std::string> values) {
  require_id("environment snapshot", name);
  const auto now = clock_->now();
  std::lock_guard lock(mu_);
  auto next = std::make_shared<EnvState>(*env_);
  next->snapshots[std::string(name)] = std::move(values);
  next->reported_at[std::string(name)] = now;
  env_ = std::move(next);
}

EnvState SystemState::env() const {
  std::lock_guard lock(mu_);
  return *env_;
}

void SystemState::add_artifact(std::string_view path, std::string expected) {
  require_id("artifact", path);
  const bool hex =
      expected.size() == 16 && expected.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!hex)
    throw std::invalid_argument("halo::SystemState: checksum '" + expected + "' for artifact '" +
                                std::string(path) +
                                "' is not 16 lowercase hex digits (use halo::checksum_file)");
  std::lock_guard lock(mu_);
  ArtifactInfo& a = artifacts_.upsert(path);
  a.expected = std::move(expected);
  a.present = true;
}

bool SystemState::remove_artifact(std::string_view path) {
  std::lock_guard lock(mu_);
  ArtifactInfo* a = artifacts_.find(path);
  if (a == nullptr || !a->present) return false;
  a->present = false;
  return true;
}

void SystemState::upsert_graft(GraftInfo graft) {
  require_id("graft", graft.id);
  require_graft_status(graft.status);
  const auto now = clock_->now();
  std::lock_guard lock(mu_);
  GraftInfo& g = grafts_.upsert(graft.id);
  graft.present = true;
  graft.reported_at = now;
  g = std::move(graft);
}

bool SystemState::set_graft_status(std::string_view id, GraftStatus status, std::string error) {
  require_graft_status(status);
  const auto now = clock_->now();
  std::lock_guard lock(mu_);
  GraftInfo* g = grafts_.find(id);
  if (g == nullptr || !g->present) return false;
  g->status = status;
  g->reported_at = now;
  g->error = std::move(error);
  return true;
}

void SystemState::add_integrity_check(Check check) {
  require_check("integrity", check);
  std::lock_guard lock(mu_);
  integrity_checks_ = with_check(integrity_checks_, std::move(check));
}

void SystemState::add_patrol_check(Check check) {
  require_check("patrol", check);
  std::lock_guard lock(mu_);
  patrol_checks_ = with_check(patrol_checks_, std::move(check));
}

std::shared_ptr<const Snapshot> SystemState::snapshot() const {
  auto s = std::make_shared<Snapshot>();
  std::lock_guard lock(mu_);
  // Under the lock, so no heartbeat in the snapshot is newer than the snapshot itself.
  s->taken_at = clock_->now();
  s->agents = agents_.freeze();
  s->squads = squads_.freeze();
  s->endpoints = endpoints_.freeze();
  s->artifacts = artifacts_.freeze();
  s->grafts = grafts_.freeze();
  s->env = env_;
  s->integrity_checks = integrity_checks_;
  s->patrol_checks = patrol_checks_;
  s->agent_count = agents_present_;
  return s;
}

std::optional<std::chrono::nanoseconds> SystemState::evidence_at(const Snapshot& snapshot,
                                                                 std::string_view subject_type,
                                                                 std::string_view subject_id,
                                                                 EvidenceNeeds needs) const {
  using std::chrono::nanoseconds;
  // Slots are stable: an entry's slot in the live table is its index in every snapshot taken
  // since it was added (a newer entry is past the snapshot's end).
  auto slot = [&](const auto& table, std::size_t size) -> std::optional<std::size_t> {
    std::lock_guard lock(mu_);
    auto s = table.slot_of(subject_id);
    if (!s || *s >= size) return std::nullopt;
    return *s;
  };
  if (subject_type == "agent") {
    auto s = slot(agents_, snapshot.agents.size());
    if (!s) return std::nullopt;
    return snapshot.agents[*s].last_heartbeat;
  }
  if (subject_type == "endpoint") {
    auto s = slot(endpoints_, snapshot.endpoints.size());
    if (!s) return std::nullopt;
    const EndpointInfo& e = snapshot.endpoints[*s];
    nanoseconds at{-1};
    if (e.probe) at = e.probe->when;
    if (e.counters && e.counters->requests() >= std::max<std::uint64_t>(needs.min_requests, 1))
      at = std::max(at, snapshot.taken_at);
    return at;
  }
  if (subject_type == "graft") {
    auto s = slot(grafts_, snapshot.grafts.size());
    if (!s) return std::nullopt;
    return snapshot.grafts[*s].reported_at;
  }
  if (subject_type == "squad") {
    auto s = slot(squads_, snapshot.squads.size());
    if (!s) return std::nullopt;
    const SquadInfo& q = snapshot.squads[*s];
    const std::uint64_t since = (q.completed - q.completed_before) + (q.failed - q.failed_before);
    return since >= std::max<std::uint64_t>(needs.min_squad_tasks, 1) ? snapshot.taken_at
                                                                      : nanoseconds{-1};
  }
  if (subject_type == "env") {
    if (!snapshot.env) return std::nullopt;
    auto it = snapshot.env->reported_at.find(std::string(subject_id));
    if (it == snapshot.env->reported_at.end()) return std::nullopt;
    return it->second;
  }
  return snapshot.taken_at;
}

bool SystemState::holds(const Snapshot& snapshot, std::string_view subject_type,
                        std::string_view subject_id) const {
  auto present = [&](const auto& live, const auto& table) {
    std::optional<std::size_t> s;
    {
      std::lock_guard lock(mu_);
      s = live.slot_of(subject_id);
    }
    // Slots are stable (see evidence_at): a newer entry is past the snapshot's end.
    return s && *s < table.size() && table[*s].present;
  };
  if (subject_type == "agent") return present(agents_, snapshot.agents);
  if (subject_type == "endpoint") return present(endpoints_, snapshot.endpoints);
  if (subject_type == "squad") return present(squads_, snapshot.squads);
  if (subject_type == "artifact") return present(artifacts_, snapshot.artifacts);
  if (subject_type == "graft") return present(grafts_, snapshot.grafts);
  return true;
}

void SystemState::mark_repaired(std::string_view subject_type, std::string_view subject_id) {
  std::lock_guard lock(mu_);
  if (subject_type == "endpoint") {
    if (auto it = counters_.find(subject_id); it != counters_.end()) it->second->mark();
  } else if (subject_type == "squad") {
    if (SquadInfo* q = squads_.find(subject_id)) {
      q->completed_before = q->completed;
      q->failed_before = q->failed;
    }
  }
}

}  // namespace halo

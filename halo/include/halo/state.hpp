// halo/state.hpp — what the service tells HALO about itself, and the snapshots analyzers read.
//
// SystemState is fed from any thread: agents and their heartbeats, squads, endpoints (their own
// window counters and/or probe results), environment snapshots against a baseline, artifacts
// with expected checksums, named checks, grafts and swarm-patrol checks. snapshot() returns an
// immutable, consistent picture in O(chunks) time (see detail/cow_table.hpp): a running cycle
// never blocks writers, and writers never change what a cycle is reading.
//
//   halo::SystemState state;
//   state.upsert_agent({.id = "a-17", .name = "dreamops-17", .squad = "s-1"});
//   state.heartbeat("a-17");
//   auto& orders = state.endpoint("/api/orders");    // a handle: take it once and keep it
//   orders.record(elapsed, failed);                  // per request (a std::chrono duration:
//                                                    // the fastest form; or double ms)
//   auto p99 = orders.latency().quantile_ms(0.99);   // windowed percentiles
//   state.add_artifact("/srv/app/bin/server", halo::checksum_file("/srv/app/bin/server").value());
//
// Times are nanoseconds on the state's clock (octo::SteadyClock unless one is given).
#pragma once

#include <algorithm>
#include <array>
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

#include "halo/detail/cow_table.hpp"
#include "halo/issue.hpp"
#include "octo/clock.hpp"
#include "octo/ticker.hpp"
#include "octo/window_counter.hpp"
#include "octo/windowed_histogram.hpp"

namespace halo {

struct AgentInfo {
  std::string id{};
  std::string name{};
  std::string squad{};
  bool online = true;
  // Clock time of the last heartbeat; set to "now" when the agent is first added.
  std::chrono::nanoseconds last_heartbeat{0};
  bool present = true;  // false once removed (the slot stays, skipped by analyzers)
};

struct SquadInfo {
  std::string id{};
  std::uint64_t running = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  double average_duration_ms = 0.0;
  // The counts when a repair of the squad last finished: analyzers judge the tasks since then
  // (SystemState keeps them across upsert_squad).
  std::uint64_t completed_before = 0;
  std::uint64_t failed_before = 0;
  bool present = true;
};

// An endpoint's request latencies over its window, bucketed (EndpointCounters::latency()).
struct LatencyWindow {
  // Microseconds, 8 buckets per power of two up to 2^32 us (71 minutes; longer counts there):
  // a reported value is within 1/16 (6.25%) of the latencies in its bucket.
  using Buckets = octo::LogLinearBuckets<3, 32>;
  std::vector<std::uint64_t> counts;  // Buckets::kCount entries, or empty when count == 0
  std::uint64_t count = 0;

  // The q-quantile (q in [0, 1], clamped) in ms, as its bucket's midpoint; 0 when empty. The
  // rank is ceil(q * count), as in a sorted list of the window's latencies.
  double quantile_ms(double q) const noexcept;
  // The largest latency, within the same error; 0 when empty.
  double max_ms() const noexcept;
  // Latencies of at most `bound_ms`: every bucket whose upper edge is at most the bound.
  std::uint64_t count_at_most(double bound_ms) const noexcept;
  // Whether the q-quantile is certainly slower than `bound_ms`: its bucket's every latency is
  // (false when empty). A quantile in the bound's own bucket is not, whatever its midpoint.
  bool quantile_exceeds_ms(double q, double bound_ms) const noexcept;
};

// The live traffic counters of one endpoint: requests, errors, latency sum and a latency
// histogram over a window. Record from any thread, taken once as a handle (SystemState::
// endpoint() returns it; keep the reference): one row of a three-lane WindowCounter (requests,
// errors, latency sum in us) and one histogram bucket among that thread's tallies, memory only
// the calling thread writes: no lock, no allocation after the thread's first record here.
// A latency that is negative or NaN counts as 0, one past 2^32 - 1 us (71.6 minutes, the
// histogram's top) as 2^32 - 1 us.
//
// Memory: per thread that records, about 2.1 KB (a 32-bucket ring of three counts and 240
// 32-bit histogram buckets, one allocation); per endpoint, up to 7 histogram snapshots of 960
// bytes and, once latency_total() is asked for, 1.9 KB. Measured (SystemStateStress.
// TenThousandEndpointsFromEightThreadsStayUnder256MiB): 10,000 endpoints from 8 threads, every
// snapshot and total taken, 250 MiB, 26 KB per endpoint.
//
// Windows: the counts' window is the WindowCounter's (15 or more buckets); the histogram's is
// kept as snapshots taken every latency_slot() (window / kLatencySlots rounded up to whole
// buckets) by the first record or read of each slot, so latency() covers between
// kLatencySlots and kLatencySlots + 1 slots, the first at least the window (a record made while
// its slot's snapshot is being taken may count with the slot before, and leave the window with
// it).
class EndpointCounters {
 public:
  static constexpr std::uint32_t kLatencySlots = 5;

  EndpointCounters(const octo::Ticker& ticker, std::chrono::nanoseconds window);
  // One request: its latency and whether it failed. The duration form is the cheaper (no
  // floating point); latencies count in whole microseconds, rounded to nearest.
  void record(std::chrono::nanoseconds latency, bool error) noexcept {
    // Clamped in nanoseconds (to 0 and to kMaxLatencyUs's), so the microseconds need no check.
    const std::int64_t ns = std::clamp<std::int64_t>(latency.count(), 0, kMaxLatencyNs);
    record_us((static_cast<std::uint64_t>(ns) + 500) / 1000, error);
  }
  void record(double latency_ms, bool error) noexcept {
    const double us = latency_ms * 1000.0;
    // `us > 0` is false for NaN; the cap keeps the conversion defined. For a positive `us`,
    // adding 0.5 and truncating rounds to nearest without llround's library call.
    record_us(
        us > 0
            ? (us < static_cast<double>(kMaxLatencyUs)
                   ? static_cast<std::uint64_t>(us + 0.5)  // NOLINT(bugprone-incorrect-roundings)
                   : kMaxLatencyUs)
            : 0,
        error);
  }
  // The window's requests, errors and latency sum read together: one pass over the threads'
  // rings, and the three from the same buckets (what an analyzer judging all three should call).
  struct WindowCounts {
    std::uint64_t requests = 0, errors = 0, latency_sum_us = 0;
    // Mean latency, 0 without requests.
    double mean_latency_ms() const noexcept {
      return requests == 0
                 ? 0.0
                 : static_cast<double>(latency_sum_us) / 1000.0 / static_cast<double>(requests);
    }
  };
  WindowCounts window_counts() const;
  // The window's requests and errors; after mark(), only those recorded after it.
  std::uint64_t requests() const;
  std::uint64_t errors() const;
  // Mean latency of the window's requests, 0 when there were none.
  double mean_latency_ms() const;
  // The window's latencies (after mark(), those recorded after it), for percentiles. Cold:
  // reads every recording thread's histogram (240 adds each) under the endpoint's mutex.
  LatencyWindow latency() const;
  // Every latency recorded here, all time (mark() does not apply), as 64-bit counts: for
  // cumulative exports such as a Prometheus histogram. The first call allocates 1.9 KB; from
  // then on every slot's snapshot folds the 32-bit tallies' growth in, so the counts stay exact
  // and never go down. Cold, as latency().
  LatencyWindow latency_total() const;
  // Every latency recorded here added up, all time, in microseconds.
  std::uint64_t total_latency_sum_us() const;
  // From now on the window counts only what is recorded after this call (bucket-exact: events
  // in the bucket being filled are left out; the histogram: exact), until the mark has aged out
  // of the window. HALO marks an endpoint when a repair of it finishes, so that older errors are
  // not taken for a failed repair.
  void mark() noexcept;
  // The window's length (the one asked for, rounded up to whole buckets).
  std::chrono::nanoseconds window() const noexcept { return counts_.window(); }
  // The counts' bucket: the granularity of their window and of mark() (window / 15 to / 31).
  std::chrono::nanoseconds bucket_width() const noexcept { return counts_.bucket_width(); }
  // The histogram's slot: window / kLatencySlots rounded up to whole buckets, so latency()
  // covers from kLatencySlots slots (at least the window) to one slot more.
  std::chrono::nanoseconds latency_slot() const noexcept {
    return counts_.bucket_width() * ((counts_.buckets() + kLatencySlots - 1) / kLatencySlots);
  }

 private:
  static constexpr std::uint64_t kUnmarked = ~std::uint64_t{0};
  static constexpr std::uint32_t kRequests = 0, kErrors = 1, kLatencyUs = 2;
  // The histogram's top value: a latency is capped here once, for its sum and its bucket.
  static constexpr std::uint64_t kMaxLatencyUs = LatencyWindow::Buckets::kMaxValue;
  static constexpr std::int64_t kMaxLatencyNs = static_cast<std::int64_t>(kMaxLatencyUs) * 1000;
  void record_us(std::uint64_t latency_us, bool error) noexcept {
    octo::WindowCounter::Rows rows = counts_.current_rows(epoch_->load(std::memory_order_relaxed));
    if (rows.row == nullptr) [[unlikely]] {
      rows = rows_slow();
      if (rows.row == nullptr) return;  // no memory for this thread's first record: dropped
    }
    octo::WindowCounter::add(rows.row[kRequests], 1);
    octo::WindowCounter::add(rows.row[kErrors], error ? 1 : 0);
    octo::WindowCounter::add(rows.row[kLatencyUs], latency_us);
    octo::WindowCounter::add(rows.tallies[LatencyWindow::Buckets::bucket_of_unclamped(latency_us)],
                             1U);
  }
  // The thread's first record, or its first in a new bucket: takes the histogram snapshot when
  // a slot has begun (slots are whole buckets, so every thread passes here first), then rows().
  octo::WindowCounter::Rows rows_slow() noexcept;
  // The histogram's tallies at the start of a slot (label: epoch / slot_epochs_), or at a mark.
  struct Snapshot {
    std::uint64_t epoch = 0;
    std::unique_ptr<std::uint32_t[]> counts;  // null: not taken
  };
  std::uint64_t count(std::uint32_t lane) const;
  void snapshot_if_due() noexcept;
  void snapshot_locked(std::uint64_t epoch) const noexcept;  // under hist_mu_

  const std::atomic<std::uint64_t>* epoch_;
  octo::WindowCounter counts_;  // lanes kRequests, kErrors, kLatencyUs; tallies: the histogram
  // The bucket that was filling at mark(), or kUnmarked.
  std::atomic<std::uint64_t> marked_bucket_{kUnmarked};
  std::uint64_t slot_epochs_;
  // First epoch of the slot after the newest snapshot's. Relaxed: a stale value
  // only sends a record to snapshot_if_due(), which checks again under the mutex.
  mutable std::atomic<std::uint64_t> next_snapshot_epoch_{0};
  mutable std::mutex hist_mu_;                                 // snapshots_, newest_, mark_
  mutable std::array<Snapshot, kLatencySlots + 1> snapshots_;  // a ring, oldest overwritten
  mutable std::size_t newest_ = kLatencySlots;                 // index of the newest
  Snapshot mark_;
  // latency_total()'s counts as of the newest snapshot (null until asked): each snapshot adds
  // its growth over the one before.
  mutable std::unique_ptr<std::uint64_t[]> totals_;
};

struct ProbeResult {
  int status = 0;  // HTTP status; 0 = unreachable
  double duration_ms = 0.0;
  std::chrono::nanoseconds when{0};
};

struct EndpointInfo {
  std::string id{};  // the path
  std::optional<ProbeResult> probe{};
  // Null when the endpoint only has probes. Live: analyzers read the window when they run.
  std::shared_ptr<const EndpointCounters> counters{};
  bool present = true;
};

struct ArtifactInfo {
  std::string id{};        // the file's path
  std::string expected{};  // checksum_file() format: 16 lowercase hex digits of XXH3-64
  bool present = true;
};

enum class GraftStatus : std::uint8_t { kInstalled, kPending, kFailed };
std::string_view to_string(GraftStatus s) noexcept;

struct GraftInfo {
  std::string id{};
  std::string name{};
  GraftStatus status = GraftStatus::kInstalled;
  std::string error{};
  // Clock time of the last upsert_graft / set_graft_status.
  std::chrono::nanoseconds reported_at{0};
  bool present = true;
};

struct EnvState {
  std::map<std::string, std::string> baseline{};
  // Named live snapshots ("prod", "canary", ...) compared against the baseline.
  std::map<std::string, std::map<std::string, std::string>> snapshots{};
  // Clock time each snapshot was last set.
  std::map<std::string, std::chrono::nanoseconds> reported_at{};
};

enum class CheckStatus : std::uint8_t { kGreen, kAmber, kRed };
std::string_view to_string(CheckStatus s) noexcept;

struct CheckResult {
  CheckStatus status = CheckStatus::kGreen;
  std::string message{};
};

// A check HALO runs each full cycle, in parallel with the others, under a timeout. A check that
// overruns counts as red ("timed out") and finishes on its own thread: what it captures must
// outlive it. A check that throws counts as red with the exception's message.
struct Check {
  std::string name{};
  std::function<CheckResult()> run{};
  // Repository-integrity checks only: the severity of a red result ("typecheck" kHigh, "lint"
  // kMedium in the original). Amber is one level lower.
  Level on_failure = Level::kHigh;
};

struct Snapshot {
  std::chrono::nanoseconds taken_at{0};
  Table<AgentInfo> agents;
  Table<SquadInfo> squads;
  Table<EndpointInfo> endpoints;
  Table<ArtifactInfo> artifacts;
  Table<GraftInfo> grafts;
  std::shared_ptr<const EnvState> env{};
  std::shared_ptr<const std::vector<Check>> integrity_checks{};
  std::shared_ptr<const std::vector<Check>> patrol_checks{};
  // Agents that are present (the blast-radius cap is a share of these).
  std::size_t agent_count = 0;
};

// The XXH3-64 checksum of a file's contents as 16 lowercase hex digits, or nullopt when the file
// cannot be read.
std::optional<std::string> checksum_file(const std::string& path);

class SystemState {
 public:
  // `ticker` drives the endpoints' windows; `clock` stamps heartbeats and snapshots.
  explicit SystemState(std::shared_ptr<const octo::Clock> clock = nullptr,
                       const octo::Ticker* ticker = nullptr,
                       std::chrono::nanoseconds endpoint_window = std::chrono::seconds(10));
  SystemState(const SystemState&) = delete;
  SystemState& operator=(const SystemState&) = delete;

  // Agents. Throws std::invalid_argument on an empty id.
  void upsert_agent(AgentInfo agent);
  // False when the agent is unknown. The no-time overload uses the state's clock.
  bool heartbeat(std::string_view id);
  bool heartbeat(std::string_view id, std::chrono::nanoseconds when);
  bool set_agent_online(std::string_view id, bool online);
  bool remove_agent(std::string_view id);
  std::optional<AgentInfo> agent(std::string_view id) const;

  // Squads.
  void upsert_squad(SquadInfo squad);
  // Counts one finished squad task; creates the squad when unknown.
  void record_squad_task(std::string_view id, bool ok, double duration_ms);

  // Endpoints: the live counters (created on first use; the reference stays valid for the
  // state's lifetime) and probe results. The lookup by path takes no lock once a thread has seen
  // the path: a per-thread cache (512 entries, direct-mapped on an XXH3 hash of the path, ~40 KiB
  // per thread that records) answers with one hash, one compare and one load; a miss, a new path
  // or one removed since takes the state's mutex. Taking the reference once and keeping it is
  // cheaper still (no hash). After remove_endpoint(path), endpoint(path) brings it back with a
  // fresh window (what was counted before the removal no longer counts), present again; a
  // reference taken before keeps recording into it.
  EndpointCounters& endpoint(std::string_view path);
  void report_probe(std::string_view path, int status, double duration_ms);
  bool remove_endpoint(std::string_view path);

  // Environment.
  void set_env_baseline(std::map<std::string, std::string> baseline);
  void set_env_snapshot(std::string_view name, std::map<std::string, std::string> values);
  EnvState env() const;

  // Artifacts: `expected` in checksum_file() format; throws std::invalid_argument otherwise.
  void add_artifact(std::string_view path, std::string expected);
  bool remove_artifact(std::string_view path);

  // Grafts.
  void upsert_graft(GraftInfo graft);
  bool set_graft_status(std::string_view id, GraftStatus status, std::string error = {});

  // Checks; a check with the same name replaces the old one. Throws std::invalid_argument on an
  // empty name or an empty callable.
  void add_integrity_check(Check check);
  void add_patrol_check(Check check);

  std::shared_ptr<const Snapshot> snapshot() const;
  std::chrono::nanoseconds now() const noexcept { return clock_->now(); }
  std::chrono::nanoseconds endpoint_window() const noexcept { return endpoint_window_; }

  // What HALO's verification reads. The newest time `snapshot` holds a report about the
  // subject: an agent's heartbeat, an endpoint's probe (or the snapshot's time when its window
  // holds at least `min_requests` requests after its mark), a graft's or environment
  // snapshot's report, a squad's time once it has `min_squad_tasks` tasks since its mark;
  // subjects a cycle re-examines itself (artifacts, checks, patrol checks, other types) have
  // the snapshot's time. nullopt for a known type whose subject the snapshot does not hold.
  // Takes the state's lock briefly; cost O(1) per call.
  struct EvidenceNeeds {
    std::uint64_t min_requests = 1;
    std::uint64_t min_squad_tasks = 1;
  };
  std::optional<std::chrono::nanoseconds> evidence_at(const Snapshot& snapshot,
                                                      std::string_view subject_type,
                                                      std::string_view subject_id,
                                                      EvidenceNeeds needs) const;
  // Whether `snapshot` holds a present subject of a table type (agent, endpoint, squad,
  // artifact, graft) with this id; true for every other type (environment snapshots, checks and
  // a service's own types are not tables). What the engine checks a service analyzer's claims
  // against. Takes the state's lock briefly; cost O(1).
  bool holds(const Snapshot& snapshot, std::string_view subject_type,
             std::string_view subject_id) const;
  // A repair of the subject finished: endpoints mark their window, squads their counts (see
  // EndpointCounters::mark, SquadInfo::completed_before); other types need nothing.
  void mark_repaired(std::string_view subject_type, std::string_view subject_id);
  const octo::Clock& clock() const noexcept { return *clock_; }

 private:
  std::shared_ptr<const octo::Clock> clock_;
  const octo::Ticker& ticker_;
  const std::chrono::nanoseconds endpoint_window_;
  // Held only to update or freeze; a snapshot copies chunk pointers, never entries.
  mutable std::mutex mu_;
  mutable detail::CowTable<AgentInfo> agents_;
  mutable detail::CowTable<SquadInfo> squads_;
  mutable detail::CowTable<EndpointInfo> endpoints_;
  mutable detail::CowTable<ArtifactInfo> artifacts_;
  mutable detail::CowTable<GraftInfo> grafts_;
  std::size_t agents_present_ = 0;
  std::shared_ptr<const EnvState> env_;
  std::shared_ptr<const std::vector<Check>> integrity_checks_;
  std::shared_ptr<const std::vector<Check>> patrol_checks_;
  std::map<std::string, std::shared_ptr<EndpointCounters>, std::less<>> counters_;
  // The per-thread endpoint cache's keys: this state (ids are never reused, addresses may be)
  // and how many endpoints were removed so far (a cached path removed since is looked up again).
  const std::uint64_t instance_;
  std::atomic<std::uint64_t> endpoint_removals_{0};
  EndpointCounters& endpoint_slow(std::string_view path);
};

}  // namespace halo

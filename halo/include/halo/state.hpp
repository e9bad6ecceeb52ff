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
//   state.endpoint("/api/orders").record(latency_ms, failed);
//   state.add_artifact("/srv/app/bin/server", halo::checksum_file("/srv/app/bin/server").value());
//
// Times are nanoseconds on the state's clock (octo::SteadyClock unless one is given).
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

#include "halo/detail/cow_table.hpp"
#include "halo/issue.hpp"
#include "octo/clock.hpp"
#include "octo/ticker.hpp"
#include "octo/window_counter.hpp"

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

// The live traffic counters of one endpoint: requests, errors and latency over a window. Record
// from any thread: one row of a three-lane WindowCounter (requests, errors, latency sum in us),
// in memory only the calling thread writes: no lock, no allocation after the thread's first
// record here, about 2 ns (bench_state). A latency that is negative or NaN counts as 0, one
// past 10^12 ms as 10^12 ms.
class EndpointCounters {
 public:
  EndpointCounters(const octo::Ticker& ticker, std::chrono::nanoseconds window);
  void record(double latency_ms, bool error) noexcept {
    std::atomic<std::uint64_t>* row = counts_.row();
    if (row == nullptr) [[unlikely]]
      return;  // no memory for this thread's first record: dropped
    const double us = latency_ms * 1000.0;
    // `us > 0` is false for NaN; the cap keeps the conversion defined. For a positive `us`,
    // adding 0.5 and truncating rounds to nearest without llround's library call.
    const std::uint64_t latency_us =
        us > 0
            ? (us < kMaxLatencyUs
                   ? static_cast<std::uint64_t>(us + 0.5)  // NOLINT(bugprone-incorrect-roundings)
                   : static_cast<std::uint64_t>(kMaxLatencyUs))
            : 0;
    octo::WindowCounter::add(row[kRequests], 1);
    octo::WindowCounter::add(row[kErrors], error ? 1 : 0);
    octo::WindowCounter::add(row[kLatencyUs], latency_us);
  }
  // The window's requests and errors; after mark(), only those recorded after it.
  std::uint64_t requests() const;
  std::uint64_t errors() const;
  // Mean latency of the window's requests, 0 when there were none.
  double mean_latency_ms() const;
  // From now on the window counts only what is recorded after this call (bucket-exact: events
  // in the bucket being filled are left out), until the mark has aged out of the window. HALO
  // marks an endpoint when a repair of it finishes, so that older errors are not taken for a
  // failed repair.
  void mark() noexcept;

 private:
  static constexpr std::uint64_t kUnmarked = ~std::uint64_t{0};
  static constexpr std::uint32_t kRequests = 0, kErrors = 1, kLatencyUs = 2;
  static constexpr double kMaxLatencyUs = 1e15;
  std::uint64_t count(std::uint32_t lane) const;

  octo::WindowCounter counts_;  // lanes kRequests, kErrors, kLatencyUs
  // The bucket that was filling at mark(), or kUnmarked.
  std::atomic<std::uint64_t> marked_bucket_{kUnmarked};
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

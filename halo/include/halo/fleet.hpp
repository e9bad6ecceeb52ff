// halo/fleet.hpp — the instances of one service, seen by each of their engines: verdicts on the
// subjects they share, one repair of each shared weak point across all of them, fleet-wide
// rails and silences.
//
// A subject is local (the instance's own agents, files, env: as before) or shared
// (Engine::share(): a dependency's endpoint, a graft between services). Each full cycle of an
// engine with a Fleet publishes its verdict on every shared subject (unhealthy: it has a weak
// point on it) and reads the others' (sync(): one round trip); a light cycle (which skips the
// analyzers that are not light()) and one in which an analyzer threw publish their unhealthy
// verdicts only. A shared weak point stays only when at least `quorum` of the instances reporting
// on the subject see it unhealthy (default: a majority of the reporters; a lone reporter decides
// alone); otherwise the instance records a local weak point on its own path to the subject ("path"
// type, id "<type>:<id>"). A repair of a shared weak point needs the fleet's lease on the subject
// (exchange(): a second round trip, only in cycles that claim or settle something), held through
// repairing and verifying and renewed by each sync; the holder writes the outcome with the lease's
// fencing token, which the fleet refuses once another instance has taken the lease over. The fleet
// counts the budget, the rate and the breaker of shared repairs across every instance, and keeps
// the silences every instance honours.
//
//   auto fleet = std::make_shared<halo::RedisFleet>(halo::RedisFleetConfig{.service = "pay"});
//   halo::Engine engine(state, {.fleet = fleet});
//   engine.share({"endpoint", "db.internal:5432"});
//
// An implementation (halo/redis_fleet.hpp, octohalo::fleet) is called by one cycle at a time,
// from the engine's cycle thread, and by Engine::silence()/unsilence()/silences() from any
// thread: it guards its own connection. Failures are values (ok = false and why), never
// exceptions: the engine then treats shared subjects conservatively (detect and report, never
// repair) until a call succeeds again.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "halo/silence.hpp"

namespace halo {

// One instance's verdict on one shared subject, keyed "<type>:<id>".
struct FleetVerdict {
  std::string subject{};
  bool unhealthy = false;
};

// The fleet's view of one subject, within the evidence window (verdict_ttl).
struct FleetSubjectView {
  std::uint32_t reporters = 0;  // instances with a live verdict, this one included
  std::uint32_t unhealthy = 0;
  std::string holder{};  // instance holding the repair lease; empty when none
};

// A lease this instance holds on a shared subject's repair.
struct FleetLease {
  std::string subject{};
  std::uint64_t token = 0;  // the fencing token it was granted with
};

// A silence held by the fleet: honoured by every instance until `until` (wall clock).
struct FleetSilence {
  std::string id{};  // the fleet's, e.g. "7"
  SilenceMatcher match{};
  std::chrono::system_clock::time_point from{};
  std::chrono::system_clock::time_point until{};
  std::string reason{};
  std::string author{};
  std::string instance{};  // where it was created
};

struct FleetSyncResult {
  bool ok = false;
  std::string error{};                    // when not ok
  std::vector<FleetSubjectView> views{};  // one per verdict, in order
  std::vector<bool> renewed{};            // one per lease: false = lost (expired or taken over)
  std::vector<std::string> peers{};       // instances with a live heartbeat, this one included
  std::vector<FleetSilence> silences{};   // active and scheduled
};

// A shared repair's end, written back under its lease.
struct FleetOutcome {
  FleetLease lease{};
  bool healed = false;
};

// Why a claim was refused.
enum class FleetRefusal : std::uint8_t {
  kNone,           // granted
  kHeldElsewhere,  // another instance holds the lease (holder names it)
  kBudget,         // the fleet spent max_repairs on the subject within budget_window
  kRateLimited,    // the fleet's token bucket is empty
  kBreakerOpen,    // too many of the fleet's shared repairs failed within breaker_window
  // Another repair was granted (and has ended) since this instance's previous sync: this
  // cycle's unhealthy verdict may predate its fix. `holder` names who wrote the last outcome.
  kStaleEvidence,
};
std::string_view to_string(FleetRefusal r) noexcept;

struct FleetClaimResult {
  FleetRefusal refusal = FleetRefusal::kNone;
  std::uint64_t token = 0;  // granted
  std::string holder{};     // kHeldElsewhere, kStaleEvidence; the count for kBudget, kBreakerOpen
};

struct FleetExchangeResult {
  bool ok = false;
  std::string error{};
  std::vector<bool> accepted{};            // one per outcome: false = stale token, rejected
  std::vector<FleetClaimResult> claims{};  // one per claimed subject, in order
};

// The fleet-wide rails of shared repairs (the engine passes its SafetyConfig's values).
struct FleetRails {
  std::uint32_t max_repairs = 3;
  std::chrono::milliseconds budget_window{std::chrono::hours(1)};
  double repairs_per_second = 5.0;
  std::uint32_t repair_burst = 20;
  std::chrono::milliseconds breaker_window{std::chrono::minutes(10)};
  std::uint32_t breaker_min_repairs = 6;
  double breaker_failure_ratio = 0.5;
};

class Fleet {
 public:
  virtual ~Fleet() = default;
  // This instance's name in the fleet (unique per instance).
  virtual std::string_view instance() const noexcept = 0;
  // How long a lease lives without renewal; the engine renews held leases every cycle.
  virtual std::chrono::milliseconds lease_ttl() const noexcept = 0;
  // The first round trip of a cycle: heartbeat, publish `verdicts`, renew `held`, read the
  // views, peers and silences.
  virtual FleetSyncResult sync(const std::vector<FleetVerdict>& verdicts,
                               const std::vector<FleetLease>& held) = 0;
  // The second, when there is something to do: write `outcomes` (each releases its lease), then
  // claim `claims` (subjects) under `rails`. A claim is refused when another instance holds the
  // lease, a fleet-wide rail says no, or another repair of the subject was granted since this
  // instance's previous sync, which may have ended before this cycle's verdict was published but
  // after its evidence was taken (kStaleEvidence: the next cycle looks again).
  virtual FleetExchangeResult exchange(const std::vector<FleetOutcome>& outcomes,
                                       const std::vector<std::string>& claims,
                                       const FleetRails& rails) = 0;
  // Fleet silences. add() returns the id, or an empty string with `error` set.
  virtual std::string add_silence(const FleetSilence& silence, std::string& error) = 0;
  virtual bool remove_silence(std::string_view id) = 0;
  // Round trips made so far (sync, exchange and the silence calls each count theirs).
  virtual std::uint64_t round_trips() const noexcept = 0;
};

}  // namespace halo

// What an engine with a fleet (halo/fleet.hpp) keeps between cycles: the subjects it shares,
// the leases it holds, the fleet's last view of each shared subject, the silences it mirrors
// into its rails, and the counters status() reports. The cycle thread writes it; status(),
// share() and the silence calls read or change it from any thread, all under `mu` (never held
// while calling the fleet or the rails).
#pragma once

#include <octo/detail/annotated_mutex.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "halo/engine.hpp"
#include "halo/fleet.hpp"

namespace halo::detail {

struct FleetLink {
  explicit FleetLink(std::shared_ptr<Fleet> f) : fleet(std::move(f)) {}

  struct Shared {
    std::string key;  // "<type>:<id>"
  };
  struct Held {
    FleetLease lease;
    bool lost = false;  // a renewal failed: no longer renewed, its outcome still written
  };

  const std::shared_ptr<Fleet> fleet;
  octo::detail::Mutex mu;
  // By fingerprint, ordered: the cycle's weak points come in fingerprint order too.
  std::map<std::uint64_t, Shared> shared OCTO_GUARDED_BY(mu);
  std::unordered_map<std::uint64_t, Held> held OCTO_GUARDED_BY(mu);
  // The last sync's subjects some instance saw unhealthy or that have a holder.
  std::vector<FleetSubjectStatus> views OCTO_GUARDED_BY(mu);
  // Fleet silence id -> the rails' silence id.
  std::map<std::string, std::uint64_t> mirrored OCTO_GUARDED_BY(mu);
  bool known OCTO_GUARDED_BY(mu) = false;  // a call has answered or failed
  bool available OCTO_GUARDED_BY(mu) = false;
  std::string reason OCTO_GUARDED_BY(mu);
  std::vector<std::string> peers OCTO_GUARDED_BY(mu);
  std::map<std::string, std::uint64_t> suppressed OCTO_GUARDED_BY(mu);
  std::uint64_t leases_granted OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t leases_lost OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t outcomes_written OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t outcomes_rejected OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t repairing_elsewhere OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t path_weak_points OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t unavailable_cycles OCTO_GUARDED_BY(mu) = 0;
};

}  // namespace halo::detail

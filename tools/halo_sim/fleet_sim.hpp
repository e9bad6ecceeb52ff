// halo-sim's fleet mode (--fleet N, --scenario fleet): N instances of one service in this
// process, each with its own state, engine, executor and cycle timer, sharing four dependencies
// and one redis-server that the sim starts (redis-server on PATH, 127.0.0.1, a temp dir).
//
// The `fleet` scenario's faults, each with the repairs it must end with:
//   shared-outage  t=2 s, every instance sees dependency:db down: 1 repair, the others record
//                  "repairing elsewhere";
//   one-path       t=6 s for 4 s, instance 0 alone sees dependency:payments down: 0 repairs, a
//                  path weak point on instance 0;
//   holder-crash   t=9 s, dependency:cache down, and the instance that takes its repair freezes
//                  mid-repair (its cycles stop, its repair never ends): 1 repair, by another
//                  instance once the lease has expired;
//   redis-outage   t=15 s the redis-server stops for 3 s and dependency:search breaks at
//                  15.5 s: 0 repairs while Redis is down, 1 after it is back.
#pragma once

#include <string>

namespace halo_sim {

struct FleetOptions {
  int instances = 3;
  double duration_s = 24;
  std::string json{};  // the report as JSON, when set
  bool quiet = false;
};

// Runs the scenario; 0 when every fault ended with its repairs and no healthy dependency was
// repaired, 1 otherwise. Throws std::runtime_error when redis-server cannot be started.
int run_fleet(const FleetOptions& options);

}  // namespace halo_sim

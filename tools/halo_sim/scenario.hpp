// The faults halo-sim injects, when, and how long HALO has to heal each one.
#pragma once

#include <string>
#include <vector>

namespace halo_sim {

struct Fault {
  std::string kind;          // see kFaultKinds
  double at_s = 0;           // seconds after the start
  double deadline_s = 10;    // to be healed within this long after at_s
  int count = 1;             // agents to crash, endpoints to break
  double error_rate = 0.9;   // endpoint-errors: share of failing requests
  double duration_s = 1;     // request-surge: how long the surge lasts
  double surge_factor = 10;  // request-surge: extra requests, as multiples of the baseline rate
  // maintenance: how long the silence lasts; systemic-outage: how long the partition lasts
  // (both in duration_s). systemic-outage: the share of agents cut off.
  double share = 0.6;
};

struct Scenario {
  std::string name{};
  double duration_s = 40;
  double cycle_interval_s = 2;   // the time trigger
  double approve_after_s = 1.5;  // the sim approves pending repairs after this long
  // A person approves (over HTTP, in the console): the sim approves nothing ("approve":
  // "manual" in a scenario file, or --approve manual).
  bool manual_approval = false;
  std::vector<Fault> faults{};
};

// The first eight must be healed within their deadline. The safety faults expect their own
// outcome, also within the deadline:
//   lying-repair       its repairs report success and fix nothing: at most max_repairs repairs
//                      (ladder steps included), then escalated;
//   flapping-endpoint  breaks again after each repair (`count` times): flagged flapping, at most
//                      max_repairs repairs;
//   parent-down        an agent and the five endpoints it serves: one repair of the agent, none
//                      of the endpoints (inhibited), all healthy again;
//   maintenance        a graft broken under a silence of `duration_s`: no repair while silenced,
//                      healed after it ends;
//   systemic-outage    `share` of the agents unreachable for `duration_s`, then back by
//                      themselves: the breaker opens, at most the blast radius of repairs during
//                      it, all healthy afterwards.
inline const char* const kFaultKinds[] = {
    "agent-crash",  "endpoint-errors", "request-surge",  "env-drift",    "deploy",
    "corrupt-file", "broken-graft",    "external-event", "lying-repair", "flapping-endpoint",
    "parent-down",  "maintenance",     "systemic-outage"};

// "default" (~40 s), "quick" (~10 s), "safety" (~60 s), "console" (~60 s, manual approval, room
// for a person in the console) or the path of a JSON file (format in docs/operations.md).
// Throws std::runtime_error with a message naming the file, field and value.
Scenario load_scenario(const std::string& name_or_path);

}  // namespace halo_sim

// halo/http/metrics.hpp — Prometheus text exposition (format 0.0.4) of the executor, the triggers
// and the engine: counters end in `_total`, cycle time is a histogram, numbers are printed in
// their shortest exact form (a bucket bound 0.005 is le="0.005"), and every label set that can
// exist (arms, triggers, outcomes, rails, states) is exported from the start, at zero.
//
// Per-subject series (what HALO decides on) are bounded: the `top_subjects` worst endpoints (by
// errors in the window) and agents (by heartbeat age) plus the ids a service lists, so a million
// subjects export at most top_subjects + subjects.size() series per family (the endpoint
// latency histogram: 16 series per endpoint, its 13 bounds, +Inf, sum and count). Finding the worst
// reads every endpoint's window and sorts the agents: a scrape costs O(endpoints x recording
// threads + agents), on the scraping thread.
//
//   halo::MetricsConfig mc{.subjects = {"/checkout"}};
//   mc.writers.push_back([&](std::string& out) {          // the service's own families
//     out += "# HELP shop_orders_total Orders.\n# TYPE shop_orders_total counter\n";
//     out += "shop_orders_total " + std::to_string(orders.load()) + "\n";
//   });
//   std::string body = halo::prometheus_text(&engine, &executor, &*loop, mc);
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "halo/engine.hpp"
#include "halo/triggers.hpp"
#include "octo/executor.hpp"

namespace halo {

struct MetricsConfig {
  // The worst this many endpoints and agents get series of their own (0: none but `subjects`).
  std::size_t top_subjects = 10;
  // Endpoint paths and agent ids exported whatever their state (when they exist).
  std::vector<std::string> subjects{};
  // The service's own families, appended after octohalo's: each writer appends whole families
  // (HELP, TYPE, samples) and must not reuse an octohalo_ name. A writer that throws leaves a
  // comment line naming its index instead; the scrape is still served.
  std::vector<std::function<void(std::string& out)>> writers{};
};

// Any of the three may be null; its families are then left out. The engine's state gives the
// per-subject series.
std::string prometheus_text(const Engine* engine, const octo::Executor* executor,
                            const Triggers* triggers, const MetricsConfig& config = {});

}  // namespace halo

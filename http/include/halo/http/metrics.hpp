// halo/http/metrics.hpp — Prometheus text exposition (format 0.0.4) of the executor, the triggers
// and the engine: counters end in `_total`, cycle time is a histogram.
//
//   std::string body = halo::prometheus_text(&engine, &executor, &*loop);
#pragma once

#include <string>

#include "halo/engine.hpp"
#include "halo/triggers.hpp"
#include "octo/executor.hpp"

namespace halo {

// Any of the three may be null; its families are then left out.
std::string prometheus_text(const Engine* engine, const octo::Executor* executor,
                            const Triggers* triggers);

}  // namespace halo

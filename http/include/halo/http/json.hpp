// halo/http/json.hpp — JSON views of engine results for reports and HTTP (nlohmann-json).
//
//   nlohmann::json j = halo::to_json(*engine.run_cycle());
//   std::cout << j.dump(2);
#pragma once

#include <nlohmann/json.hpp>

#include "halo/audit.hpp"
#include "halo/engine.hpp"
#include "halo/http/notifier.hpp"
#include "halo/triggers.hpp"
#include "octo/status.hpp"

namespace halo {

// The cycle without its full analysis issue lists (counts, weak points, tasks and their fate).
nlohmann::json to_json(const CycleResult& cycle);
nlohmann::json to_json(const EngineStatus& status);
nlohmann::json to_json(const TriggersStatus& status);
nlohmann::json to_json(const AuditEntry& entry);
// `now` on the state's clock, which the silence's times are on.
nlohmann::json to_json(const Silence& silence, std::chrono::nanoseconds now);
nlohmann::json to_json(const octo::RuntimeStatus& status);
nlohmann::json to_json(const NotifierStatus& status);

}  // namespace halo

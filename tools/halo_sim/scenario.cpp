#include "scenario.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace halo_sim {

namespace {

Scenario builtin_default() {
  Scenario s{.name = "default", .duration_s = 40, .cycle_interval_s = 2, .approve_after_s = 1.5};
  s.faults = {
      {.kind = "agent-crash", .at_s = 3, .deadline_s = 12, .count = 12},
      {.kind = "endpoint-errors", .at_s = 7, .deadline_s = 14, .count = 8, .error_rate = 1.0},
      {.kind = "request-surge", .at_s = 11, .deadline_s = 8, .duration_s = 2},
      {.kind = "env-drift", .at_s = 15, .deadline_s = 12},
      {.kind = "deploy", .at_s = 19, .deadline_s = 10},
      {.kind = "corrupt-file", .at_s = 22, .deadline_s = 12},
      {.kind = "broken-graft", .at_s = 25, .deadline_s = 12},
      {.kind = "external-event", .at_s = 28, .deadline_s = 10},
  };
  return s;
}

Scenario builtin_quick() {
  Scenario s{.name = "quick", .duration_s = 10, .cycle_interval_s = 1, .approve_after_s = 0.5};
  s.faults = {
      {.kind = "agent-crash", .at_s = 0.5, .deadline_s = 6, .count = 6},
      {.kind = "endpoint-errors", .at_s = 1.0, .deadline_s = 7, .count = 8, .error_rate = 1.0},
      {.kind = "env-drift", .at_s = 1.5, .deadline_s = 6},
      {.kind = "corrupt-file", .at_s = 2.0, .deadline_s = 6},
      {.kind = "broken-graft", .at_s = 2.5, .deadline_s = 6},
      {.kind = "deploy", .at_s = 3.0, .deadline_s = 6},
      {.kind = "external-event", .at_s = 3.5, .deadline_s = 6},
      {.kind = "request-surge", .at_s = 4.0, .deadline_s = 5, .duration_s = 1},
  };
  return s;
}

Scenario builtin_safety() {
  Scenario s;
  s.name = "safety";
  s.duration_s = 60;
  s.faults = {
      {.kind = "lying-repair", .at_s = 2, .deadline_s = 30},
      {.kind = "flapping-endpoint", .at_s = 3, .deadline_s = 30, .count = 6},
      {.kind = "parent-down", .at_s = 4, .deadline_s = 12},
      {.kind = "maintenance", .at_s = 5, .deadline_s = 18, .duration_s = 8},
      {.kind = "systemic-outage", .at_s = 36, .deadline_s = 20, .duration_s = 8, .share = 0.6},
  };
  return s;
}

// Room for a person: the env-drift repair waits for an approval given in the console, and the
// broken graft comes late enough for a silence to be set up first (the browser test does both).
Scenario builtin_console() {
  Scenario s{.name = "console", .duration_s = 60, .cycle_interval_s = 1, .manual_approval = true};
  s.faults = {
      {.kind = "agent-crash", .at_s = 1, .deadline_s = 20, .count = 3},
      {.kind = "env-drift", .at_s = 2, .deadline_s = 50},
      {.kind = "broken-graft", .at_s = 25, .deadline_s = 30},
  };
  return s;
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

double number(const nlohmann::json& j, const char* key, double fallback, const std::string& where,
              double min, double max) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_number()) fail(where, std::string("\"") + key + "\" must be a number");
  const double v = it->get<double>();
  if (!(v >= min && v <= max))
    fail(where, std::string("\"") + key + "\" = " + it->dump() + " is outside [" +
                    nlohmann::json(min).dump() + ", " + nlohmann::json(max).dump() + "]");
  return v;
}

}  // namespace

Scenario load_scenario(const std::string& arg) {
  if (arg == "default") return builtin_default();
  if (arg == "quick") return builtin_quick();
  if (arg == "safety") return builtin_safety();
  if (arg == "console") return builtin_console();
  const std::string where = "scenario file '" + arg + "'";
  // Read whole first, bounded, so that a directory, a device or an endless file is refused by
  // name instead of failing somewhere inside the JSON parser.
  constexpr std::uintmax_t kMaxBytes = 1 << 20;
  std::error_code ec;
  const auto status = std::filesystem::status(arg, ec);
  if (ec || !std::filesystem::exists(status))
    throw std::runtime_error("scenario '" + arg +
                             "': not 'default', 'quick', 'safety', 'console' or a readable "
                             "JSON file");
  if (!std::filesystem::is_regular_file(status)) fail(where, "not a regular file");
  std::ifstream in(arg, std::ios::binary);
  if (!in) fail(where, "cannot be opened for reading");
  std::string text;
  try {
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      text.append(buf, static_cast<std::size_t>(in.gcount()));
      if (text.size() > kMaxBytes) fail(where, "larger than 1 MiB");
    }
    if (in.bad()) fail(where, "read error");
  } catch (const std::ios_base::failure& e) {
    fail(where, std::string("read error: ") + e.what());
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // Includes numbers out of range ("1e400"), not only syntax errors.
    fail(where, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(where, "top level must be an object");
  Scenario s;
  s.name = arg;
  if (const auto name = j.find("name"); name != j.end()) {
    if (!name->is_string()) fail(where, "\"name\" must be a string");
    s.name = name->get<std::string>();
  }
  s.duration_s = number(j, "duration_s", 40, where, 1, 3600);
  s.cycle_interval_s = number(j, "cycle_interval_s", 2, where, 0.1, 600);
  s.approve_after_s = number(j, "approve_after_s", 1.5, where, 0, 600);
  if (const auto approve = j.find("approve"); approve != j.end()) {
    if (!approve->is_string() || (*approve != "manual" && *approve != "auto"))
      fail(where, "\"approve\" must be \"manual\" or \"auto\"");
    s.manual_approval = *approve == "manual";
  }
  const auto faults = j.find("faults");
  if (faults == j.end() || !faults->is_array() || faults->empty())
    fail(where, "\"faults\" must be a non-empty array");
  for (std::size_t i = 0; i < faults->size(); ++i) {
    const auto& f = (*faults)[i];
    const std::string at = where + ", faults[" + std::to_string(i) + "]";
    if (!f.is_object()) fail(at, "must be an object");
    Fault x;
    const auto kind = f.find("kind");
    if (kind == f.end() || !kind->is_string()) fail(at, "\"kind\" must be a string");
    x.kind = kind->get<std::string>();
    if (std::find(std::begin(kFaultKinds), std::end(kFaultKinds), x.kind) == std::end(kFaultKinds))
      fail(at, "unknown kind '" + x.kind +
                   "' (agent-crash, endpoint-errors, request-surge, env-drift, deploy, "
                   "corrupt-file, broken-graft, external-event, lying-repair, "
                   "flapping-endpoint, parent-down, maintenance, systemic-outage)");
    x.at_s = number(f, "at_s", 0, at, 0, s.duration_s);
    x.deadline_s = number(f, "deadline_s", 10, at, 0.1, 3600);
    x.count = static_cast<int>(number(f, "count", 1, at, 1, 20));
    x.error_rate = number(f, "error_rate", 0.9, at, 0.3, 1.0);
    x.duration_s = number(f, "duration_s", 1, at, 0.1, 60);
    x.surge_factor = number(f, "surge_factor", 10, at, 2, 1000);
    x.share = number(f, "share", 0.6, at, 0.05, 1.0);
    s.faults.push_back(std::move(x));
  }
  return s;
}

}  // namespace halo_sim

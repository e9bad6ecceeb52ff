#include "octo/routing.hpp"

#include <stdexcept>

#include "detail/compiled_routes.hpp"

namespace octo {

namespace {
void check(const std::string& pattern, const std::string& arm, const char* what) {
  if (pattern.empty())
    throw std::invalid_argument(std::string("RoutingTable::") + what +
                                ": empty pattern (routing to arm '" + arm + "')");
  if (arm.empty())
    throw std::invalid_argument(std::string("RoutingTable::") + what +
                                ": empty arm name for pattern '" + pattern + "'");
}
}  // namespace

RoutingTable& RoutingTable::add_exact(std::string type, std::string arm) {
  check(type, arm, "add_exact");
  rules_.push_back({std::move(type), std::move(arm), false});
  return *this;
}

RoutingTable& RoutingTable::add_prefix(std::string prefix, std::string arm) {
  check(prefix, arm, "add_prefix");
  rules_.push_back({std::move(prefix), std::move(arm), true});
  return *this;
}

RoutingTable default_routes() {
  RoutingTable t;
  for (const char* arm :
       {"deploy", "batch", "streams", "secrets", "builds", "watchers", "cleanup", "analytics"}) {
    t.add_exact(arm, arm).add_prefix(std::string(arm) + ".", arm);
  }
  t.add_prefix("agent.", "deploy")
      .add_prefix("repair.api.", "deploy")
      .add_exact("run-batch-job", "batch")
      .add_prefix("squad.", "batch")
      .add_prefix("graft.", "streams")
      .add_prefix("stream.", "streams")
      .add_prefix("env.", "secrets")
      .add_prefix("build.", "builds")
      .add_prefix("patrol.", "watchers")
      .add_prefix("watch.", "watchers");
  return t;
}

std::unique_ptr<detail::CompiledRoutes> detail::compile_routes(
    const RoutingTable& table,
    const std::function<std::optional<ArmId>(std::string_view)>& find_arm) {
  auto compiled = std::make_unique<CompiledRoutes>();
  for (const auto& rule : table.rules()) {
    auto arm = find_arm(rule.arm);
    if (!arm) {
      throw std::invalid_argument("octo::Executor: route '" + rule.pattern +
                                  (rule.prefix ? "*" : "") + "' names unknown arm '" + rule.arm +
                                  "' (configure that arm or pass routes without it)");
    }
    if (rule.prefix) {
      compiled->prefixes.emplace_back(rule.pattern, *arm);
    } else {
      compiled->exact.insert_or_assign(rule.pattern, *arm);
    }
  }
  std::stable_sort(compiled->prefixes.begin(), compiled->prefixes.end(),
                   [](const auto& a, const auto& b) { return a.text.size() > b.text.size(); });
  return compiled;
}

}  // namespace octo

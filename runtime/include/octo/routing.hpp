// octo/routing.hpp — maps task types to arm names.
//
// Exact names win over prefixes; among prefixes the longest wins. The executor resolves the arm
// names into ids once when a table is installed, so routing a task is one hash lookup (exact) plus
// a scan of the few prefixes, with no allocation.
//
//   octo::RoutingTable routes = octo::default_routes();
//   routes.add_prefix("ml.", "analytics").add_exact("rotate-keys", "secrets");
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace octo {

class RoutingTable {
 public:
  struct Rule {
    std::string pattern;
    std::string arm;
    bool prefix = false;
  };

  // Throws std::invalid_argument on an empty pattern or arm name.
  RoutingTable& add_exact(std::string type, std::string arm);
  RoutingTable& add_prefix(std::string prefix, std::string arm);

  const std::vector<Rule>& rules() const noexcept { return rules_; }

 private:
  std::vector<Rule> rules_;
};

// agent.* and repair.api.* -> deploy, run-batch-job and squad.* -> batch, graft.* and stream.* ->
// streams, env.* and secrets.* -> secrets, build.* -> builds, patrol.* and watch.* -> watchers,
// cleanup.* -> cleanup, analytics.* -> analytics; and each default arm's own name, exactly.
RoutingTable default_routes();

}  // namespace octo

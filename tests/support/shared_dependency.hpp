// The shared dependency of the fleet tests (tests/fleet): the issue an instance's probe reports
// when it cannot reach "dependency:<id>", and the strategy that restarts it on the deploy arm.
#pragma once

#include <optional>
#include <string>

#include "halo/engine.hpp"

namespace octo_test {

inline halo::Issue dependency_issue(std::string id) {
  halo::Issue issue;
  issue.subject_type = "dependency";
  issue.id = "dependency-" + id;
  issue.subject_id = std::move(id);
  issue.analyzer = "dependency";
  issue.severity = halo::Level::kHigh;
  issue.rule = "unreachable";
  return issue;
}

struct RestartDependency : halo::Strategy {
  std::string_view name() const noexcept override { return "restart"; }
  std::optional<octo::Task> plan(const halo::WeakPoint& wp) const override {
    if (wp.subject_type != "dependency") return std::nullopt;
    return octo::Task{.type = "deploy.restart", .payload = wp.subject_id};
  }
};

}  // namespace octo_test

// detail/check_runner.hpp (private to octohalo::halo) — runs checks in parallel, each on its own
// thread, under one deadline; a check still running at the deadline is reported red ("timed out")
// and left to finish on its thread.
#pragma once

#include <chrono>
#include <vector>

#include "halo/state.hpp"

namespace halo::detail {

std::vector<CheckResult> run_checks(const std::vector<Check>& checks,
                                    std::chrono::nanoseconds timeout);

}  // namespace halo::detail

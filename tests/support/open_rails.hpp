// Engine settings for the HALO tests and their helper programs: rails that let every repair
// through (the tests of one rail set it back). Repairs are still verified (a succeeded repair
// is `verifying` until a cycle sees fresh evidence).
#pragma once

#include "halo/engine.hpp"

namespace octo_test {

inline halo::EngineConfig open_rails() {
  halo::EngineConfig c;
  c.safety.repair_burst = 1000;
  c.safety.blast_radius_percent = 100;
  c.safety.max_unhealthy_percent = 100;
  c.safety.breaker_min_repairs = 1'000'000;
  c.safety.max_repairs = 1'000'000;
  c.safety.verify_interval = {};  // the tests run their cycles themselves
  return c;
}

}  // namespace octo_test

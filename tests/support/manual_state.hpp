// A halo::SystemState on manual time (see manual_time.hpp), the base of the HALO test rigs.
#pragma once

#include "halo/state.hpp"
#include "manual_time.hpp"

namespace octo_test {

struct ManualState : ManualTime {
  halo::SystemState state{clock, &ticker};
};

}  // namespace octo_test

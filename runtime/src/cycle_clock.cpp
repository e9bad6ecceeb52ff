#include "octo/cycle_clock.hpp"

#include <thread>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace octo {

namespace {

bool invariant_tsc() noexcept {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000007u) return false;
  if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & (1u << 8)) != 0;
#else
  return false;
#endif
}

}  // namespace

CycleClock::Calibration CycleClock::calibrate() noexcept {
  Calibration c;
#if defined(__x86_64__)
  if (!invariant_tsc()) return c;
  using Steady = std::chrono::steady_clock;
  // Both clocks read back to back at the two ends of a spin: the steady_clock reading brackets
  // the TSC one, so the error is two vDSO calls (~50 ns) over kCalibration (2 ms): 2.5e-5.
  const auto s0 = Steady::now();
  const std::uint64_t t0 = __rdtsc();
  auto s1 = s0;
  while (s1 - s0 < kCalibration) s1 = Steady::now();
  const std::uint64_t t1 = __rdtsc();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(s1 - s0).count();
  if (t1 <= t0 || ns <= 0) return c;
  const double ns_per_tick = static_cast<double>(ns) / static_cast<double>(t1 - t0);
  // A TSC slower than 10 MHz or faster than 100 GHz is not a clock to trust.
  if (ns_per_tick > 100.0 || ns_per_tick < 0.01) return c;
  c.tsc = true;
  c.ns_per_tick_q32 = static_cast<std::uint64_t>(ns_per_tick * 4294967296.0);
#endif
  return c;
}

double CycleClock::ticks_per_second() noexcept {
  return 1e9 * 4294967296.0 / static_cast<double>(calibration().ns_per_tick_q32);
}

}  // namespace octo

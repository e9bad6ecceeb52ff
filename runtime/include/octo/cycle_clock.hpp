// octo/cycle_clock.hpp — a cheap monotonic clock for timing every task.
//
// On x86-64 with an invariant TSC (the CPU's time-stamp counter ticks at a constant rate in every
// power state and is synchronised across cores: cpuid 0x80000007 EDX bit 8) now() is one `rdtsc`,
// about 10 ns on the project's 2-core VM against 25 ns for steady_clock::now() through the vDSO
// (bench_counters BM_CycleClock_Now / BM_SteadyClock_Now). Elsewhere it is steady_clock itself
// and a tick is a nanosecond. The tick rate is calibrated once per process against steady_clock
// over kCalibration (the first call to any member spins that long).
//
//   const auto t0 = octo::CycleClock::now();
//   work();
//   const std::uint64_t ns = octo::CycleClock::to_ns(octo::CycleClock::now() - t0);
//
// Thread-safe. Ticks of different threads compare (the TSC is synchronised); the difference of two
// readings is a duration, a reading alone means nothing outside this process.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace octo {

class CycleClock {
  // GCC's and Clang's 128-bit integer (one mulq); __extension__ keeps -Wpedantic quiet about it.
  __extension__ using U128 = unsigned __int128;

 public:
  static constexpr std::chrono::milliseconds kCalibration{2};

  // Ticks since an arbitrary origin. Not serialising: it may read a few instructions early or
  // late, which is noise at the nanosecond scale of what it times.
  static std::uint64_t now() noexcept {
#if defined(__x86_64__)
    if (calibration().tsc) [[likely]]
      return __rdtsc();
#endif
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }

  // Nanoseconds in `ticks` (a difference of two now() readings). One 128-bit multiply.
  static std::uint64_t to_ns(std::uint64_t ticks) noexcept {
    return static_cast<std::uint64_t>((static_cast<U128>(ticks) * calibration().ns_per_tick_q32) >>
                                      32);
  }

  // Ticks in `ns` nanoseconds (the inverse of to_ns, for deadlines). Cold: a division.
  static std::uint64_t from_ns(std::chrono::nanoseconds ns) noexcept {
    if (ns.count() <= 0) return 0;
    return static_cast<std::uint64_t>(
        (static_cast<U128>(static_cast<std::uint64_t>(ns.count())) << 32) /
        calibration().ns_per_tick_q32);
  }

  // "tsc" or "steady_clock": what now() reads.
  static std::string_view source() noexcept { return calibration().tsc ? "tsc" : "steady_clock"; }
  // Ticks per second as calibrated (1e9 for steady_clock).
  static double ticks_per_second() noexcept;

 private:
  struct Calibration {
    bool tsc = false;
    std::uint64_t ns_per_tick_q32 = std::uint64_t{1} << 32;  // nanoseconds per tick, 32.32 fixed
  };
  static const Calibration& calibration() noexcept {
    static const Calibration c = calibrate();
    return c;
  }
  static Calibration calibrate() noexcept;
};

}  // namespace octo

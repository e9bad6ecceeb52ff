// halo-sim's scenario parser over arbitrary file contents: a scenario within its documented
// ranges, or a std::runtime_error naming the file; no other exception, no crash.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("octohalo-scenario-fuzz-" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const halo_sim::Scenario s = halo_sim::load_scenario(file.string());
    if (!(s.duration_s >= 1 && s.duration_s <= 3600) || s.faults.empty()) std::abort();
    for (const auto& f : s.faults)
      if (!std::isfinite(f.at_s) || f.at_s > s.duration_s || f.count < 1) std::abort();
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find(file.string()) == std::string::npos) std::abort();
  }
  return 0;
}

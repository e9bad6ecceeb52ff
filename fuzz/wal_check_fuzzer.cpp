// The write-ahead log reader over arbitrary bytes: it never reads past the file, and says what
// it found whenever it reports lost frames.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "detail/wal_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("octohalo-wal-fuzz-" + std::to_string(::getpid()) + ".db-wal");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  const auto r = octo::detail::check_wal(file.string());
  if (r.lost_frames != 0 && r.problem.empty()) std::abort();
  if ((r.replayable_frames + r.lost_frames) * (24 + 512) > size) std::abort();
  return 0;
}

// Opening and recovering a journal whose file holds arbitrary bytes: either the open is refused
// with a JournalError naming the file, or every recovered task has values a Task can hold.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "octo/sqlite_journal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // One directory per process, on tmpfs when there is one (opening commits, with an fsync).
  static const std::filesystem::path dir = [] {
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    auto d = base / ("octohalo-journal-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const auto file = dir / "tasks.db";
  std::filesystem::remove(file);
  std::filesystem::remove(dir / "tasks.db-wal");
  std::filesystem::remove(dir / "tasks.db-journal");
  {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    octo::SqliteJournal journal(
        octo::SqliteJournalOptions{.path = file.string(), .durability = octo::Durability::kAsync});
    const auto r = journal.recover();
    for (const auto& t : r.unfinished)
      if (static_cast<unsigned>(t.task.priority) >= octo::kPriorityCount) std::abort();
    for (const auto& d : r.dead_letters)
      if (d.task && static_cast<unsigned>(d.task->priority) >= octo::kPriorityCount) std::abort();
  } catch (const octo::JournalError& e) {
    if (std::string(e.what()).find(file.string()) == std::string::npos) std::abort();
  }
  return 0;
}

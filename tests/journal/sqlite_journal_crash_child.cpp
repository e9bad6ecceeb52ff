// The process the journal crash test kills. Usage:
//   sqlite_journal_crash_child <journal> <dir> <run> produce   8 producers enqueue (kSync) until
//   killed sqlite_journal_crash_child <journal> <dir> <run> drain     recover, run what is left,
//   exit 0
// Every id is written to <dir>/attempted before its enqueue and to <dir>/accepted after the
// enqueue returned success; the handler appends it to <dir>/completed. One task in four is
// delayed (Task::run_at 100-499 ms ahead) and its id carries its due time ("id@due_ms"); one run
// before that time is also appended to <dir>/early. Lines are written with one write(2) on an
// O_APPEND descriptor, so they are whole even when the process dies mid-run.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "octo/executor.hpp"
#include "octo/sqlite_journal.hpp"

namespace {

int open_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(3);
  }
  return fd;
}

void write_line(int fd, const std::string& s) {
  const std::string line = s + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::exit(4);
}

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <journal> <dir> <run> produce|drain\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[2];
  const long run = std::strtol(argv[3], nullptr, 10);
  const bool produce = std::string(argv[4]) == "produce";
  const int completed = open_append(dir + "/completed");
  const int attempted = open_append(dir + "/attempted");
  const int accepted = open_append(dir + "/accepted");

  octo::ExecutorConfig cfg;
  octo::ArmConfig arm;
  arm.name = "work";
  arm.max_parallel = 2;
  const int early = open_append(dir + "/early");
  arm.handler = [completed, early](const octo::Task& t, const octo::Context&) {
    if (const auto at = t.payload.find('@'); at != std::string::npos) {
      const long long due = std::strtoll(t.payload.c_str() + at + 1, nullptr, 10);
      const long long now = now_ms();
      if (now < due) write_line(early, t.payload + " ran at " + std::to_string(now));
    }
    write_line(completed, t.payload);
    return octo::Outcome::success();
  };
  cfg.arms = {arm};
  cfg.routes = {};
  cfg.routes.add_exact("job", "work");
  cfg.threads = 2;
  cfg.journal = std::make_shared<octo::SqliteJournal>(
      octo::SqliteJournalOptions{.path = argv[1], .durability = octo::Durability::kSync});
  octo::Executor ex(std::move(cfg));
  std::printf("recovered %llu\n", static_cast<unsigned long long>(ex.status().recovered));
  std::fflush(stdout);
  if (!produce) return ex.wait_idle(std::chrono::seconds(60)) ? 0 : 5;

  std::vector<std::thread> producers;
  for (long p = 0; p < 8; ++p) {
    producers.emplace_back([&, p] {
      for (long i = 0; i < 100'000; ++i) {
        std::string id = std::to_string(run * 1'000'000 + p * 100'000 + i);
        octo::Task t{.type = "job"};
        if (i % 4 == 0) {
          const long long due = now_ms() + 100 + (i * 7) % 400;
          t.run_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(due));
          id += "@" + std::to_string(due);
        }
        t.payload = id;
        write_line(attempted, id);
        if (!ex.enqueue(std::move(t))) std::exit(6);
        write_line(accepted, id);
      }
    });
  }
  for (auto& t : producers) t.join();
  return 0;
}

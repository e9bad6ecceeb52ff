// bench_journal: what durability costs. Each iteration enqueues a burst of no-op tasks, waits
// until every one has run and every record (accept and completion) is committed, so the figure is
// "journaled and completed". The journal file lives in $OCTO_BENCH_DIR (default: the system temp
// directory); put it on the disk whose fsync you care about (tmpfs makes kSync meaningless).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "noop_arm.hpp"
#include "octo/executor.hpp"
#include "octo/sqlite_journal.hpp"

namespace {

namespace fs = std::filesystem;

fs::path bench_file() {
  const char* dir = std::getenv("OCTO_BENCH_DIR");
  static int n = 0;
  fs::path p =
      fs::path(dir && *dir ? dir : fs::temp_directory_path().c_str()) /
      ("octo-bench-journal-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".db");
  fs::remove(p);
  fs::remove(p.string() + "-wal");
  return p;
}

octo::ExecutorConfig config(std::shared_ptr<octo::Journal> journal) {
  octo::ExecutorConfig cfg = octo_bench::noop_arm_config();
  cfg.journal = std::move(journal);
  return cfg;
}

// Args: durability (0 none, 1 async, 2 sync), producer threads, tasks per iteration.
void BM_Journal_Enqueue(benchmark::State& state) {
  const auto mode = static_cast<octo::Durability>(state.range(0));
  const auto producers = static_cast<int>(state.range(1));
  const std::int64_t tasks = state.range(2);
  const fs::path file = bench_file();
  std::shared_ptr<octo::SqliteJournal> journal;
  if (mode != octo::Durability::kNone) {
    journal = std::make_shared<octo::SqliteJournal>(
        octo::SqliteJournalOptions{.path = file.string(), .durability = mode});
  }
  {
    octo::Executor ex(config(journal));
    // A service's journal is long-lived: its WAL grows once and is overwritten in place from then
    // on (an overwrite's fdatasync costs ~0.23 ms here, a growing file's ~0.37 ms). One untimed
    // burst first, so that the figure is the steady state and not a new file's first minute.
    auto burst = [&] {
      std::vector<std::thread> threads;
      for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&] {
          for (std::int64_t i = 0; i < tasks / producers; ++i) {
            if (!ex.enqueue({.type = "job", .payload = "payload-of-a-task"})) std::abort();
          }
        });
      }
      for (auto& t : threads) t.join();
      if (!ex.wait_idle()) std::abort();
      if (journal && !journal->flush()) std::abort();
    };
    burst();
    const auto warm = journal ? journal->stats() : octo::JournalStats{};
    for (auto _ : state) burst();
    state.SetItemsProcessed(state.iterations() * (tasks / producers) * producers);
    if (journal) {
      const auto s = journal->stats();
      const auto commits = static_cast<double>(s.commits - warm.commits);
      state.counters["mean_batch"] = static_cast<double>(s.records - warm.records) / commits;
      state.counters["max_batch"] = static_cast<double>(s.max_batch);
      state.counters["commits_per_s"] = benchmark::Counter(commits, benchmark::Counter::kIsRate);
    }
  }
  journal.reset();
  fs::remove(file);
  fs::remove(file.string() + "-wal");
}

BENCHMARK(BM_Journal_Enqueue)
    ->ArgNames({"mode", "producers", "tasks"})
    ->Args({0, 1, 200'000})
    ->Args({1, 1, 200'000})
    ->Args({1, 8, 200'000})
    ->Args({2, 1, 2'000})
    ->Args({2, 8, 20'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// A file of `pages` 4 KiB pages already on disk, as a reused WAL is: overwriting it in place
// costs an fdatasync less than growing it. Returns the descriptor, or -1.
int open_written(const fs::path& file, int pages) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  const std::string page(4096, 'x');
  for (int i = 0; i < pages; ++i) {
    if (::pwrite(fd, page.data(), page.size(), static_cast<off_t>(i) * 4096) < 0) std::abort();
  }
  ::fsync(fd);
  return fd;
}

// The disk's own pace, for the ratio: a 4 KiB overwrite plus fdatasync, as a WAL commit does it.
// kSync throughput divided by this rate is the tasks one fsync carries (the group-commit figure
// that does not depend on how fast this VM's disk happens to be today).
void BM_Fdatasync(benchmark::State& state) {
  const fs::path file = bench_file();
  const int fd = open_written(file, 64);
  if (fd < 0) {
    state.SkipWithError("cannot create the file");
    return;
  }
  const std::string page(4096, 'x');
  std::int64_t n = 0;
  for (auto _ : state) {
    if (::pwrite(fd, page.data(), page.size(), (n++ % 64) * 4096) < 0 || ::fdatasync(fd) != 0) {
      std::abort();
    }
  }
  state.SetItemsProcessed(state.iterations());
  ::close(fd);
  fs::remove(file);
}
BENCHMARK(BM_Fdatasync)->MinTime(0.5)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The ceiling for kSync with P producers on this machine, for the ratio: no SQLite, no executor,
// no task. Each producer appends a sequence number and sleeps on a futex word until it is
// durable; a writer waits until all P have appended (a gather no real journal can promise: a
// producer may be gone), writes one WAL-sized frame and fdatasyncs it. What is left is the disk
// plus waking P threads on these cores, once a commit.
void BM_GroupCommitFloor(benchmark::State& state) {
  const auto producers = static_cast<std::uint64_t>(state.range(0));
  // The same count for every producer: the writer's full gathers then always complete.
  const std::int64_t per_producer = state.range(1) / state.range(0);
  const fs::path file = bench_file();
  const int fd = open_written(file, 256);
  if (fd < 0) {
    state.SkipWithError("cannot create the file");
    return;
  }
  const std::string frame(4096 + 24, 'x');  // a WAL frame: header and one 4 KiB page
  std::mutex mu;
  std::condition_variable appended_cv;
  std::uint64_t appended = 0;  // under mu
  bool stop = false;           // under mu
  std::atomic<std::uint64_t> durable{0};
  std::atomic<std::uint32_t> epoch{0};
  std::uint64_t commits = 0;
  std::thread writer([&] {
    for (std::uint64_t n = 0;; ++n) {
      std::uint64_t upto;
      {
        std::unique_lock lock(mu);
        appended_cv.wait(lock, [&] { return appended >= durable + producers || stop; });
        if (appended == durable) return;  // stopping with nothing left
        upto = appended;
      }
      if (::pwrite(fd, frame.data(), frame.size(), static_cast<off_t>(32 + (n % 200) * 4120)) < 0 ||
          ::fdatasync(fd) != 0) {
        std::abort();
      }
      ++commits;
      durable.store(upto, std::memory_order_relaxed);
      epoch.fetch_add(1, std::memory_order_release);  // publishes `durable` to the waiters
      epoch.notify_all();
    }
  });
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (std::uint64_t p = 0; p < producers; ++p) {
      threads.emplace_back([&] {
        for (std::int64_t i = 0; i < per_producer; ++i) {
          std::uint64_t seq;
          {
            std::lock_guard lock(mu);
            seq = ++appended;
          }
          appended_cv.notify_one();
          for (;;) {
            const std::uint32_t e = epoch.load(std::memory_order_acquire);
            if (durable.load(std::memory_order_relaxed) >= seq) break;
            epoch.wait(e, std::memory_order_acquire);
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  appended_cv.notify_one();
  writer.join();
  state.SetItemsProcessed(state.iterations() * per_producer * state.range(0));
  state.counters["commits_per_s"] =
      benchmark::Counter(static_cast<double>(commits), benchmark::Counter::kIsRate);
  ::close(fd);
  fs::remove(file);
}
BENCHMARK(BM_GroupCommitFloor)
    ->ArgNames({"producers", "tasks"})
    ->Args({8, 20'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

// A journal in a private temporary directory for the journal tests: the directory, a journal on
// a file in it, an executor configuration with one arm ("work", routes "job") on it, a read-only
// SQL query of the file as an operator would run it, and an executor stopped with a backlog.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "octo/executor.hpp"
#include "octo/sqlite_journal.hpp"

namespace octo_test {

inline constexpr auto kGenerous =
    std::chrono::seconds(30);  // a bound for a failing test, never a wait

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("octo-journal-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::shared_ptr<octo::SqliteJournal> open_journal(
    const std::filesystem::path& p, octo::Durability d = octo::Durability::kSync) {
  return std::make_shared<octo::SqliteJournal>(
      octo::SqliteJournalOptions{.path = p.string(), .durability = d});
}

// One arm "work" (routes "job"), one worker; the handler is the test's.
inline octo::ExecutorConfig config(
    std::shared_ptr<octo::SqliteJournal> journal, octo::Handler h, std::uint32_t max_attempts = 3,
    std::chrono::milliseconds backoff = std::chrono::milliseconds(0)) {
  octo::ExecutorConfig cfg;
  octo::ArmConfig a;
  a.name = "work";
  a.max_parallel = 1;
  a.max_attempts = max_attempts;
  a.backoff_base = backoff;
  a.backoff_max = backoff;
  a.handler = std::move(h);
  cfg.arms = {a};
  cfg.routes = {};
  cfg.routes.add_exact("job", "work");
  cfg.threads = 2;
  cfg.journal = std::move(journal);
  return cfg;
}

// Opens a finished journal file read-only with plain SQLite, as an operator would.
inline std::vector<std::vector<std::string>> query(const std::filesystem::path& p,
                                                   const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::vector<std::vector<std::string>> rows;
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (sqlite3_step(s) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      const auto* t = sqlite3_column_text(s, i);
      row.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

// Runs `first` on an executor whose single worker is held inside the first task, so everything
// enqueued after it is still queued when the executor is shut down (kCancel): the shape of a
// process that stops with a backlog.
inline void stop_with_backlog(const std::filesystem::path& file,
                              const std::function<void(octo::Executor&)>& enqueue_rest) {
  std::promise<void> started, release;
  auto released = release.get_future().share();
  std::atomic<bool> first{true};
  octo::Executor ex(config(open_journal(file), [&](const octo::Task&, const octo::Context&) {
    if (first.exchange(false)) {
      started.set_value();
      released.wait();
    }
    return octo::Outcome::success();
  }));
  ASSERT_TRUE(ex.enqueue({.type = "job", .payload = "blocker"}));
  ASSERT_EQ(started.get_future().wait_for(kGenerous), std::future_status::ready);
  enqueue_rest(ex);
  const auto report = ex.shutdown(octo::ShutdownMode::kCancel, std::chrono::nanoseconds(0));
  EXPECT_TRUE(report.deadline_hit);  // the blocker is still running
  release.set_value();
}

}  // namespace octo_test

// Journal faults: rows no task can hold, files that are foreign, busy, corrupt, deleted or
// replaced, on a read-only mount, a disk that fills up, a write-ahead log damaged by a crash.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "journal_rig.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::Durability;
using octo::EnqueueError;
using octo::Executor;
using octo::JournalError;
using octo::Outcome;
using octo::SqliteJournal;
using octo::Task;
using octo_test::config;
using octo_test::kGenerous;
using octo_test::open_journal;
using octo_test::query;
using octo_test::stop_with_backlog;
using octo_test::TempDir;
namespace fs = std::filesystem;

// Rows are outside input too: another tool, an old build or a damaged page can leave values no
// Task can hold. Such a row once became Priority(7), an index past the queues.
TEST(Journal, RowsThatCannotBeTasksAreDeadLetteredNamingTheValueAndStayDead) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  stop_with_backlog(file, [](Executor& ex) {
    for (const char* p :
         {"bad priority", "bad attempts", "bad created", "bad deadline", "bad run_at", "good"})
      ASSERT_TRUE(ex.enqueue({.type = "job", .payload = p}));
  });
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    // Payloads are blobs.
    for (const char* sql : {
             "UPDATE tasks SET priority = 7 WHERE CAST(payload AS TEXT) = 'bad priority'",
             "UPDATE tasks SET attempts = -1 WHERE CAST(payload AS TEXT) = 'bad attempts'",
             "UPDATE tasks SET created_ms = -5 WHERE CAST(payload AS TEXT) = 'bad created'",
             "UPDATE tasks SET deadline_ms = -1 WHERE CAST(payload AS TEXT) = 'bad deadline'",
             "UPDATE tasks SET run_at_ms = 9223372036854775807 "
             "WHERE CAST(payload AS TEXT) = 'bad run_at'",
         }) {
      ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
      ASSERT_EQ(sqlite3_changes(db), 1) << sql;
    }
    sqlite3_close(db);
  }
  std::mutex mu;
  std::vector<std::string> ran;
  auto handler = [&](const Task& t, const octo::Context&) {
    std::lock_guard lock(mu);
    ran.push_back(t.payload);
    return Outcome::success();
  };
  {
    Executor ex(config(open_journal(file), handler));
    std::map<std::string, std::string> reasons;
    for (const auto& d : ex.dead_letters()) reasons[d.task->payload] = d.reason;
    ASSERT_EQ(reasons.size(), 5u);
    EXPECT_NE(reasons["bad priority"].find("priority 7 is outside 0-3"), std::string::npos)
        << reasons["bad priority"];
    EXPECT_NE(reasons["bad attempts"].find("attempts -1"), std::string::npos)
        << reasons["bad attempts"];
    EXPECT_NE(reasons["bad created"].find("created_ms -5"), std::string::npos)
        << reasons["bad created"];
    EXPECT_NE(reasons["bad deadline"].find("deadline_ms -1"), std::string::npos)
        << reasons["bad deadline"];
    EXPECT_NE(reasons["bad run_at"].find("run_at_ms 9223372036854775807"), std::string::npos)
        << reasons["bad run_at"];
    ASSERT_TRUE(ex.wait_idle(kGenerous));
    ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
  }
  {
    std::lock_guard lock(mu);
    // The good task ran; no bad row did.
    const std::set<std::string> seen(ran.begin(), ran.end());
    EXPECT_EQ(seen.count("good"), 1u);
    for (const char* p :
         {"bad priority", "bad attempts", "bad created", "bad deadline", "bad run_at"})
      EXPECT_EQ(seen.count(p), 0u) << p;
  }
  // Marked dead in the file: the next start reports them as dead letters, not as new findings.
  EXPECT_EQ(query(file, "SELECT count(*) FROM tasks WHERE state = 'dead'"),
            (std::vector<std::vector<std::string>>{{"5"}}));
}

TEST(Journal, UnreadableForeignOrBusyFilesAreRefusedNamingTheFile) {
  TempDir dir;
  auto expect_error = [](const fs::path& p, const std::string& needle) {
    try {
      open_journal(p);
      ADD_FAILURE() << "no error for " << p;
    } catch (const JournalError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(p.string()), std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  };
  const auto garbage = dir.file("garbage.db");
  std::ofstream(garbage) << std::string(8192, 'x');
  expect_error(garbage, "not a SQLite database");

  const auto foreign = dir.file("foreign.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE users(name TEXT)", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  expect_error(foreign, "not an octohalo journal");

  // A journal from a newer octohalo (or from before version 1): refused, never rewritten.
  for (const int version : {0, 4}) {
    const auto other = dir.file("version-" + std::to_string(version) + ".db");
    open_journal(other).reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
    const std::string set = "PRAGMA user_version = " + std::to_string(version);
    ASSERT_EQ(sqlite3_exec(db, set.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    expect_error(other, "journal schema version " + std::to_string(version) + " is not supported");
  }

  expect_error(dir.file("no/such/dir/tasks.db"), "does not exist (create it");
  fs::create_directories(dir.file("a-directory.db"));
  expect_error(dir.file("a-directory.db"), "is a directory");
  if (::geteuid() != 0) {  // root writes whatever the permissions say
    const auto readonly = dir.file("readonly.db");
    open_journal(readonly).reset();
    fs::permissions(readonly, fs::perms::owner_read);
    expect_error(readonly, "not readable and writable by this process");
  }

  const auto busy = dir.file("busy.db");
  auto held = open_journal(busy);
  expect_error(busy, "in use by another process");

  // A journal whose pages were overwritten after it was written.
  const auto damaged = dir.file("damaged.db");
  {
    Executor ex(config(
        open_journal(damaged, Durability::kAsync),
        [](const Task&, const octo::Context&) { return Outcome::failure("no"); }, 1));
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(ex.enqueue({.type = "job", .payload = std::string(100, 'p')}));
    }
    ASSERT_TRUE(ex.wait_idle(kGenerous));
  }
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    const std::string junk(4096 * 4, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  expect_error(damaged, "corrupt");
}

// A journal on a read-only mount: SQLite's own words were "attempt to write a readonly
// database". Root writes whatever a file's mode says, so the read-only case is a mount here (a
// tmpfs remounted read-only; skipped where mounting is not allowed).
TEST(Journal, AJournalOnAReadOnlyMountIsRefusedNamingTheFile) {
  TempDir dir;
  const auto mnt = dir.file("ro");
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  struct Unmount {
    std::string at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{mnt.string()};
  const auto file = mnt / "tasks.db";
  open_journal(file).reset();  // written while the mount was writable
  ASSERT_EQ(::mount(nullptr, mnt.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0)
      << std::strerror(errno);
  try {
    open_journal(file);
    ADD_FAILURE() << "opened a journal on a read-only mount";
  } catch (const JournalError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file.string()), std::string::npos) << what;
    EXPECT_NE(what.find("not writable"), std::string::npos) << what;
    EXPECT_EQ(what.find("attempt to write a readonly database"), std::string::npos) << what;
  }
}

TEST(Journal, AFailedCommitRefusesNewTasksAndSaysWhy) {
  TempDir dir;
  auto journal = std::make_shared<SqliteJournal>(
      octo::SqliteJournalOptions{.path = dir.file("tasks.db").string(),
                                 .durability = Durability::kSync,
                                 .max_bytes = 64 * 1024});
  std::promise<void> release;
  auto released = release.get_future().share();
  Executor ex(config(journal, [&](const Task&, const octo::Context&) {
    released.wait();
    return Outcome::success();
  }));
  // Tasks stay queued (the worker is held), so their rows pile up until the cap.
  int accepted = 0;
  octo::EnqueueResult r = octo::EnqueueResult::refused(EnqueueError::kFull);
  for (int i = 0; i < 1000 && (r = ex.enqueue({.type = "job", .payload = std::string(1000, 'x')}));
       ++i) {
    ++accepted;
  }
  ASSERT_FALSE(r) << "the cap was never reached";
  EXPECT_EQ(r.error(), EnqueueError::kJournal);
  EXPECT_GT(accepted, 10);
  const auto st = journal->stats();
  EXPECT_TRUE(st.failed);
  EXPECT_NE(st.error.find("tasks.db"), std::string::npos) << st.error;
  EXPECT_NE(st.error.find("full"), std::string::npos) << st.error;
  EXPECT_FALSE(ex.enqueue({.type = "job"})) << "a failed journal stays failed";
  EXPECT_EQ(ex.status().arms[0].rejected, 2u);
  release.set_value();
  EXPECT_TRUE(ex.wait_idle(kGenerous)) << "accepted tasks still run";
  EXPECT_EQ(ex.status().succeeded, static_cast<std::uint64_t>(accepted));
}

// A journal file deleted (or replaced) under a running executor once went unnoticed: every
// later commit went into the unlinked file, and a restart recovered none of those tasks.
TEST(Journal, ADeletedOrReplacedFileIsNoticedAndNewTasksAreRefused) {
  for (const bool replace : {false, true}) {
    SCOPED_TRACE(replace ? "replaced" : "deleted");
    TempDir dir;
    const auto file = dir.file("tasks.db");
    auto journal = open_journal(file);
    Executor ex(
        config(journal, [](const Task&, const octo::Context&) { return Outcome::success(); }));
    ASSERT_TRUE(ex.enqueue({.type = "job"}));
    if (replace) {
      std::ofstream(dir.file("other.db")) << "another file";
      fs::rename(dir.file("other.db"), file);
    } else {
      fs::remove(file);
    }
    const auto r = ex.enqueue({.type = "job"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), EnqueueError::kJournal);
    const auto st = journal->stats();
    EXPECT_TRUE(st.failed);
    EXPECT_NE(st.error.find(file.string()), std::string::npos) << st.error;
    EXPECT_NE(st.error.find(replace ? "replaced" : "deleted"), std::string::npos) << st.error;
    EXPECT_NE(st.error.find("restart"), std::string::npos) << st.error;
    EXPECT_FALSE(ex.enqueue({.type = "job"})) << "it stays refused: the file is gone";
    EXPECT_TRUE(ex.wait_idle(kGenerous));
  }
}

// An async commit that failed (the file at its size cap, as a full disk) once dropped every
// record it held and all that came after: tasks that ran were recovered again after a clean
// restart, and the journal refused tasks until then. Now it keeps them, retries, and heals once
// the tasks holding the space finish.
TEST(Journal, AFailedAsyncCommitKeepsItsRecordsAndHealsWhenSpaceFreesUp) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  std::atomic<int> ran{0};
  {
    auto journal = std::make_shared<SqliteJournal>(octo::SqliteJournalOptions{
        .path = file.string(), .durability = Durability::kAsync, .max_bytes = 64 * 1024});
    std::promise<void> release;
    auto released = release.get_future().share();
    Executor ex(config(journal, [&](const Task&, const octo::Context&) {
      released.wait();
      ++ran;
      return Outcome::success();
    }));
    int accepted = 0;
    const auto deadline = std::chrono::steady_clock::now() + kGenerous;
    // Async accepts return before their commit: keep going until the failure shows.
    while (std::chrono::steady_clock::now() < deadline) {
      if (!ex.enqueue({.type = "job", .payload = std::string(1000, 'x')})) break;
      ++accepted;
    }
    ASSERT_TRUE(journal->stats().failed) << "the cap was never reached";
    EXPECT_GE(journal->stats().commit_failures, 1u);
    EXPECT_EQ(journal->stats().unwritten, 0u) << "nothing is given up while it can retry";
    release.set_value();
    ASSERT_TRUE(ex.wait_idle(kGenerous));
    EXPECT_EQ(ran.load(), accepted);
    // The finished tasks free their rows (and their unwritten accepts need no disk): the next
    // retry succeeds and the journal takes tasks again.
    while (!journal->flush() && std::chrono::steady_clock::now() < deadline) {
    }
    const auto st = journal->stats();
    EXPECT_FALSE(st.failed) << st.error;
    EXPECT_NE(st.error.find("full"), std::string::npos) << "the last failure stays readable";
    ASSERT_TRUE(ex.enqueue({.type = "job"})) << "healed";
    ASSERT_TRUE(ex.wait_idle(kGenerous));
    EXPECT_TRUE(journal->flush());
  }
  EXPECT_EQ(query(file, "SELECT count(*) FROM tasks"),
            (std::vector<std::vector<std::string>>{{"0"}}))
      << "every task ran, so none is left to run again";
}

// SQLite replays a write-ahead log up to its first damaged frame and drops the rest without a
// word: after a crash with a damaged log, 151 of 310 sync-accepted tasks came back and nothing
// said so. The loss is reported now.
TEST(Journal, ADamagedWriteAheadLogAfterACrashIsReported) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  const auto crashed = dir.file("crashed.db");
  constexpr int kTasks = 150;
  {
    std::promise<void> release;
    auto released = release.get_future().share();
    Executor ex(config(open_journal(file), [&](const Task&, const octo::Context&) {
      released.wait();
      return Outcome::success();
    }));
    for (int i = 0; i < kTasks; ++i) ASSERT_TRUE(ex.enqueue({.type = "job"}));
    // The disk as a crash would leave it: every accept committed, all of it still in the log.
    fs::copy_file(file, crashed);
    fs::copy_file(fs::path(file.string() + "-wal"), fs::path(crashed.string() + "-wal"));
    release.set_value();
  }
  const fs::path wal(crashed.string() + "-wal");
  constexpr std::uintmax_t kFrame = 24 + 4096;
  const std::uintmax_t frames = (fs::file_size(wal) - 32) / kFrame;
  ASSERT_GT(frames, 20u) << "one commit per sync accept";
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(32 + kFrame * (frames / 2) + 24 + 1000));
    f.write("damaged!", 8);
  }
  auto journal = open_journal(crashed);
  const auto recovery = journal->recover();
  EXPECT_LT(recovery.unfinished.size(), static_cast<std::size_t>(kTasks)) << "the damage loses";
  const std::string problem = journal->stats().recovery_problem;
  EXPECT_NE(problem.find(crashed.string()), std::string::npos) << problem;
  EXPECT_NE(problem.find("write-ahead log is damaged"), std::string::npos) << problem;
  EXPECT_NE(problem.find("lost"), std::string::npos) << problem;
  // An intact log is replayed whole and reports nothing.
  auto intact = open_journal(file);
  EXPECT_TRUE(intact->stats().recovery_problem.empty()) << intact->stats().recovery_problem;
}

}  // namespace

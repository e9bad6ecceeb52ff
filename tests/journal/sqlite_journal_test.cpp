#include <sqlite3.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "journal_rig.hpp"  // tests/support
#include "octo/executor.hpp"
#include "octo/sqlite_journal.hpp"

namespace {

using namespace std::chrono_literals;
using octo::Durability;
using octo::EnqueueError;
using octo::Executor;
using octo::ExecutorConfig;
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

TEST(Journal, BacklogLeftAtShutdownRunsOnTheNextStartWithEverythingItCarried) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  stop_with_backlog(file, [](Executor& ex) {
    for (int i = 0; i < 5; ++i) {
      Task t{.type = "job", .payload = std::string("p") + std::to_string(i)};
      t.payload.push_back('\0');  // payloads are bytes, not text
      t.payload.push_back('z');
      t.priority = i == 4 ? octo::Priority::kCritical : octo::Priority::kLow;
      t.target_agents = {"agent \"a\"", "b\n"};
      t.max_attempts = 7;
      if (i % 2 == 1) t.key = "agent \"" + std::to_string(i) + "\"";
      ASSERT_TRUE(ex.enqueue(std::move(t)));
    }
  });
  std::mutex mu;
  std::vector<Task> ran;
  {
    Executor ex(config(open_journal(file), [&](const Task& t, const octo::Context&) {
      std::lock_guard lock(mu);
      ran.push_back(t);
      return Outcome::success();
    }));
    ASSERT_TRUE(ex.wait_idle(kGenerous));
    const auto st = ex.status();
    EXPECT_EQ(st.recovered, 5u);
    EXPECT_EQ(st.accepted, 5u);
    EXPECT_EQ(st.succeeded, 5u);
  }
  ASSERT_EQ(ran.size(), 5u);
  EXPECT_EQ(ran.front().priority, octo::Priority::kCritical) << "recovered by priority";
  std::set<std::uint64_t> distinct;
  for (const Task& t : ran) {
    EXPECT_EQ(t.payload.size(), 4u);
    EXPECT_EQ(t.payload[2], '\0');
    EXPECT_EQ(t.target_agents, (std::vector<std::string>{"agent \"a\"", "b\n"}));
    EXPECT_EQ(t.max_attempts, 7u);
    const int i = t.payload[1] - '0';
    EXPECT_EQ(*t.key, i % 2 == 1 ? "agent \"" + std::to_string(i) + "\"" : "") << "the key is kept";
    EXPECT_EQ(t.attempt, 1u);
    EXPECT_NE(t.durable_key, 0u);
    EXPECT_GT(t.created.time_since_epoch().count(), 0);
    distinct.insert(t.durable_key);
  }
  EXPECT_EQ(distinct.size(), 5u);
  EXPECT_TRUE(query(file, "SELECT key FROM tasks").empty()) << "finished tasks leave the file";
  EXPECT_EQ(query(file, "SELECT value FROM meta WHERE name = 'recovered'")[0][0], "5");
}

TEST(Journal, RecoveredTaskKeepsItsFailedAttemptsAndDurableKey) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  std::uint64_t key = 0;
  {
    std::promise<std::uint64_t> failed_once;
    // A long backoff keeps the retry waiting in the timer when the executor stops.
    Executor ex(config(
        open_journal(file),
        [&](const Task& t, const octo::Context&) {
          failed_once.set_value(t.durable_key);
          return Outcome::failure("first run fails");
        },
        3, 60s));
    ASSERT_TRUE(ex.enqueue({.type = "job", .payload = "x"}));
    auto f = failed_once.get_future();
    ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
    key = f.get();
    // The retry is journaled right after the failure: wait until it waits in the timer.
    for (auto st = ex.status(); st.arms[0].delayed == 0; st = ex.status())
      std::this_thread::yield();
  }
  std::promise<Task> rerun;
  Executor ex(config(open_journal(file), [&](const Task& t, const octo::Context&) {
    rerun.set_value(t);
    return Outcome::success();
  }));
  auto f = rerun.get_future();
  ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
  const Task t = f.get();
  EXPECT_EQ(t.attempt, 2u) << "one failed run before the restart";
  EXPECT_EQ(t.durable_key, key);
  EXPECT_EQ(t.payload, "x");
}

TEST(Journal, DeadLettersSurviveARestartAndCancelledTasksDoNot) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  octo::TaskId cancelled_id = 0;
  stop_with_backlog(file, [&](Executor& ex) {
    auto r = ex.enqueue({.type = "job", .payload = "cancel me"});
    ASSERT_TRUE(r);
    cancelled_id = r.id();
    ASSERT_TRUE(ex.cancel(cancelled_id));
    ASSERT_TRUE(ex.enqueue({.type = "job", .payload = "keep me"}));
  });
  std::vector<std::string> ran;
  {
    Executor ex(config(
        open_journal(file),
        [&](const Task& t, const octo::Context&) {
          ran.push_back(t.payload);
          return Outcome::failure("always fails");
        },
        1));
    ASSERT_TRUE(ex.wait_idle(kGenerous));
    EXPECT_EQ(ex.status().dead_lettered, 1u);
  }
  EXPECT_EQ(ran, std::vector<std::string>{"keep me"});
  Executor ex(config(open_journal(file),
                     [](const Task&, const octo::Context&) { return Outcome::success(); }));
  EXPECT_EQ(ex.status().recovered, 0u) << "a dead letter is not run again";
  const auto dead = ex.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].arm, "work");
  EXPECT_EQ(dead[0].reason, "always fails");
  EXPECT_EQ(dead[0].attempts, 1u);
  ASSERT_TRUE(dead[0].task.has_value());
  EXPECT_EQ(dead[0].task->payload, "keep me");
  EXPECT_EQ(dead[0].id, dead[0].task->durable_key);
}

TEST(Journal, DeadLettersInTheFileAreBounded) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  {
    auto journal = std::make_shared<SqliteJournal>(octo::SqliteJournalOptions{
        .path = file.string(), .durability = Durability::kAsync, .dead_letter_limit = 3});
    Executor ex(config(
        journal, [](const Task&, const octo::Context&) { return Outcome::failure("no"); }, 1));
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(ex.enqueue({.type = "job", .payload = std::to_string(i)}));
      ASSERT_TRUE(ex.wait_idle(kGenerous));
      ASSERT_TRUE(journal->flush());  // one commit each: the pruning works across commits
    }
  }
  const auto rows = query(file, "SELECT payload FROM tasks WHERE state = 'dead' ORDER BY key");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "7");
  EXPECT_EQ(rows[2][0], "9");
  EXPECT_EQ(query(file, "SELECT value FROM meta WHERE name = 'dead_lettered'")[0][0], "10");
}

TEST(Journal, SyncEnqueueReturnsOnlyAfterItsRecordIsCommitted) {
  TempDir dir;
  auto journal = open_journal(dir.file("tasks.db"));
  std::promise<void> release;
  auto released = release.get_future().share();
  Executor ex(config(journal, [&](const Task&, const octo::Context&) {
    released.wait();
    return Outcome::success();
  }));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(ex.enqueue({.type = "job", .payload = std::to_string(i)}));
    // No task has finished (the worker is held), so the only records are accepts: none waits.
    EXPECT_EQ(journal->stats().pending, 0u) << "after enqueue " << i;
  }
  release.set_value();
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  ASSERT_TRUE(journal->flush());
  const auto st = journal->stats();
  EXPECT_EQ(st.records, 40u);  // 20 accepts, 20 completions
  EXPECT_GE(st.commits, 20u);
  EXPECT_FALSE(st.failed);
}

TEST(Journal, SyncProducersShareCommitsAndALoneProducerIsNotHeldUp) {
  TempDir dir;
  auto journal = open_journal(dir.file("tasks.db"));
  journal->recover();
  constexpr int kProducers = 8, kEach = 50;
  std::vector<std::thread> producers;
  std::atomic<int> not_durable{0};
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        const auto t = journal->accepted("batch", Task{.type = "job"});
        if (t.seq == 0 || !journal->wait_durable(t.seq)) not_durable.fetch_add(1);
        journal->succeeded(t.key);
      }
    });
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(not_durable.load(), 0);
  const auto group = journal->stats();
  // Producers blocked on one fsync go into the next commit together.
  EXPECT_LT(group.commits, static_cast<std::uint64_t>(kProducers * kEach));
  EXPECT_GE(group.max_batch, 2u);
  // The seven others are gone: the writer, still expecting eight, must not hold the last one.
  for (int i = 0; i < 5; ++i) {
    const auto t = journal->accepted("batch", Task{.type = "job"});
    ASSERT_NE(t.seq, 0u);
    ASSERT_TRUE(journal->wait_durable(t.seq));
    journal->succeeded(t.key);
  }
  ASSERT_TRUE(journal->flush());
  EXPECT_EQ(journal->stats().records, 2u * (kProducers * kEach + 5));
  EXPECT_EQ(journal->stats().pending, 0u);
  journal.reset();
  EXPECT_TRUE(query(dir.file("tasks.db"), "SELECT key FROM tasks").empty());
}

TEST(Journal, KeysAreNeverReusedAcrossRestarts) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  std::set<std::uint64_t> keys;
  for (int run = 0; run < 3; ++run) {
    std::mutex mu;
    Executor ex(
        config(open_journal(file, Durability::kAsync), [&](const Task& t, const octo::Context&) {
          std::lock_guard lock(mu);
          EXPECT_TRUE(keys.insert(t.durable_key).second) << t.durable_key;
          return Outcome::success();
        }));
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ex.enqueue({.type = "job"}));
    ASSERT_TRUE(ex.wait_idle(kGenerous));
  }
  EXPECT_EQ(keys.size(), 300u);
}

TEST(Journal, TaskOfAnArmThatNoLongerExistsIsDeadLetteredNotDropped) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  stop_with_backlog(
      file, [](Executor& ex) { ASSERT_TRUE(ex.enqueue({.type = "job", .payload = "orphan"})); });
  ExecutorConfig cfg;
  octo::ArmConfig other;
  other.name = "other";
  other.handler = [](const Task&, const octo::Context&) { return Outcome::success(); };
  cfg.arms = {other};
  cfg.routes = {};
  cfg.journal = open_journal(file);
  Executor ex(std::move(cfg));
  const auto dead = ex.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(dead[0].reason.find("arm 'work' is not configured"), std::string::npos)
      << dead[0].reason;
  EXPECT_EQ(dead[0].task->payload, "orphan");
}

TEST(Journal, BadOptionsThrowInvalidArgument) {
  TempDir dir;
  EXPECT_THROW(SqliteJournal({.path = ""}), std::invalid_argument);
  EXPECT_THROW(SqliteJournal({.path = dir.file("a.db").string(), .durability = Durability::kNone}),
               std::invalid_argument);
  EXPECT_THROW(SqliteJournal({.path = dir.file("b.db").string(), .max_batch = 0}),
               std::invalid_argument);
  try {
    SqliteJournal({.path = dir.file("c.db").string(), .durability = static_cast<Durability>(9)});
    ADD_FAILURE() << "a durability outside the enum was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("durability 9"), std::string::npos) << e.what();
  }
}

TEST(Journal, SubmitCallablesAreNotJournaled) {
  TempDir dir;
  auto journal = open_journal(dir.file("tasks.db"));
  Executor ex(
      config(journal, [](const Task&, const octo::Context&) { return Outcome::success(); }));
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ex.submit(0, [&] { ++ran; }));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  EXPECT_EQ(ran.load(), 10);
  EXPECT_EQ(journal->stats().records, 0u);
}

// Opens a copy of a journal an older build wrote (`fixture`) on the arms that build used, runs
// what it recovers and returns those tasks by type, with the file's path and what recovery said.
struct OldFile {
  TempDir dir;
  fs::path file;
  std::string version_before;  // PRAGMA user_version of the copy before it was opened
  int migrated_from = -1;
  std::uint64_t recovered = 0;
  std::vector<octo::DeadLetter> dead;
  std::map<std::string, Task> ran;
};
void run_old_file(const char* fixture, OldFile& out) {
  out.file = out.dir.file("tasks.db");
  fs::copy_file(fixture, out.file);
  out.version_before = query(out.file, "PRAGMA user_version")[0][0];
  std::mutex mu;
  auto journal = open_journal(out.file);
  out.migrated_from = journal->stats().migrated_from;
  ExecutorConfig cfg = config(journal, [&](const Task& t, const octo::Context&) {
    std::lock_guard lock(mu);
    out.ran[t.type] = t;
    return Outcome::success();
  });
  for (const char* name : {"deploy", "cleanup", "batch", "secrets"}) {
    octo::ArmConfig a = cfg.arms[0];
    a.name = name;
    cfg.arms.push_back(a);
  }
  Executor ex(std::move(cfg));
  ASSERT_TRUE(ex.wait_idle(kGenerous));
  out.recovered = ex.status().recovered;
  out.dead = ex.dead_letters();
}

// A file the version-1 build wrote (tests/journal/data/journal-v1.db: two unfinished tasks, one
// of them retried twice, a dead letter and a finished task's counter) is migrated when opened:
// its tasks run with everything they carried, the file says version 3, and a reopen is plain.
TEST(Journal, AVersion1FileIsMigratedAndItsTasksRunWithEverythingTheyCarried) {
  OldFile old;
  run_old_file(OCTO_JOURNAL_V1, old);
  ASSERT_EQ(old.version_before, "1");
  EXPECT_EQ(old.migrated_from, 1);
  EXPECT_EQ(old.recovered, 2u);
  ASSERT_EQ(old.dead.size(), 1u);
  EXPECT_EQ(old.dead[0].reason, "handler said no");
  EXPECT_EQ(old.dead[0].attempts, 3u);
  const auto& ran = old.ran;
  const auto& file = old.file;
  ASSERT_EQ(ran.size(), 2u);
  const Task& deploy = ran.at("deploy.rollout");
  EXPECT_EQ(deploy.payload, "svc-a v2");
  EXPECT_EQ(deploy.priority, octo::Priority::kHigh);
  EXPECT_EQ(deploy.target_agents, (std::vector<std::string>{"agent-1", "agent-2"}));
  EXPECT_EQ(deploy.max_attempts, 5u);
  EXPECT_EQ(deploy.attempt, 3u) << "two failed runs before, this is the third";
  EXPECT_EQ(deploy.created, std::chrono::system_clock::time_point(1764633600000ms));
  EXPECT_EQ(deploy.deadline.time_since_epoch().count(), 0) << "version 1 had none";
  EXPECT_EQ(deploy.run_at.time_since_epoch().count(), 0);
  EXPECT_EQ(ran.at("cleanup.tmp").payload, std::string("bin\0ary", 7));
  EXPECT_TRUE(deploy.key.empty());
  EXPECT_EQ(query(file, "PRAGMA user_version")[0][0], "3");
  EXPECT_EQ(query(file, "SELECT value FROM meta WHERE name = 'succeeded'")[0][0], "3");
  EXPECT_EQ(open_journal(file)->stats().migrated_from, 0) << "already version 3";
}

// A file the version-2 build wrote (tests/journal/data/journal-v2.db, through SqliteJournal at
// 9b08667: three unfinished tasks, one with a deadline, a due time, targets and a failed run; a
// dead letter; a finished task's counter) is migrated to version 3: every task keeps what it
// carried and has no key, and tasks enqueued afterwards journal theirs.
TEST(Journal, AVersion2FileIsMigratedAndItsTasksKeepTheirDeadlinesAndDueTimes) {
  OldFile old;
  run_old_file(OCTO_JOURNAL_V2, old);
  ASSERT_EQ(old.version_before, "2");
  EXPECT_EQ(old.migrated_from, 2);
  EXPECT_EQ(old.recovered, 3u);
  ASSERT_EQ(old.dead.size(), 1u);
  EXPECT_EQ(old.dead[0].reason, "handler said no");
  EXPECT_EQ(old.dead[0].attempts, 3u);
  const auto& ran = old.ran;
  const auto& file = old.file;
  ASSERT_EQ(ran.size(), 3u);
  const Task& deploy = ran.at("deploy.rollout");
  EXPECT_EQ(deploy.payload, "svc-a v3");
  EXPECT_EQ(deploy.priority, octo::Priority::kHigh);
  EXPECT_EQ(deploy.target_agents, (std::vector<std::string>{"agent-1", "agent-2"}));
  EXPECT_EQ(deploy.max_attempts, 5u);
  EXPECT_EQ(deploy.attempt, 2u) << "one failed run before";
  EXPECT_EQ(deploy.created, std::chrono::system_clock::time_point(1764720000000ms));
  EXPECT_EQ(deploy.deadline, std::chrono::system_clock::time_point(4102444800000ms));
  EXPECT_EQ(deploy.run_at, std::chrono::system_clock::time_point(1764720060000ms));
  EXPECT_TRUE(deploy.key.empty()) << "version 2 had no keys";
  EXPECT_EQ(ran.at("cleanup.tmp").payload, std::string("bin\0ary", 7));
  EXPECT_EQ(query(file, "PRAGMA user_version")[0][0], "3");
  EXPECT_EQ(query(file, "SELECT value FROM meta WHERE name = 'succeeded'")[0][0], "4");
  EXPECT_EQ(open_journal(file)->stats().migrated_from, 0) << "already version 3";
  // The migrated file takes keys like a new one.
  stop_with_backlog(
      file, [](Executor& ex) { ASSERT_TRUE(ex.enqueue(Task{.type = "job", .key = "agent-17"})); });
  EXPECT_EQ(query(file, "SELECT concurrency_key FROM tasks WHERE state = 'queued'")[0][0],
            "agent-17");
}

// Task::deadline and Task::run_at are journaled: a delayed task left in the timer at shutdown is
// recovered with its due time (not run early), and a deadline survives the restart.
TEST(Journal, DelayedTasksAndDeadlinesSurviveARestart) {
  TempDir dir;
  const auto file = dir.file("tasks.db");
  using Wall = std::chrono::system_clock;
  const auto due = Wall::now() + 300ms;
  const auto far = Wall::now() + 1h;
  const auto deadline = Wall::now() + 1h;
  {
    Executor ex(config(open_journal(file), [](const Task&, const octo::Context&) {
      ADD_FAILURE() << "nothing runs before the restart";
      return Outcome::success();
    }));
    ASSERT_TRUE(ex.enqueue(Task{.type = "job", .payload = "soon", .run_at = due}));
    ASSERT_TRUE(
        ex.enqueue(Task{.type = "job", .payload = "later", .deadline = deadline, .run_at = far}));
    EXPECT_EQ(ex.status().arms[0].delayed, 2u);
    const auto report = ex.shutdown(octo::ShutdownMode::kDrain, kGenerous);
    EXPECT_EQ(report.cancelled, 2u) << "a drain does not wait for tasks not yet due";
    EXPECT_FALSE(report.deadline_hit);
  }
  const auto rows = query(file, "SELECT payload, run_at_ms, deadline_ms FROM tasks ORDER BY key");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(
      rows[1][1],
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(far.time_since_epoch()).count()));
  std::promise<std::pair<Task, Wall::time_point>> ran;
  {
    Executor ex(config(open_journal(file), [&](const Task& t, const octo::Context&) {
      if (t.payload == "soon") ran.set_value({t, Wall::now()});
      return Outcome::success();
    }));
    const auto st = ex.status();
    EXPECT_EQ(st.recovered, 2u);
    auto f = ran.get_future();
    ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
    const auto [task, at] = f.get();
    EXPECT_GE(at, std::chrono::time_point_cast<std::chrono::milliseconds>(due))
        << "not before its time";
    EXPECT_EQ(ex.status().arms[0].delayed, 1u) << "the other waits for its hour";
    const auto later = ex.shutdown(octo::ShutdownMode::kCancel);
    EXPECT_EQ(later.cancelled, 1u);
  }
  const auto left = query(file, "SELECT payload, deadline_ms FROM tasks");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0][0], "later");
  EXPECT_EQ(left[0][1], std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           deadline.time_since_epoch())
                                           .count()));
}

}  // namespace

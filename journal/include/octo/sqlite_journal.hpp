// octo/sqlite_journal.hpp — the built-in Journal: one SQLite file in WAL mode, one writer thread.
//
// Producers and workers append records to a bounded in-memory batch; the writer thread commits
// everything waiting in one transaction (group commit), so one fsync covers many enqueues and
// completions. kSync enqueues wait for their commit (which the writer holds open for at most half
// a commit, 2 ms at most, for the producers the previous commit released, so that they share it);
// kAsync enqueues do not, and what a crash can lose is what was appended since the last commit
// (one transaction's time: see docs/operations.md).
//
//   auto journal = std::make_shared<octo::SqliteJournal>(
//       octo::SqliteJournalOptions{.path = "/var/lib/svc/tasks.db",
//                                  .durability = octo::Durability::kSync});
//   octo::ExecutorConfig cfg;
//   cfg.journal = journal;   // unfinished tasks from the last run are re-enqueued here
//
// The file holds one table, `tasks` (see docs/operations.md for the schema), and is locked by the
// process that opened it: a second SqliteJournal on the same file fails with JournalError.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "octo/journal.hpp"

namespace octo {

struct SqliteJournalOptions {
  std::string path{};
  // kAsync or kSync (kNone is no journal at all and is rejected).
  Durability durability = Durability::kAsync;  // anything else: std::invalid_argument
  // Records in one transaction at most; a longer backlog is committed in several.
  std::size_t max_batch = 16'384;
  // Records waiting for the writer at most: beyond it accepted() waits for the writer, so a
  // backlog (and the async loss window) cannot grow without bound.
  std::size_t max_pending = 65'536;
  // Size cap of the file in bytes (0 = none). A commit that would exceed it fails; a failing
  // journal refuses new tasks (EnqueueError::kJournal), keeps the records it holds and retries
  // (50 ms doubling to 2 s), and takes new tasks again once a commit succeeds (finished tasks
  // free rows, and accepts whose tasks finished meanwhile are dropped unwritten).
  std::uint64_t max_bytes = 0;
  // Dead letters kept in the file; the oldest are deleted first.
  std::size_t dead_letter_limit = 10'000;
};

struct JournalStats {
  std::uint64_t records = 0;         // appended (accepts, retries, completions)
  std::uint64_t commits = 0;         // transactions committed
  std::uint64_t max_batch = 0;       // most records committed by one transaction
  std::uint64_t pending = 0;         // appended, not yet committed
  std::uint64_t recovered = 0;       // unfinished tasks handed to the executor at start
  std::uint64_t producer_waits = 0;  // accepted() calls that waited for a full backlog to drain
  bool failed = false;  // the last commit failed: new tasks are refused (kJournal) until one
                        // succeeds (the writer retries; a deleted or replaced file never does)
  std::string error{};  // the last failure, naming the file (kept after a recovery)
  std::uint64_t commit_failures = 0;  // commits that failed (each retried, see `failed`)
  std::uint64_t unwritten = 0;  // records given up on: the file was deleted or replaced, or the
                                // journal was still failing when it closed
  // Set when opening found commits it could not recover (a damaged write-ahead log after a
  // crash): what and how much, naming the file. Recovery goes on with what could be read.
  std::string recovery_problem{};
  // The schema version (1 or 2) of a file an older octohalo wrote, migrated when it was opened;
  // 0 when the file was already current or new.
  int migrated_from = 0;
  double mean_batch() const noexcept {
    return commits ? static_cast<double>(records - pending) / static_cast<double>(commits) : 0.0;
  }
};

class SqliteJournal final : public Journal {
 public:
  // Opens (creating if absent) and locks the file; throws std::invalid_argument on bad options and
  // JournalError, naming the file, when it is unreadable, corrupt, not a journal, or in use.
  explicit SqliteJournal(SqliteJournalOptions options);
  // Commits what is waiting, then closes the file.
  ~SqliteJournal() override;
  SqliteJournal(const SqliteJournal&) = delete;
  SqliteJournal& operator=(const SqliteJournal&) = delete;

  Durability durability() const noexcept override;
  JournalRecovery recover() override;
  JournalTicket accepted(std::string_view arm, const Task& task) noexcept override;
  bool wait_durable(std::uint64_t seq) noexcept override;
  void retried(std::uint64_t key, std::uint32_t failed_attempts) noexcept override;
  void succeeded(std::uint64_t key) noexcept override;
  void cancelled(std::uint64_t key) noexcept override;
  void dead_lettered(std::uint64_t key, std::string_view reason,
                     std::uint32_t attempts) noexcept override;

  // Blocks until everything appended so far is committed; false if the journal has failed.
  bool flush() noexcept;
  JournalStats stats() const;
  const std::string& path() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo

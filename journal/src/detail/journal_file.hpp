// The journal's SQLite file: its schema, opening (checks, WAL, the key block), reading the tasks
// back, and committing one batch of records. SqliteJournal's writer thread (group commit, waits,
// backpressure) is the only one that commits; read_tasks() runs once at start, before any
// commit. Not thread-safe otherwise.
//
//   detail::JournalFile file(options);          // throws JournalError naming the file
//   auto recovery = file.read_tasks(bad_rows);  // bad rows come back as dead letters
//   file.commit(batch, {});                     // one transaction; throws on a failure
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "detail/journal_record.hpp"
#include "detail/statement.hpp"
#include "octo/sqlite_journal.hpp"

namespace octo::detail {

class JournalFile {
 public:
  // Keys are handed out from a block reserved (committed) at open, so a key is never reused,
  // even for a task accepted just before a crash whose record was never committed.
  static constexpr std::uint64_t kKeyBlock = std::uint64_t{1} << 32;

  // Opens or creates the file and reserves a key block. Throws JournalError naming the file:
  // cannot open, in use by another process, not an octohalo journal, another schema version,
  // corrupt.
  explicit JournalFile(const SqliteJournalOptions& options);
  ~JournalFile();
  JournalFile(const JournalFile&) = delete;
  JournalFile& operator=(const JournalFile&) = delete;

  // What opening found it could not recover (a damaged write-ahead log: see detail/
  // wal_check.hpp), empty when nothing was lost.
  const std::string& recovery_problem() const noexcept { return recovery_problem_; }
  // The schema version the file had when it was opened, when opening migrated it (else 0).
  int migrated_from() const noexcept { return migrated_from_; }

  // The first key of the block reserved at open; keys below key_limit() are free to hand out.
  std::uint64_t first_key() const noexcept { return first_key_; }

  // The tasks the file holds: unfinished ones and dead letters. A row whose fields cannot be a
  // task (a priority outside 0-3, a count that is not a 32-bit count, more attempts than
  // allowed, a negative time) is returned as a dead letter naming the field and value, and its key
  // appended to `bad_keys` so the caller can mark it dead in the file. Throws JournalError when the
  // file cannot be read.
  JournalRecovery read_tasks(std::vector<std::uint64_t>& bad_keys);

  struct CommitExtras {
    std::uint64_t recovered = 0;             // tasks recovered since the last commit
    std::optional<std::uint64_t> key_limit;  // a new key limit to record
  };
  // One transaction with every record of `batch`. Throws std::runtime_error (SQLite's message)
  // on a failure, after rolling back.
  void commit(const std::vector<Record>& batch, const CommitExtras& extras);
  // Non-empty (saying what happened) when the path no longer names the file opened: deleted,
  // renamed away or replaced. One stat() of the path.
  std::string identity_lost() const;
  // Writes the counters not yet written (at close); errors are ignored: the tasks themselves
  // are committed.
  void write_final_counters() noexcept;

 private:
  [[noreturn]] void fail_open(const std::string& what);
  void open();
  void exec(const char* sql);
  std::int64_t pragma_int(const char* sql);
  void set_meta(const char* name, std::uint64_t value);
  void prepare();
  void commit_batch(const std::vector<Record>& batch, const CommitExtras& extras);
  void write_counters();
  void add_meta(const char* name, std::uint64_t n);

  enum S : std::size_t {
    kInsert,
    kDelete,
    kRetry,
    kDead,
    kAddMeta,
    kSetMeta,
    kPrune,
    kBegin,
    kCommit,
    kRollback,
    kCount
  };

  const SqliteJournalOptions& opt_;
  sqlite3* db_ = nullptr;
  std::vector<Stmt> stmts_;
  std::uint64_t first_key_ = 1;
  std::string recovery_problem_;
  int migrated_from_ = 0;
  // The file's identity at open (st_dev, st_ino).
  std::uint64_t device_ = 0, inode_ = 0;
  std::uint64_t dead_count_ = 0;
  // Counters for operators in the meta table, written about once a second and at close.
  struct {
    std::uint64_t succeeded = 0, cancelled = 0, dead = 0, recovered = 0;
  } unsaved_;
  std::chrono::steady_clock::time_point next_meta_write_{};
};

}  // namespace octo::detail

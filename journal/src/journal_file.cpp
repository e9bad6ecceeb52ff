#include "detail/journal_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "detail/wal_check.hpp"

namespace octo::detail {

namespace {

// 'OCTJ': marks the file as ours, so a foreign SQLite database is refused rather than altered.
constexpr int kApplicationId = 0x4F43544A;
// 2 added deadline_ms and run_at_ms, 3 concurrency_key (Task::key); a file of version 1 or 2 is
// migrated when it is opened.
constexpr int kSchemaVersion = 3;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS tasks(
  key          INTEGER PRIMARY KEY,
  arm          TEXT    NOT NULL,
  type         TEXT    NOT NULL,
  payload      BLOB    NOT NULL,
  priority     INTEGER NOT NULL,
  targets      TEXT    NOT NULL DEFAULT '[]',
  max_attempts INTEGER NOT NULL DEFAULT 0,
  created_ms   INTEGER NOT NULL,
  deadline_ms  INTEGER NOT NULL DEFAULT 0,
  run_at_ms    INTEGER NOT NULL DEFAULT 0,
  concurrency_key TEXT NOT NULL DEFAULT '',
  attempts     INTEGER NOT NULL DEFAULT 0,
  state        TEXT    NOT NULL DEFAULT 'queued' CHECK(state IN ('queued', 'dead')),
  reason       TEXT,
  finished_ms  INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_dead ON tasks(finished_ms) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('key_limit', 1), ('succeeded', 0), ('cancelled', 0),
                                  ('dead_lettered', 0), ('recovered', 0), ('opened', 0);
)sql";

// From version 1 (what octohalo wrote before deadlines and due times were journaled): the two
// columns, with "none" for every task already there. Inside the opening transaction.
constexpr const char* kMigrate1To2 = R"sql(
ALTER TABLE tasks ADD COLUMN deadline_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN run_at_ms INTEGER NOT NULL DEFAULT 0;
)sql";

// From version 2 (before Task::key was journaled): no key for every task already there.
constexpr const char* kMigrate2To3 = R"sql(
ALTER TABLE tasks ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT '';
)sql";

}  // namespace

JournalFile::JournalFile(const SqliteJournalOptions& options) : opt_(options) {
  open();
  struct stat st {};
  if (::stat(opt_.path.c_str(), &st) == 0) {
    device_ = static_cast<std::uint64_t>(st.st_dev);
    inode_ = static_cast<std::uint64_t>(st.st_ino);
  }
}

std::string JournalFile::identity_lost() const {
  struct stat st {};
  if (::stat(opt_.path.c_str(), &st) != 0) {
    return std::string("the file was deleted or renamed while open (") +
           std::error_code(errno, std::generic_category()).message() +
           "); nothing written from now on would survive a restart: restart the process to "
           "start a new journal there";
  }
  if (static_cast<std::uint64_t>(st.st_dev) != device_ ||
      static_cast<std::uint64_t>(st.st_ino) != inode_) {
    return "the file was replaced by another while open; nothing written from now on would "
           "survive a restart: restart the process to open the file now at that path";
  }
  return {};
}

JournalFile::~JournalFile() {
  stmts_.clear();
  sqlite3_close_v2(db_);
}

void JournalFile::write_final_counters() noexcept {
  try {
    stmts_[kBegin].run();
    write_counters();
    stmts_[kCommit].run();
  } catch (...) {  // counters only: the tasks themselves are committed
    try {
      stmts_[kRollback].run();
    } catch (...) {
    }
  }
}

void JournalFile::fail_open(const std::string& what) {
  const std::string msg = "octo::SqliteJournal '" + opt_.path + "': " + what;
  stmts_.clear();
  sqlite3_close_v2(db_);
  db_ = nullptr;
  throw JournalError(msg);
}

void JournalFile::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw std::runtime_error(msg);
  }
}

std::int64_t JournalFile::pragma_int(const char* sql) {
  Stmt s(db_, sql);
  return s.step() ? s.i64(0) : 0;
}

void JournalFile::open() {
  // SQLite's own words for these ("unable to open database file", "attempt to write a readonly
  // database") name neither the file nor the fix.
  {
    const std::filesystem::path path(opt_.path);
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      fail_open("cannot open: the directory '" + dir.string() +
                "' does not exist (create it, or choose another path)");
    }
    if (std::filesystem::is_directory(path, ec)) {
      fail_open("cannot open: the path is a directory, not a journal file");
    }
    // The write-ahead log lives beside the file, so the directory must be writable too.
    if (::access(dir.c_str(), W_OK) != 0) {
      fail_open("cannot open: the directory '" + dir.string() +
                "' is not writable (the journal keeps its write-ahead log beside the file): fix "
                "its permissions, or choose another path");
    }
    if (std::filesystem::exists(path, ec) && ::access(path.c_str(), R_OK | W_OK) != 0) {
      fail_open("cannot open: the file is not readable and writable by this process (" +
                std::string(std::error_code(errno, std::generic_category()).message()) +
                "): fix its permissions or owner");
    }
  }
  // Before SQLite replays (and then removes) the write-ahead log: what it will leave out.
  recovery_problem_ = check_wal(opt_.path + "-wal").problem;
  const int rc =
      sqlite3_open_v2(opt_.path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    fail_open(std::string("cannot open: ") + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(db_, 1);
  if (sqlite3_db_readonly(db_, "main") == 1) {
    fail_open(
        "cannot open: the file could only be opened read-only (permissions, or a read-only "
        "mount); the journal must be writable");
  }
  try {
    // EXCLUSIVE before WAL: no shared-memory file, and the first write below takes a lock
    // held until close, so two processes can never run the same journal's tasks.
    exec("PRAGMA locking_mode = EXCLUSIVE");
    const std::int64_t app = pragma_int("PRAGMA application_id");
    const std::int64_t tables = pragma_int("SELECT count(*) FROM sqlite_master");
    if (app != kApplicationId && (app != 0 || tables != 0)) {
      fail_open("is a SQLite database but not an octohalo journal (application_id " +
                std::to_string(app) + ")");
    }
    std::int64_t version = kSchemaVersion;
    if (app == kApplicationId) {
      version = pragma_int("PRAGMA user_version");
      if (version != kSchemaVersion && version != 1 && version != 2) {
        fail_open("journal schema version " + std::to_string(version) +
                  " is not supported (this build reads version " + std::to_string(kSchemaVersion) +
                  ")");
      }
      Stmt check(db_, "PRAGMA quick_check(1)");
      const std::string verdict = check.step() ? check.text(0) : "no answer";
      if (verdict != "ok") fail_open("journal is corrupt: " + verdict);
    }
    exec("PRAGMA journal_mode = WAL");
    // FULL in both modes: a commit is on disk when it returns (kAsync only stops waiting).
    exec("PRAGMA synchronous = FULL");
    if (opt_.max_bytes != 0) {
      const std::int64_t page = pragma_int("PRAGMA page_size");
      const auto pages =
          std::max<std::uint64_t>(1, opt_.max_bytes / static_cast<std::uint64_t>(page));
      exec(("PRAGMA max_page_count = " + std::to_string(pages)).c_str());
    }
    exec("BEGIN IMMEDIATE");
    if (version < kSchemaVersion) migrated_from_ = static_cast<int>(version);
    if (version == 1) exec(kMigrate1To2);
    if (version <= 2) exec(kMigrate2To3);
    exec(kSchema);
    exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
    exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    // Key block: start above every key this file has handed out and reserve the next block.
    const auto limit =
        static_cast<std::uint64_t>(pragma_int("SELECT value FROM meta WHERE name = 'key_limit'"));
    const auto max_key =
        static_cast<std::uint64_t>(pragma_int("SELECT coalesce(max(key), 0) FROM tasks"));
    first_key_ = std::max(limit, max_key + 1);
    set_meta("key_limit", first_key_ + kKeyBlock);
    exec("UPDATE meta SET value = value + 1 WHERE name = 'opened'");
    exec("COMMIT");
    dead_count_ =
        static_cast<std::uint64_t>(pragma_int("SELECT count(*) FROM tasks WHERE state = 'dead'"));
    prepare();
  } catch (const JournalError&) {
    throw;
  } catch (const std::exception& e) {
    const int code = sqlite3_extended_errcode(db_);
    std::string why = e.what();
    if ((code & 0xff) == SQLITE_BUSY) {
      why = "in use by another process (" + why + ")";
    } else if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT) {
      why = "not a readable journal: file is corrupt or not a SQLite database (" + why + ")";
    }
    fail_open(why);
  }
}

void JournalFile::set_meta(const char* name, std::uint64_t value) {
  Stmt s(db_, "UPDATE meta SET value = ? WHERE name = ?");
  s.bind(1, static_cast<std::int64_t>(value)).bind(2, std::string_view(name)).run();
}

void JournalFile::prepare() {
  const char* sql[kCount] = {
      // A statement over several literals is parenthesized: one element, not a missing comma
      // (clang's -Wstring-concatenation fires on the bare form).
      // NOLINTNEXTLINE(bugprone-suspicious-missing-comma)
      ("INSERT OR REPLACE INTO tasks(key, arm, type, payload, priority, targets, max_attempts, "
       "created_ms, deadline_ms, run_at_ms, concurrency_key) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      "DELETE FROM tasks WHERE key = ?",
      "UPDATE tasks SET attempts = ? WHERE key = ?",
      "UPDATE tasks SET state = 'dead', attempts = ?, reason = ?, finished_ms = ? WHERE key = ?",
      "UPDATE meta SET value = value + ? WHERE name = ?",
      "UPDATE meta SET value = ? WHERE name = ?",
      ("DELETE FROM tasks WHERE key IN (SELECT key FROM tasks WHERE state = 'dead' "
       "ORDER BY finished_ms, key LIMIT ?)"),
      "BEGIN IMMEDIATE",
      "COMMIT",
      "ROLLBACK",
  };
  for (const char* q : sql) stmts_.emplace_back(db_, q);
}

JournalRecovery JournalFile::read_tasks(std::vector<std::uint64_t>& bad_keys) {
  JournalRecovery out;
  try {
    std::unordered_map<std::uint64_t, std::vector<std::string>> targets;
    Stmt t(db_,
           "SELECT tasks.key, json_each.value FROM tasks, json_each(tasks.targets) "
           "WHERE tasks.targets <> '[]' ORDER BY tasks.key, json_each.id");
    while (t.step()) targets[static_cast<std::uint64_t>(t.i64(0))].push_back(t.text(1));
    Stmt q(
        db_,
        "SELECT key, arm, type, payload, priority, max_attempts, created_ms, attempts, state, "
        "coalesce(reason, ''), coalesce(finished_ms, 0), deadline_ms, run_at_ms, concurrency_key "
        "FROM tasks "
        "ORDER BY state = 'dead', finished_ms, priority DESC, key");
    while (q.step()) {
      Task task;
      task.durable_key = static_cast<std::uint64_t>(q.i64(0));
      const std::int64_t priority = q.i64(4);
      const std::int64_t max_attempts = q.i64(5);
      const std::int64_t created_ms = q.i64(6);
      const std::int64_t attempts = q.i64(7);
      constexpr std::int64_t kMaxCount = std::numeric_limits<std::uint32_t>::max();
      // Every field is checked before it becomes part of a Task: a row written by another tool
      // or damaged on disk must not index past the priority queues or loop forever.
      std::string bad;
      if (priority < 0 || priority > 3) {
        bad = "priority " + std::to_string(priority) + " is outside 0-3";
      } else if (max_attempts < 0 || max_attempts > kMaxCount) {
        bad = "max_attempts " + std::to_string(max_attempts) + " is not a 32-bit count";
      } else if (attempts < 0 || attempts > (max_attempts != 0 ? max_attempts : kMaxCount)) {
        bad = "attempts " + std::to_string(attempts) + " is outside 0-" +
              std::to_string(max_attempts != 0 ? max_attempts : kMaxCount);
      } else if (!time_from_ms(created_ms)) {
        bad = "created_ms " + std::to_string(created_ms) + " is outside 0-" +
              std::to_string(kMaxTimeMs);
      } else if (!time_from_ms(q.i64(11))) {
        bad = "deadline_ms " + std::to_string(q.i64(11)) + " is outside 0-" +
              std::to_string(kMaxTimeMs);
      } else if (!time_from_ms(q.i64(12))) {
        bad = "run_at_ms " + std::to_string(q.i64(12)) + " is outside 0-" +
              std::to_string(kMaxTimeMs);
      }
      task.type = q.text(2);
      task.payload = q.text(3);
      task.priority = bad.empty() ? static_cast<Priority>(priority) : Priority::kLow;
      task.max_attempts = bad.empty() ? static_cast<std::uint32_t>(max_attempts) : 0;
      task.created = time_from_ms(created_ms).value_or(std::chrono::system_clock::time_point{});
      task.attempt = bad.empty() ? static_cast<std::uint32_t>(attempts) : 0;
      task.deadline = time_from_ms(q.i64(11)).value_or(std::chrono::system_clock::time_point{});
      task.run_at = time_from_ms(q.i64(12)).value_or(std::chrono::system_clock::time_point{});
      task.key = q.text(13);
      if (auto it = targets.find(task.durable_key); it != targets.end()) {
        task.target_agents = std::move(it->second);
      }
      const bool dead = q.text(8) == "dead";
      if (dead || !bad.empty()) {
        DeadLetter d;
        d.arm = q.text(1);
        d.id = task.durable_key;
        d.attempts = task.attempt;
        if (dead) {
          d.reason = q.text(9);
          d.when = time_from_ms(q.i64(10)).value_or(std::chrono::system_clock::time_point{});
        } else {
          d.reason = "journal row " + std::to_string(task.durable_key) + ": " + bad;
          d.when = std::chrono::system_clock::now();
          bad_keys.push_back(task.durable_key);
        }
        d.task = std::move(task);
        out.dead_letters.push_back(std::move(d));
      } else {
        out.unfinished.push_back(JournaledTask{q.text(1), std::move(task)});
      }
    }
  } catch (const std::exception& e) {
    throw JournalError("octo::SqliteJournal '" + opt_.path + "': cannot read tasks: " + e.what());
  }
  return out;
}

void JournalFile::write_counters() {
  add_meta("succeeded", unsaved_.succeeded);
  add_meta("cancelled", unsaved_.cancelled);
  add_meta("dead_lettered", unsaved_.dead);
  add_meta("recovered", unsaved_.recovered);
  unsaved_ = {};
}

void JournalFile::add_meta(const char* name, std::uint64_t n) {
  if (n == 0) return;
  stmts_[kAddMeta].bind(1, static_cast<std::int64_t>(n)).bind(2, std::string_view(name)).run();
}

void JournalFile::commit(const std::vector<Record>& batch, const CommitExtras& extras) {
  try {
    commit_batch(batch, extras);
  } catch (...) {
    try {
      stmts_[kRollback].run();
    } catch (...) {  // the connection is unusable; the journal has failed either way
    }
    throw;
  }
}

void JournalFile::commit_batch(const std::vector<Record>& batch, const CommitExtras& extras) {
  stmts_[kBegin].run();
  std::uint64_t dead = 0;
  for (const Record& r : batch) {
    const auto key = static_cast<std::int64_t>(r.key);
    switch (r.kind) {
      case Kind::kAccepted:
        stmts_[kInsert]
            .bind(1, key)
            .bind(2, r.arm)
            .bind(3, r.type)
            .bind_blob(4, r.payload)
            .bind(5, std::int64_t{r.priority})
            .bind(6, r.targets.empty() ? std::string_view("[]") : std::string_view(r.targets))
            .bind(7, std::int64_t{r.count})
            .bind(8, r.ms)
            .bind(9, r.deadline_ms)
            .bind(10, r.run_at_ms)
            .bind(11, std::string_view(r.concurrency_key))
            .run();
        break;
      case Kind::kRetried:
        stmts_[kRetry].bind(1, std::int64_t{r.count}).bind(2, key).run();
        break;
      case Kind::kSucceeded:
      case Kind::kCancelled:
        stmts_[kDelete].bind(1, key).run();
        (r.kind == Kind::kSucceeded ? unsaved_.succeeded : unsaved_.cancelled) += 1;
        break;
      case Kind::kDeadLettered:
        stmts_[kDead]
            .bind(1, std::int64_t{r.count})
            .bind(2, r.reason)
            .bind(3, r.ms)
            .bind(4, key)
            .run();
        ++dead;
        break;
    }
  }
  unsaved_.dead += dead;
  unsaved_.recovered += extras.recovered;
  // The counters in `meta` are for operators: written about once a second and at close, not
  // in every commit, where their page would be one more write before each fsync.
  if (const auto now = std::chrono::steady_clock::now(); now >= next_meta_write_) {
    write_counters();
    next_meta_write_ = now + std::chrono::seconds(1);
  }
  if (extras.key_limit) {
    stmts_[kSetMeta]
        .bind(1, static_cast<std::int64_t>(*extras.key_limit))
        .bind(2, std::string_view("key_limit"))
        .run();
  }
  dead_count_ += dead;
  if (dead_count_ > opt_.dead_letter_limit) {
    const std::uint64_t extra = dead_count_ - opt_.dead_letter_limit;
    stmts_[kPrune].bind(1, static_cast<std::int64_t>(extra)).run();
    dead_count_ = opt_.dead_letter_limit;
  }
  stmts_[kCommit].run();
}

}  // namespace octo::detail

#include "octo/sqlite_journal.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace octo {

namespace {

using Clock = std::chrono::steady_clock;

// Longest a kSync commit waits for producers still on their way (see Impl::gather).
constexpr std::chrono::milliseconds kMaxGather{2};

// 'OCTJ': marks the file as ours, so a foreign SQLite database is refused rather than altered.
constexpr int kApplicationId = 0x4F43544A;
constexpr int kSchemaVersion = 1;
// Keys are handed out from a block reserved (committed) at open, so a key is never reused, even
// for a task accepted just before a crash whose record was never committed.
constexpr std::uint64_t kKeyBlock = std::uint64_t{1} << 32;

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

enum class Kind : std::uint8_t { kAccepted, kRetried, kSucceeded, kCancelled, kDeadLettered };

struct Record {
  Kind kind = Kind::kSucceeded;
  std::uint8_t priority = 0;
  std::uint32_t count = 0;  // max_attempts for accepts, attempts otherwise
  std::uint64_t key = 0;
  std::int64_t ms = 0;  // created (accepts) or finished (dead letters)
  std::string arm, type, payload, targets, reason;
};

std::int64_t to_ms(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string targets_json(const std::vector<std::string>& targets) {
  std::string out = "[";
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (const char c : targets[i]) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (u < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", u);
        out += buf;
      } else {
        out += c;
      }
    }
    out += '"';
  }
  out += ']';
  return out;
}

// A prepared statement, reset after every use.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db));
    }
  }
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }

  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  // Steps once; true while rows come. Throws on an error.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(sqlite3_errmsg(sqlite3_db_handle(s_)));
  }
  void run() {
    while (step()) {
    }
    reset();
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_blob(s_, col);
    return p ? std::string(static_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace

struct SqliteJournal::Impl {
  explicit Impl(SqliteJournalOptions o) : opt(std::move(o)) {
    if (opt.path.empty())
      throw std::invalid_argument("octo::SqliteJournal: path must not be empty");
    if (opt.durability == Durability::kNone) {
      throw std::invalid_argument("octo::SqliteJournal '" + opt.path +
                                  "': durability must be kAsync or kSync (kNone means no journal)");
    }
    if (opt.max_batch == 0 || opt.max_pending == 0) {
      throw std::invalid_argument("octo::SqliteJournal '" + opt.path +
                                  "': max_batch and max_pending must be >= 1");
    }
    open();
    writer = std::thread([this] { write_loop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    writer_cv.notify_one();
    writer.join();
    if (!failed.load(std::memory_order_relaxed)) {
      try {
        stmts[kBegin].run();
        write_counters();
        stmts[kCommit].run();
      } catch (...) {  // counters only: the tasks themselves are committed
      }
    }
    stmts.clear();
    sqlite3_close_v2(db);
  }

  [[noreturn]] void fail_open(const std::string& what) {
    const std::string msg = "octo::SqliteJournal '" + opt.path + "': " + what;
    stmts.clear();
    sqlite3_close_v2(db);
    db = nullptr;
    throw JournalError(msg);
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      throw std::runtime_error(msg);
    }
  }

  std::int64_t pragma_int(const char* sql) {
    Stmt s(db, sql);
    return s.step() ? s.i64(0) : 0;
  }

  void open() {
    const int rc = sqlite3_open_v2(
        opt.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
        nullptr);
    if (rc != SQLITE_OK) {
      fail_open(std::string("cannot open: ") + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db, 1);
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
      if (app == kApplicationId) {
        const std::int64_t version = pragma_int("PRAGMA user_version");
        if (version != kSchemaVersion) {
          fail_open("journal schema version " + std::to_string(version) +
                    " is not supported (this build reads version " +
                    std::to_string(kSchemaVersion) + ")");
        }
        Stmt check(db, "PRAGMA quick_check(1)");
        const std::string verdict = check.step() ? check.text(0) : "no answer";
        if (verdict != "ok") fail_open("journal is corrupt: " + verdict);
      }
      exec("PRAGMA journal_mode = WAL");
      // FULL in both modes: a commit is on disk when it returns (kAsync only stops waiting).
      exec("PRAGMA synchronous = FULL");
      if (opt.max_bytes != 0) {
        const std::int64_t page = pragma_int("PRAGMA page_size");
        const auto pages =
            std::max<std::uint64_t>(1, opt.max_bytes / static_cast<std::uint64_t>(page));
        exec(("PRAGMA max_page_count = " + std::to_string(pages)).c_str());
      }
      exec("BEGIN IMMEDIATE");
      exec(kSchema);
      exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
      exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
      // Key block: start above every key this file has handed out and reserve the next block.
      const auto limit =
          static_cast<std::uint64_t>(pragma_int("SELECT value FROM meta WHERE name = 'key_limit'"));
      const auto max_key =
          static_cast<std::uint64_t>(pragma_int("SELECT coalesce(max(key), 0) FROM tasks"));
      next_key = std::max(limit, max_key + 1);
      key_limit = next_key + kKeyBlock;
      set_meta("key_limit", key_limit);
      exec("UPDATE meta SET value = value + 1 WHERE name = 'opened'");
      exec("COMMIT");
      dead_count =
          static_cast<std::uint64_t>(pragma_int("SELECT count(*) FROM tasks WHERE state = 'dead'"));
      prepare();
    } catch (const JournalError&) {
      throw;
    } catch (const std::exception& e) {
      const int code = sqlite3_extended_errcode(db);
      std::string why = e.what();
      if ((code & 0xff) == SQLITE_BUSY) {
        why = "in use by another process (" + why + ")";
      } else if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT) {
        why = "not a readable journal: file is corrupt or not a SQLite database (" + why + ")";
      }
      fail_open(why);
    }
  }

  void set_meta(const char* name, std::uint64_t value) {
    Stmt s(db, "UPDATE meta SET value = ? WHERE name = ?");
    s.bind(1, static_cast<std::int64_t>(value)).bind(2, std::string_view(name)).run();
  }

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

  void prepare() {
    const char* sql[kCount] = {
        // One statement over two literals (not a missing comma).
        // NOLINTNEXTLINE(bugprone-suspicious-missing-comma)
        "INSERT OR REPLACE INTO tasks(key, arm, type, payload, priority, targets, max_attempts, "
        "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "DELETE FROM tasks WHERE key = ?",
        "UPDATE tasks SET attempts = ? WHERE key = ?",
        "UPDATE tasks SET state = 'dead', attempts = ?, reason = ?, finished_ms = ? WHERE key = ?",
        "UPDATE meta SET value = value + ? WHERE name = ?",
        "UPDATE meta SET value = ? WHERE name = ?",
        "DELETE FROM tasks WHERE key IN (SELECT key FROM tasks WHERE state = 'dead' "
        "ORDER BY finished_ms, key LIMIT ?)",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
    };
    for (const char* q : sql) stmts.emplace_back(db, q);
  }

  // --- recovery ------------------------------------------------------------------------------

  JournalRecovery recover() {
    JournalRecovery out;
    try {
      std::unordered_map<std::uint64_t, std::vector<std::string>> targets;
      Stmt t(db,
             "SELECT tasks.key, json_each.value FROM tasks, json_each(tasks.targets) "
             "WHERE tasks.targets <> '[]' ORDER BY tasks.key, json_each.id");
      while (t.step()) targets[static_cast<std::uint64_t>(t.i64(0))].push_back(t.text(1));
      Stmt q(db,
             "SELECT key, arm, type, payload, priority, max_attempts, created_ms, attempts, state, "
             "coalesce(reason, ''), coalesce(finished_ms, 0) FROM tasks "
             "ORDER BY state = 'dead', finished_ms, priority DESC, key");
      while (q.step()) {
        Task task;
        task.durable_key = static_cast<std::uint64_t>(q.i64(0));
        task.type = q.text(2);
        task.payload = q.text(3);
        task.priority = static_cast<Priority>(std::clamp<std::int64_t>(q.i64(4), 0, 3));
        task.max_attempts = static_cast<std::uint32_t>(q.i64(5));
        task.created = std::chrono::system_clock::time_point(std::chrono::milliseconds(q.i64(6)));
        task.attempt = static_cast<std::uint32_t>(q.i64(7));
        if (auto it = targets.find(task.durable_key); it != targets.end()) {
          task.target_agents = std::move(it->second);
        }
        if (q.text(8) == "dead") {
          DeadLetter d;
          d.arm = q.text(1);
          d.id = task.durable_key;
          d.attempts = task.attempt;
          d.reason = q.text(9);
          d.when = std::chrono::system_clock::time_point(std::chrono::milliseconds(q.i64(10)));
          d.task = std::move(task);
          out.dead_letters.push_back(std::move(d));
        } else {
          out.unfinished.push_back(JournaledTask{q.text(1), std::move(task)});
        }
      }
    } catch (const std::exception& e) {
      throw JournalError("octo::SqliteJournal '" + opt.path + "': cannot read tasks: " + e.what());
    }
    std::lock_guard lock(mu);
    recovered_count = out.unfinished.size();
    pending_recovered = recovered_count;
    return out;
  }

  // --- appending -----------------------------------------------------------------------------

  // Appends under the lock; returns the record's sequence number, or 0 if the journal failed.
  std::uint64_t append(Record&& r, bool bounded, std::uint64_t* key) {
    std::unique_lock lock(mu);
    if (bounded && pending.size() >= opt.max_pending && !failed.load(std::memory_order_relaxed)) {
      ++producer_waits;
      space_cv.wait(lock, [&] {
        return pending.size() < opt.max_pending || failed.load(std::memory_order_relaxed);
      });
    }
    if (failed.load(std::memory_order_relaxed) || stopping) return 0;
    if (key != nullptr) r.key = *key = next_key++;
    pending.push_back(std::move(r));
    ++records;
    const std::uint64_t seq = ++appended_seq;
    // While the writer gathers (see gather()) only the accept it waits for wakes it.
    const bool wake =
        gathering ? (key != nullptr && ++gathered >= gather_target) || full() : writer_idle;
    lock.unlock();
    if (wake) writer_cv.notify_one();
    return seq;
  }

  void append_end(Kind kind, std::uint64_t key, std::uint32_t count = 0,
                  std::string_view reason = {}) noexcept {
    try {
      Record r;
      r.kind = kind;
      r.key = key;
      r.count = count;
      if (kind == Kind::kDeadLettered) {
        r.reason = std::string(reason);
        r.ms = to_ms(std::chrono::system_clock::now());
      }
      append(std::move(r), false, nullptr);
    } catch (...) {  // out of memory: the task stays unfinished in the file and runs again
    }
  }

  // Waiters sleep on `durable_epoch` (a futex), not on `mu`: a commit that releases eight
  // producers then costs one wake-up each instead of eight threads queueing for the mutex that the
  // writer and the next appends also need.
  bool wait(std::uint64_t seq) const noexcept {
    for (;;) {
      const std::uint32_t epoch = durable_epoch.load(std::memory_order_acquire);
      if (durable_seq.load(std::memory_order_relaxed) >= seq) return true;
      if (failed.load(std::memory_order_relaxed)) return false;
      durable_epoch.wait(epoch, std::memory_order_acquire);
    }
  }

  // Publishes `durable_seq` / `failed` (stored before): the epoch bump is the release that
  // the waiters' acquire pairs with.
  void wake_waiters() noexcept {
    durable_epoch.fetch_add(1, std::memory_order_release);
    durable_epoch.notify_all();
  }

  // --- the writer ----------------------------------------------------------------------------

  void write_loop() {
    std::vector<Record> batch;
    for (;;) {
      std::uint64_t last = 0;
      {
        std::unique_lock lock(mu);
        // Group commit: whatever arrived while the last transaction was committing goes into the
        // next one, so a backlog (or many producers waiting on one fsync) shares a commit.
        writer_idle = true;
        writer_cv.wait(lock, [&] { return !pending.empty() || stopping; });
        gather(lock);
        writer_idle = false;
        if (pending.empty()) return;  // stopping with nothing left
        if (pending.size() <= opt.max_batch) {
          batch.swap(pending);
        } else {
          batch.assign(std::make_move_iterator(pending.begin()),
                       std::make_move_iterator(pending.begin() +
                                               static_cast<std::ptrdiff_t>(opt.max_batch)));
          pending.erase(pending.begin(),
                        pending.begin() + static_cast<std::ptrdiff_t>(opt.max_batch));
        }
        last = appended_seq - pending.size();
        gather_target = 0;
        if (opt.durability == Durability::kSync) {
          for (const Record& r : batch) gather_target += r.kind == Kind::kAccepted ? 1 : 0;
        }
        recovered_to_count = std::exchange(pending_recovered, 0);
        if (key_limit - next_key < kKeyBlock / 2) {
          key_limit += kKeyBlock;
          raise_key_limit = true;
        }
      }
      space_cv.notify_all();
      std::string error;
      const auto t0 = Clock::now();
      try {
        commit(batch);
        const auto took = Clock::now() - t0;
        commit_ewma += (took - commit_ewma) / 8;
      } catch (const std::exception& e) {
        error = e.what();
        try {
          stmts[kRollback].run();
        } catch (...) {
        }
      }
      {
        std::lock_guard lock(mu);
        if (error.empty()) {
          durable_seq.store(last, std::memory_order_relaxed);
          ++commits;
          max_batch_seen = std::max<std::uint64_t>(max_batch_seen, batch.size());
        } else {
          failed.store(true, std::memory_order_relaxed);
          last_error = "octo::SqliteJournal '" + opt.path + "': commit failed: " + error;
        }
      }
      wake_waiters();
      space_cv.notify_all();
      batch.clear();
      if (!error.empty()) {
        std::lock_guard lock(mu);
        pending.clear();
      }
    }
  }

  // kSync group commit: each producer released by the last commit comes back with its next task
  // a few microseconds later, one after another. Committing on the first arrival would leave the
  // rest to wait a whole fsync, so the writer waits for as many accepts as the last commit released
  // (the producers that are on their way), but never longer than half a commit (at most
  // kMaxGather): a producer that has gone away costs the others at most that, once, since the
  // next target counts only the accepts that did arrive.
  void gather(std::unique_lock<std::mutex>& lock) {
    if (gather_target < 2 || stopping) return;
    gathered = 0;
    for (const Record& r : pending) gathered += r.kind == Kind::kAccepted ? 1 : 0;
    if (gathered >= gather_target || full()) return;
    gathering = true;
    writer_cv.wait_for(lock, std::min<Clock::duration>(commit_ewma / 2, kMaxGather),
                       [&] { return gathered >= gather_target || full() || stopping; });
    gathering = false;
  }

  // Under mu: the backlog is at max_pending, so producers are blocked and no gathering helps.
  bool full() const noexcept { return pending.size() >= opt.max_pending; }

  void write_counters() {
    add_meta("succeeded", unsaved.succeeded);
    add_meta("cancelled", unsaved.cancelled);
    add_meta("dead_lettered", unsaved.dead);
    add_meta("recovered", unsaved.recovered);
    unsaved = {};
  }

  void add_meta(const char* name, std::uint64_t n) {
    if (n == 0) return;
    stmts[kAddMeta].bind(1, static_cast<std::int64_t>(n)).bind(2, std::string_view(name)).run();
  }

  void commit(const std::vector<Record>& batch) {
    stmts[kBegin].run();
    std::uint64_t dead = 0;
    for (const Record& r : batch) {
      const auto key = static_cast<std::int64_t>(r.key);
      switch (r.kind) {
        case Kind::kAccepted:
          stmts[kInsert]
              .bind(1, key)
              .bind(2, r.arm)
              .bind(3, r.type)
              .bind_blob(4, r.payload)
              .bind(5, std::int64_t{r.priority})
              .bind(6, r.targets.empty() ? std::string_view("[]") : std::string_view(r.targets))
              .bind(7, std::int64_t{r.count})
              .bind(8, r.ms)
              .run();
          break;
        case Kind::kRetried:
          stmts[kRetry].bind(1, std::int64_t{r.count}).bind(2, key).run();
          break;
        case Kind::kSucceeded:
        case Kind::kCancelled:
          stmts[kDelete].bind(1, key).run();
          (r.kind == Kind::kSucceeded ? unsaved.succeeded : unsaved.cancelled) += 1;
          break;
        case Kind::kDeadLettered:
          stmts[kDead]
              .bind(1, std::int64_t{r.count})
              .bind(2, r.reason)
              .bind(3, r.ms)
              .bind(4, key)
              .run();
          ++dead;
          break;
      }
    }
    unsaved.dead += dead;
    unsaved.recovered += std::exchange(recovered_to_count, 0);
    // The counters in `meta` are for operators: written about once a second and at close, not
    // in every commit, where their page would be one more write before each fsync.
    if (const auto now = Clock::now(); now >= next_meta_write) {
      write_counters();
      next_meta_write = now + std::chrono::seconds(1);
    }
    if (raise_key_limit) {
      std::uint64_t limit;
      {
        std::lock_guard lock(mu);
        limit = key_limit;
      }
      stmts[kSetMeta]
          .bind(1, static_cast<std::int64_t>(limit))
          .bind(2, std::string_view("key_limit"))
          .run();
      raise_key_limit = false;
    }
    dead_count += dead;
    if (dead_count > opt.dead_letter_limit) {
      const std::uint64_t extra = dead_count - opt.dead_letter_limit;
      stmts[kPrune].bind(1, static_cast<std::int64_t>(extra)).run();
      dead_count = opt.dead_letter_limit;
    }
    stmts[kCommit].run();
  }

  const SqliteJournalOptions opt;
  sqlite3* db = nullptr;
  std::vector<Stmt> stmts;  // writer thread only (after open)

  mutable std::mutex mu;
  std::condition_variable writer_cv, space_cv;
  std::vector<Record> pending;
  std::uint64_t appended_seq = 0;
  // Written by the writer under `mu`; read by waiters without it (see wait()).
  std::atomic<std::uint64_t> durable_seq{0};
  std::atomic<bool> failed{false};
  std::atomic<std::uint32_t> durable_epoch{0};
  std::uint64_t next_key = 1, key_limit = 1;
  std::uint64_t records = 0, commits = 0, max_batch_seen = 0, producer_waits = 0;
  std::uint64_t recovered_count = 0, pending_recovered = 0;
  bool writer_idle = false, stopping = false;
  // kSync gathering (see gather()): accepts the writer waits for, accepts seen while it waits.
  bool gathering = false;
  std::size_t gather_target = 0, gathered = 0;
  std::string last_error;
  // Writer thread only.
  std::uint64_t recovered_to_count = 0, dead_count = 0;
  struct {
    std::uint64_t succeeded = 0, cancelled = 0, dead = 0, recovered = 0;
  } unsaved;
  Clock::time_point next_meta_write{};
  Clock::duration commit_ewma{};  // smoothed duration of one commit (fsync included)
  bool raise_key_limit = false;

  std::thread writer;
};

SqliteJournal::SqliteJournal(SqliteJournalOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

SqliteJournal::~SqliteJournal() = default;

Durability SqliteJournal::durability() const noexcept { return impl_->opt.durability; }

JournalRecovery SqliteJournal::recover() { return impl_->recover(); }

JournalTicket SqliteJournal::accepted(std::string_view arm, const Task& task) noexcept {
  try {
    Record r;
    r.kind = Kind::kAccepted;
    r.priority = static_cast<std::uint8_t>(task.priority);
    r.count = task.max_attempts;
    r.ms = to_ms(task.created);
    r.arm = std::string(arm);
    r.type = task.type;
    r.payload = task.payload;
    if (!task.target_agents.empty()) r.targets = targets_json(task.target_agents);
    std::uint64_t key = 0;
    const std::uint64_t seq = impl_->append(std::move(r), true, &key);
    if (seq == 0) return {};
    return {key, seq};
  } catch (...) {
    return {};
  }
}

bool SqliteJournal::wait_durable(std::uint64_t seq) noexcept { return impl_->wait(seq); }

void SqliteJournal::retried(std::uint64_t key, std::uint32_t failed_attempts) noexcept {
  impl_->append_end(Kind::kRetried, key, failed_attempts);
}

void SqliteJournal::succeeded(std::uint64_t key) noexcept {
  impl_->append_end(Kind::kSucceeded, key);
}

void SqliteJournal::cancelled(std::uint64_t key) noexcept {
  impl_->append_end(Kind::kCancelled, key);
}

void SqliteJournal::dead_lettered(std::uint64_t key, std::string_view reason,
                                  std::uint32_t attempts) noexcept {
  impl_->append_end(Kind::kDeadLettered, key, attempts, reason);
}

bool SqliteJournal::flush() noexcept {
  std::uint64_t seq;
  {
    std::lock_guard lock(impl_->mu);
    seq = impl_->appended_seq;
  }
  return wait_durable(seq);
}

JournalStats SqliteJournal::stats() const {
  std::lock_guard lock(impl_->mu);
  JournalStats s;
  s.records = impl_->records;
  s.commits = impl_->commits;
  s.max_batch = impl_->max_batch_seen;
  s.pending = impl_->appended_seq - impl_->durable_seq.load(std::memory_order_relaxed);
  s.recovered = impl_->recovered_count;
  s.producer_waits = impl_->producer_waits;
  s.failed = impl_->failed.load(std::memory_order_relaxed);
  s.error = impl_->last_error;
  return s;
}

const std::string& SqliteJournal::path() const noexcept { return impl_->opt.path; }

}  // namespace octo

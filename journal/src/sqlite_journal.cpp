#include "octo/sqlite_journal.hpp"

#include <octo/detail/annotated_mutex.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "detail/journal_file.hpp"
#include "detail/journal_record.hpp"

namespace octo {

namespace {

using SteadyTime = std::chrono::steady_clock;
using detail::Kind;
using detail::Record;
using detail::to_ms;
using detail::to_stored_ms;
using octo::detail::LockGuard;
using octo::detail::UniqueLock;

// Longest a kSync commit waits for producers still on their way (see Impl::gather).
constexpr std::chrono::milliseconds kMaxGather{2};
// Waits between tries after a failed commit: doubling from the first to the last.
constexpr std::chrono::milliseconds kFirstRetry{50};
constexpr std::chrono::milliseconds kMaxRetry{2'000};

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

}  // namespace

struct SqliteJournal::Impl {
  explicit Impl(SqliteJournalOptions o) : opt(std::move(o)) {
    if (opt.path.empty())
      throw std::invalid_argument("octo::SqliteJournal: path must not be empty");
    if (opt.durability != Durability::kAsync && opt.durability != Durability::kSync) {
      throw std::invalid_argument("octo::SqliteJournal '" + opt.path + "': durability " +
                                  std::to_string(static_cast<int>(opt.durability)) +
                                  " must be kAsync or kSync (kNone means no journal)");
    }
    if (opt.max_batch == 0 || opt.max_pending == 0) {
      throw std::invalid_argument("octo::SqliteJournal '" + opt.path +
                                  "': max_batch and max_pending must be >= 1");
    }
    file = std::make_unique<detail::JournalFile>(opt);
    {
      LockGuard lock(mu);
      next_key = file->first_key();
      key_limit = next_key + detail::JournalFile::kKeyBlock;
    }
    writer = std::thread([this] { write_loop(); });
  }

  ~Impl() {
    {
      LockGuard lock(mu);
      stopping = true;
    }
    writer_cv.notify_one();
    writer.join();
    if (!failed.load(std::memory_order_relaxed)) file->write_final_counters();
  }

  JournalRecovery recover() {
    std::vector<std::uint64_t> bad_keys;
    JournalRecovery out = file->read_tasks(bad_keys);
    // Rows that cannot be tasks are dead letters from now on, in the file too (committed with
    // the next batch), so they are reported once, not at every start.
    for (std::size_t i = 0; i < out.dead_letters.size(); ++i) {
      const DeadLetter& d = out.dead_letters[i];
      if (std::find(bad_keys.begin(), bad_keys.end(), d.id) != bad_keys.end())
        append_end(Kind::kDeadLettered, d.id, d.attempts, d.reason);
    }
    LockGuard lock(mu);
    recovered_count = out.unfinished.size();
    pending_recovered = recovered_count;
    return out;
  }

  // Appends under the lock; returns the record's sequence number, or 0 if the journal failed.
  std::uint64_t append(Record&& r, bool bounded, std::uint64_t* key) OCTO_EXCLUDES(mu) {
    UniqueLock lock(mu);
    if (bounded && pending.size() >= opt.max_pending && !failed.load(std::memory_order_relaxed)) {
      ++producer_waits;
      while (pending.size() >= opt.max_pending && !failed.load(std::memory_order_relaxed))
        space_cv.wait(lock.native());
    }
    // A failing journal refuses new tasks (bounded accepts) but still takes the retries and
    // completions of those it holds, so its next successful commit leaves the file right; a
    // broken one (its file gone) takes nothing.
    if ((bounded && failed.load(std::memory_order_relaxed)) || broken || stopping) return 0;
    if (key != nullptr) r.key = *key = next_key++;
    const std::uint64_t seq = ++appended_seq;
    r.seq = seq;
    pending.push_back(std::move(r));
    ++records;
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

  void write_loop() OCTO_EXCLUDES(mu) {
    std::vector<Record> batch;
    auto retry_delay = kFirstRetry;
    for (;;) {
      std::uint64_t last = 0;
      detail::JournalFile::CommitExtras extras;
      bool nothing_left = false;
      {
        UniqueLock lock(mu);
        // Group commit: whatever arrived while the last transaction was committing goes into the
        // next one, so a backlog (or many producers waiting on one fsync) shares a commit.
        writer_idle = true;
        while (pending.empty() && !stopping) writer_cv.wait(lock.native());
        if (failed.load(std::memory_order_relaxed)) {
          // After a failed commit: wait before the next try (stop() cuts it short), and drop what
          // no longer needs the disk (tasks accepted and finished since).
          const auto until = SteadyTime::now() + retry_delay;
          while (!stopping &&
                 writer_cv.wait_until(lock.native(), until) != std::cv_status::timeout) {
          }
          compact_pending();
          if (pending.empty()) {
            // Everything it held finished before it reached the disk: nothing is outstanding.
            durable_seq.store(appended_seq, std::memory_order_relaxed);
            failed.store(false, std::memory_order_relaxed);
            retry_delay = kFirstRetry;
            nothing_left = true;
          }
        } else {
          gather(lock);
        }
        writer_idle = false;
        if (!nothing_left && pending.empty()) return;  // stopping with nothing left
      }
      if (nothing_left) {
        wake_waiters();
        space_cv.notify_all();
        continue;
      }
      {
        LockGuard lock(mu);
        if (pending.size() <= opt.max_batch) {
          batch.swap(pending);
        } else {
          batch.assign(std::make_move_iterator(pending.begin()),
                       std::make_move_iterator(pending.begin() +
                                               static_cast<std::ptrdiff_t>(opt.max_batch)));
          pending.erase(pending.begin(),
                        pending.begin() + static_cast<std::ptrdiff_t>(opt.max_batch));
        }
        // Durable after this commit: everything appended before the first record left waiting
        // (records compacted away needed no commit).
        last = pending.empty() ? appended_seq : pending.front().seq - 1;
        gather_target = 0;
        if (opt.durability == Durability::kSync) {
          for (const Record& r : batch) gather_target += r.kind == Kind::kAccepted ? 1 : 0;
        }
        extras.recovered = std::exchange(pending_recovered, 0);
        if (key_limit - next_key < detail::JournalFile::kKeyBlock / 2) {
          key_limit += detail::JournalFile::kKeyBlock;
          unsaved_key_limit = key_limit;
        }
        // Until a commit records it: a restart must not hand out keys given out before.
        extras.key_limit = unsaved_key_limit;
      }
      space_cv.notify_all();
      std::string error;
      bool permanent = false;
      const auto t0 = SteadyTime::now();
      try {
        // A file deleted or replaced under the open connection would take every later commit
        // with it (into an unlinked inode): nothing written from then on survives a restart.
        if (const std::string lost = file->identity_lost(); !lost.empty()) {
          error = lost;
          permanent = true;
        } else {
          file->commit(batch, extras);
          const auto took = SteadyTime::now() - t0;
          commit_ewma += (took - commit_ewma) / 8;
        }
      } catch (const std::exception& e) {
        error = e.what();
      }
      bool give_up = false;
      {
        LockGuard lock(mu);
        if (error.empty()) {
          durable_seq.store(last, std::memory_order_relaxed);
          ++commits;
          max_batch_seen = std::max<std::uint64_t>(max_batch_seen, batch.size());
          failed.store(false, std::memory_order_relaxed);
          unsaved_key_limit.reset();
          retry_delay = kFirstRetry;
        } else {
          ++commit_failures;
          failed.store(true, std::memory_order_relaxed);
          broken = broken || permanent;
          last_error = "octo::SqliteJournal '" + opt.path + "': commit failed: " + error;
          // Kept, in order, for the next try: accepted tasks are not dropped from the journal
          // because one commit failed (a full disk frees up; finished tasks compact away).
          // Given up only when the file is gone or at stop, and then counted as unwritten.
          give_up = broken || stopping;
          if (give_up) {
            unwritten += batch.size() + pending.size();
            pending.clear();
          } else {
            pending.insert(pending.begin(), std::make_move_iterator(batch.begin()),
                           std::make_move_iterator(batch.end()));
            pending_recovered += extras.recovered;
            retry_delay = std::min(retry_delay * 2, kMaxRetry);
          }
        }
      }
      wake_waiters();
      space_cv.notify_all();
      batch.clear();
      if (give_up) {
        LockGuard lock(mu);
        if (stopping) return;
      }
    }
  }

  // After a failed commit: an accept still waiting here whose task has since succeeded or been
  // cancelled needs no disk at all, so the pair (and its retries between) is dropped; this is
  // how a journal that filled its disk recovers once its tasks finish. Order is kept otherwise.
  void compact_pending() OCTO_REQUIRES(mu) {
    std::unordered_map<std::uint64_t, bool> finished;  // key -> accept here, then finished
    for (const Record& r : pending) {
      if (r.kind == Kind::kAccepted) {
        finished.emplace(r.key, false);
      } else if (r.kind == Kind::kSucceeded || r.kind == Kind::kCancelled) {
        if (auto it = finished.find(r.key); it != finished.end()) it->second = true;
      }
    }
    std::erase_if(pending, [&](const Record& r) {
      if (r.kind == Kind::kDeadLettered) return false;
      const auto it = finished.find(r.key);
      return it != finished.end() && it->second;
    });
  }

  // kSync group commit: each producer released by the last commit comes back with its next task
  // a few microseconds later, one after another. Committing on the first arrival would leave the
  // rest to wait a whole fsync, so the writer waits for as many accepts as the last commit released
  // (the producers that are on their way), but never longer than half a commit (at most
  // kMaxGather): a producer that has gone away costs the others at most that, once, since the
  // next target counts only the accepts that did arrive.
  void gather(UniqueLock& lock) OCTO_REQUIRES(mu) {
    if (gather_target < 2 || stopping) return;
    gathered = 0;
    for (const Record& r : pending) gathered += r.kind == Kind::kAccepted ? 1 : 0;
    if (gathered >= gather_target || full()) return;
    gathering = true;
    const auto until =
        SteadyTime::now() + std::min<SteadyTime::duration>(commit_ewma / 2, kMaxGather);
    while (gathered < gather_target && !full() && !stopping) {
      if (writer_cv.wait_until(lock.native(), until) == std::cv_status::timeout) break;
    }
    gathering = false;
  }

  // The backlog is at max_pending, so producers are blocked and no gathering helps.
  bool full() const noexcept OCTO_REQUIRES(mu) { return pending.size() >= opt.max_pending; }

  const SqliteJournalOptions opt;
  std::unique_ptr<detail::JournalFile> file;  // the writer thread's (after recover())

  mutable octo::detail::Mutex mu;
  std::condition_variable writer_cv, space_cv;
  std::vector<Record> pending OCTO_GUARDED_BY(mu);
  std::uint64_t appended_seq OCTO_GUARDED_BY(mu) = 0;
  // Written by the writer under `mu`; read by waiters without it (see wait()).
  std::atomic<std::uint64_t> durable_seq{0};
  std::atomic<bool> failed{false};
  std::atomic<std::uint32_t> durable_epoch{0};
  std::uint64_t next_key OCTO_GUARDED_BY(mu) = 1;
  std::uint64_t key_limit OCTO_GUARDED_BY(mu) = 1;
  std::uint64_t records OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t commits OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t max_batch_seen OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t producer_waits OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t recovered_count OCTO_GUARDED_BY(mu) = 0;
  std::uint64_t pending_recovered OCTO_GUARDED_BY(mu) = 0;
  bool writer_idle OCTO_GUARDED_BY(mu) = false;
  bool stopping OCTO_GUARDED_BY(mu) = false;
  // kSync gathering (see gather()): accepts the writer waits for, accepts seen while it waits.
  bool gathering OCTO_GUARDED_BY(mu) = false;
  std::size_t gather_target OCTO_GUARDED_BY(mu) = 0;
  std::size_t gathered OCTO_GUARDED_BY(mu) = 0;
  std::string last_error OCTO_GUARDED_BY(mu);
  std::uint64_t commit_failures OCTO_GUARDED_BY(mu) = 0;
  // Records given up on (the file was deleted or replaced, or still failing at close).
  std::uint64_t unwritten OCTO_GUARDED_BY(mu) = 0;
  // The file is gone: nothing more is written (a restart creates a new journal).
  bool broken OCTO_GUARDED_BY(mu) = false;
  SteadyTime::duration commit_ewma{};  // writer thread only: one commit's smoothed duration
  std::optional<std::uint64_t> unsaved_key_limit OCTO_GUARDED_BY(mu);

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
    r.deadline_ms = to_stored_ms(task.deadline);
    r.run_at_ms = to_stored_ms(task.run_at);
    r.arm = std::string(arm);
    r.type = task.type;
    r.payload = task.payload;
    if (!task.target_agents.empty()) r.targets = targets_json(*task.target_agents);
    if (!task.key.empty()) r.concurrency_key = *task.key;
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
    LockGuard lock(impl_->mu);
    seq = impl_->appended_seq;
  }
  return wait_durable(seq);
}

JournalStats SqliteJournal::stats() const {
  LockGuard lock(impl_->mu);
  JournalStats s;
  s.records = impl_->records;
  s.commits = impl_->commits;
  s.max_batch = impl_->max_batch_seen;
  s.pending = impl_->appended_seq - impl_->durable_seq.load(std::memory_order_relaxed);
  s.recovered = impl_->recovered_count;
  s.producer_waits = impl_->producer_waits;
  s.failed = impl_->failed.load(std::memory_order_relaxed);
  s.error = impl_->last_error;
  s.commit_failures = impl_->commit_failures;
  if (!impl_->file->recovery_problem().empty())
    s.recovery_problem = "octo::SqliteJournal '" + impl_->opt.path +
                         "': opened after a crash, but " + impl_->file->recovery_problem();
  s.unwritten = impl_->unwritten;
  s.migrated_from = impl_->file->migrated_from();
  return s;
}

const std::string& SqliteJournal::path() const noexcept { return impl_->opt.path; }

}  // namespace octo

// octo/journal.hpp — durable record of accepted tasks, so that a restart loses none.
//
// An executor given a Journal records every typed task it accepts and how each one ends; on start
// it re-enqueues what a previous run left unfinished (at-least-once: a task that was running when
// the process died runs again, so handlers should be idempotent, keyed by Task::durable_key).
// submit() callables are never journaled. SqliteJournal (octo/sqlite_journal.hpp) is the built-in
// implementation; the interface is what the executor needs from any other.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "octo/dead_letter.hpp"
#include "octo/task.hpp"

namespace octo {

enum class Durability : std::uint8_t {
  kNone,   // no journal: tasks live in memory only
  kAsync,  // enqueue returns at once; the record is committed within a bounded delay
  kSync,   // enqueue returns only after the record is committed
};
std::string_view to_string(Durability d) noexcept;

// An unreadable, corrupt or foreign journal file, or one another process holds. what() names it.
class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A task a previous run accepted and did not finish. task.attempt counts its failed runs.
struct JournaledTask {
  std::string arm;
  Task task;
};

struct JournalRecovery {
  std::vector<JournaledTask> unfinished;  // highest priority first, then in acceptance order
  std::vector<DeadLetter> dead_letters;   // most recent last (DeadLetter::id is the durable key)
};

// The answer to Journal::accepted: the task's durable key and the sequence number to wait for.
struct JournalTicket {
  std::uint64_t key = 0;  // 0: the journal has failed and the task must be refused
  std::uint64_t seq = 0;
  explicit operator bool() const noexcept { return key != 0; }
};

// Called by the executor from producer and worker threads concurrently; must be thread-safe.
class Journal {
 public:
  virtual ~Journal() = default;

  virtual Durability durability() const noexcept = 0;
  // Once, from the executor's constructor, before any other call. Throws JournalError.
  virtual JournalRecovery recover() = 0;

  // A typed task was accepted on `arm` (task.durable_key is ignored: the journal assigns it).
  virtual JournalTicket accepted(std::string_view arm, const Task& task) noexcept = 0;
  // Blocks until the record with this sequence number is committed; false if it never will be.
  virtual bool wait_durable(std::uint64_t seq) noexcept = 0;
  // A run failed and a retry is scheduled; `failed_attempts` runs have failed so far.
  virtual void retried(std::uint64_t key, std::uint32_t failed_attempts) noexcept = 0;
  virtual void succeeded(std::uint64_t key) noexcept = 0;
  virtual void cancelled(std::uint64_t key) noexcept = 0;
  virtual void dead_lettered(std::uint64_t key, std::string_view reason,
                             std::uint32_t attempts) noexcept = 0;
};

}  // namespace octo

// halo/audit.hpp — the append-only record of every repair decision.
//
// One entry per decision: a task dispatched, suggested (dry run), suppressed (and why),
// waiting for approval, approved, rejected, failed to dispatch, and each repair's outcome; one
// per analysis run (each cycle's analyzers, their issue counts and errors), and one per analyzer
// whose issues the engine refused.
// Entries get increasing sequence numbers; the log keeps the newest `capacity` and counts what it
// dropped. Thread-safe.
//
//   for (const auto& e : engine.audit().entries(50)) std::cout << halo::to_json_line(e) << '\n';
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "octo/detail/annotated_mutex.hpp"
#include "octo/task.hpp"

namespace halo {

enum class AuditKind : std::uint8_t {
  kDispatched,
  kSuggested,        // dry run: planned, not dispatched
  kSuppressed,       // a safety rail held it back; `reason` says which
  kPendingApproval,  // waits for approve()/reject()
  kApproved,
  kRejected,
  kDispatchFailed,  // the executor refused it; `reason` is the EnqueueError
  kSucceeded,       // outcome: the repair task succeeded
  kFailed,          // outcome: the repair task was dead-lettered
  kCancelled,       // outcome: the repair task was cancelled
  kStateChanged,    // a weak point's life cycle moved; `reason` is "from -> to: why"
  kSilenced,        // a silence was added or ended early
  kBreaker,         // the systemic breaker opened or closed; `reason` says why
  kAnalysis,        // one per cycle: the analyzers run, issues per analyzer, errors (`reason`)
  kIssuesRejected,  // an analyzer's issues refused this cycle (`subject` the analyzer, `reason`)
  kFleet,           // the fleet (halo/fleet.hpp): a lease granted, lost or released, an outcome
                    // written or refused as stale, the fleet lost or rejoined
};
std::string_view to_string(AuditKind k) noexcept;

// Entries are recycled (the log's slot exchange, the engine's fill_audit_entry write every field
// over old ones); audit.cpp checks the field count at compile time.
struct AuditEntry {
  std::uint64_t seq = 0;
  std::chrono::system_clock::time_point when{};
  AuditKind kind = AuditKind::kDispatched;
  std::string cycle_id{};  // empty for outcomes and approvals outside a cycle
  std::string weak_point{};
  std::string task_type{};
  std::string subject{};
  octo::TaskId task_id = 0;
  std::uint64_t approval_id = 0;
  std::string reason{};
};

// "2026-11-23T08:15:30.123Z": UTC, milliseconds (audit entries, cycle timestamps, reports).
std::string format_iso8601(std::chrono::system_clock::time_point t);

// One JSON object on one line (no trailing newline).
std::string to_json_line(const AuditEntry& e);

class AuditLog {
 public:
  explicit AuditLog(std::size_t capacity = 10'000);
  // Stamps seq and, when unset, the time.
  void append(AuditEntry e);
  // Appends in order under one lock (the engine's per-cycle batch). Returns the entries this
  // pushed out of the log, those of the batch that did not fit included, oldest first: a caller
  // may archive them, or reuse the vector's storage.
  std::vector<AuditEntry> append(std::vector<AuditEntry> batch);
  // The newest `limit` entries, oldest first.
  std::vector<AuditEntry> entries(std::size_t limit = SIZE_MAX) const;
  // Writes the newest `limit` entries as JSON lines.
  void write_json_lines(std::ostream& out, std::size_t limit = SIZE_MAX) const;
  std::uint64_t appended() const;
  std::uint64_t dropped() const;

 private:
  void grow() OCTO_REQUIRES(mu_);
  // Full ring: `e` takes the oldest entry's slot and gets the oldest entry in exchange.
  void take_oldest_slot(AuditEntry& e) noexcept OCTO_REQUIRES(mu_);

  const std::size_t capacity_;
  mutable octo::detail::Mutex mu_;
  // A ring: grows to capacity_, then each entry takes the oldest one's slot.
  std::vector<AuditEntry> ring_ OCTO_GUARDED_BY(mu_);
  std::size_t head_ OCTO_GUARDED_BY(mu_) = 0;  // the oldest entry, once the ring is full
  std::uint64_t next_seq_ OCTO_GUARDED_BY(mu_) = 1;
  std::uint64_t dropped_ OCTO_GUARDED_BY(mu_) = 0;
};

}  // namespace halo

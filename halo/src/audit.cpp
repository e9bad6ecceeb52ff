#include "halo/audit.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "detail/field_count.hpp"
#include "detail/json.hpp"

namespace halo {

std::string_view to_string(AuditKind k) noexcept {
  switch (k) {
    case AuditKind::kDispatched:
      return "dispatched";
    case AuditKind::kSuggested:
      return "suggested";
    case AuditKind::kSuppressed:
      return "suppressed";
    case AuditKind::kPendingApproval:
      return "pending-approval";
    case AuditKind::kApproved:
      return "approved";
    case AuditKind::kRejected:
      return "rejected";
    case AuditKind::kDispatchFailed:
      return "dispatch-failed";
    case AuditKind::kSucceeded:
      return "succeeded";
    case AuditKind::kFailed:
      return "failed";
    case AuditKind::kCancelled:
      return "cancelled";
    case AuditKind::kStateChanged:
      return "state-changed";
    case AuditKind::kSilenced:
      return "silenced";
    case AuditKind::kBreaker:
      return "breaker";
    case AuditKind::kAnalysis:
      return "analysis";
    case AuditKind::kIssuesRejected:
      return "issues-rejected";
    case AuditKind::kFleet:
      return "fleet";
  }
  return "?";
}

std::string format_iso8601(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string to_json_line(const AuditEntry& e) {
  std::string s = "{\"seq\":" + std::to_string(e.seq) + ",\"time\":";
  detail::append_json_string(s, format_iso8601(e.when));
  s += ",\"kind\":";
  detail::append_json_string(s, to_string(e.kind));
  const std::pair<const char*, const std::string*> fields[] = {{"cycle", &e.cycle_id},
                                                               {"weak_point", &e.weak_point},
                                                               {"task_type", &e.task_type},
                                                               {"subject", &e.subject},
                                                               {"reason", &e.reason}};
  for (const auto& [key, value] : fields) {
    if (value->empty()) continue;
    s += ",\"";
    s += key;
    s += "\":";
    detail::append_json_string(s, *value);
  }
  if (e.task_id != 0) s += ",\"task_id\":" + std::to_string(e.task_id);
  if (e.approval_id != 0) s += ",\"approval_id\":" + std::to_string(e.approval_id);
  s += '}';
  return s;
}

AuditLog::AuditLog(std::size_t capacity) : capacity_(capacity) {
  if (capacity == 0) throw std::invalid_argument("halo::AuditLog: capacity must be at least 1");
}

void AuditLog::grow() {
  // Doubling, but never past capacity_ slots: a large capacity costs memory only once used.
  if (ring_.size() == ring_.capacity())
    ring_.reserve(std::min(capacity_, std::max<std::size_t>(64, 2 * ring_.size())));
}

namespace {

// Field by field: std::swap would make three moves of every string.
static_assert(detail::field_count<AuditEntry>() == 10,
              "AuditEntry gained a field: swap it here and set it in Engine::fill_audit_entry");

void swap_entries(AuditEntry& a, AuditEntry& b) noexcept {
  std::swap(a.seq, b.seq);
  std::swap(a.when, b.when);
  std::swap(a.kind, b.kind);
  a.cycle_id.swap(b.cycle_id);
  a.weak_point.swap(b.weak_point);
  a.task_type.swap(b.task_type);
  a.subject.swap(b.subject);
  std::swap(a.task_id, b.task_id);
  std::swap(a.approval_id, b.approval_id);
  a.reason.swap(b.reason);
}

}  // namespace

void AuditLog::take_oldest_slot(AuditEntry& e) noexcept {
  swap_entries(ring_[head_], e);
  head_ = head_ + 1 == capacity_ ? 0 : head_ + 1;
  ++dropped_;
}

void AuditLog::append(AuditEntry e) {
  if (e.when == std::chrono::system_clock::time_point{}) e.when = std::chrono::system_clock::now();
  octo::detail::LockGuard lock(mu_);
  e.seq = next_seq_++;
  if (ring_.size() < capacity_) {
    grow();
    ring_.push_back(std::move(e));
    return;
  }
  take_oldest_slot(e);  // the dropped entry is freed after the lock is released
}

std::vector<AuditEntry> AuditLog::append(std::vector<AuditEntry> batch) {
  const auto now = std::chrono::system_clock::now();
  std::size_t skip = 0;    // batch[0, skip): newest entries would push them out at once
  std::size_t filled = 0;  // batch[skip, skip + filled): moved into free slots
  {
    octo::detail::LockGuard lock(mu_);
    skip = batch.size() > capacity_ ? batch.size() - capacity_ : 0;
    dropped_ += skip;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      AuditEntry& e = batch[i];
      if (e.when == std::chrono::system_clock::time_point{}) e.when = now;
      e.seq = next_seq_++;
      if (i < skip) continue;
      if (ring_.size() < capacity_) {
        grow();
        ring_.push_back(std::move(e));
        ++filled;
        continue;
      }
      // The entry takes the oldest one's slot, and the oldest takes its place in the batch.
      take_oldest_slot(e);
    }
  }
  // batch is now: dropped new entries, moved-from shells, entries pushed out of the ring (oldest
  // first). Usually only the last part is there; otherwise put the ring's entries first.
  if (filled != 0)
    batch.erase(batch.begin() + static_cast<std::ptrdiff_t>(skip),
                batch.begin() + static_cast<std::ptrdiff_t>(skip + filled));
  if (skip != 0)
    std::rotate(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(skip), batch.end());
  return batch;
}

std::vector<AuditEntry> AuditLog::entries(std::size_t limit) const {
  octo::detail::LockGuard lock(mu_);
  const std::size_t size = ring_.size();
  const std::size_t n = std::min(limit, size);
  std::vector<AuditEntry> out;
  out.reserve(n);
  // Oldest first: the ring's order starts at head_ (0 until the ring is full).
  for (std::size_t k = size - n; k < size; ++k) out.push_back(ring_[(head_ + k) % size]);
  return out;
}

void AuditLog::write_json_lines(std::ostream& out, std::size_t limit) const {
  for (const auto& e : entries(limit)) out << to_json_line(e) << '\n';
}

std::uint64_t AuditLog::appended() const {
  octo::detail::LockGuard lock(mu_);
  return next_seq_ - 1;
}

std::uint64_t AuditLog::dropped() const {
  octo::detail::LockGuard lock(mu_);
  return dropped_;
}

}  // namespace halo

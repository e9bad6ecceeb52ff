#include "halo/audit.hpp"

#include <cstdio>
#include <ctime>
#include <stdexcept>

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

void AuditLog::append(AuditEntry e) {
  if (e.when == std::chrono::system_clock::time_point{}) e.when = std::chrono::system_clock::now();
  std::lock_guard lock(mu_);
  e.seq = next_seq_++;
  if (entries_.size() == capacity_) {
    entries_.pop_front();
    ++dropped_;
  }
  entries_.push_back(std::move(e));
}

void AuditLog::append(std::vector<AuditEntry> batch) {
  const auto now = std::chrono::system_clock::now();
  for (auto& e : batch)
    if (e.when == std::chrono::system_clock::time_point{}) e.when = now;
  // Entries that would be dropped at once are counted, not copied.
  std::lock_guard lock(mu_);
  const std::size_t skip = batch.size() > capacity_ ? batch.size() - capacity_ : 0;
  next_seq_ += skip;
  dropped_ += skip;
  for (std::size_t i = skip; i < batch.size(); ++i) {
    batch[i].seq = next_seq_++;
    if (entries_.size() == capacity_) {
      entries_.pop_front();
      ++dropped_;
    }
    entries_.push_back(std::move(batch[i]));
  }
}

std::vector<AuditEntry> AuditLog::entries(std::size_t limit) const {
  std::lock_guard lock(mu_);
  const std::size_t n = std::min(limit, entries_.size());
  return {entries_.end() - static_cast<std::ptrdiff_t>(n), entries_.end()};
}

void AuditLog::write_json_lines(std::ostream& out, std::size_t limit) const {
  for (const auto& e : entries(limit)) out << to_json_line(e) << '\n';
}

std::uint64_t AuditLog::appended() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

std::uint64_t AuditLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace halo

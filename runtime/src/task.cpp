#include "octo/task.hpp"
#include "octo/observer.hpp"

namespace octo {

std::string_view to_string(Priority p) noexcept {
  switch (p) {
    case Priority::kLow:
      return "low";
    case Priority::kNormal:
      return "normal";
    case Priority::kHigh:
      return "high";
    case Priority::kCritical:
      return "critical";
  }
  return "unknown";
}

std::string_view to_string(TaskEventKind k) noexcept {
  switch (k) {
    case TaskEventKind::kStarted:
      return "started";
    case TaskEventKind::kSucceeded:
      return "succeeded";
    case TaskEventKind::kFailed:
      return "failed";
    case TaskEventKind::kDeadLettered:
      return "dead_lettered";
    case TaskEventKind::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

}  // namespace octo

#include "detail/issue_validation.hpp"

#include <string>
#include <string_view>
#include <unordered_set>

namespace halo::detail {

namespace {

// Why `i` cannot count, or empty when it can.
std::string problem(const Issue& i, bool trusted, const Snapshot& snapshot,
                    const SystemState& state) {
  if (i.id.empty()) return "empty id";
  if (static_cast<unsigned>(i.severity) > static_cast<unsigned>(Level::kCritical))
    return "issue '" + i.id + "' has severity " +
           std::to_string(static_cast<unsigned>(i.severity)) + ", outside info..critical";
  // Info notes ("all agents healthy") may be about nothing in particular.
  if (i.severity == Level::kInfo) return {};
  if (i.subject_type.empty()) return "issue '" + i.id + "' has an empty subject_type";
  if (i.subject_id.empty()) return "issue '" + i.id + "' has an empty subject_id";
  if (!trusted && !state.holds(snapshot, i.subject_type, i.subject_id))
    return "issue '" + i.id + "' is about " + i.subject_type + " '" + i.subject_id +
           "', which the snapshot does not hold";
  return {};
}

void reject(AnalyzerResult& r, std::string why) {
  ++r.rejected;
  if (r.rejections.size() < kRejectionsKept) r.rejections.push_back(std::move(why));
}

}  // namespace

void validate_results(std::vector<AnalyzerResult>& results, const std::vector<bool>& trusted,
                      const Snapshot& snapshot, const SystemState& state) {
  bool others = false;
  for (std::size_t r = 0; r < results.size(); ++r)
    others = others || (!trusted[r] && !results[r].issues.empty());
  if (!others) {
    // Built-in analyzers only: their ids embed the subject and cannot repeat; a compare each.
    for (auto& r : results)
      std::erase_if(r.issues, [&](const Issue& i) {
        std::string why = problem(i, true, snapshot, state);
        if (why.empty()) return false;
        reject(r, std::move(why));
        return true;
      });
    return;
  }
  std::unordered_set<std::string_view> ids;
  // Built-in results first, so that an id a service's analyzer repeats is the one dropped.
  for (const bool pass_trusted : {true, false}) {
    for (std::size_t r = 0; r < results.size(); ++r) {
      if (trusted[r] != pass_trusted) continue;
      auto& res = results[r];
      std::vector<Issue> kept;
      kept.reserve(res.issues.size());
      for (auto& i : res.issues) {
        std::string why = problem(i, trusted[r], snapshot, state);
        if (why.empty() && ids.contains(i.id)) why = "issue id '" + i.id + "' is used twice";
        if (!why.empty()) {
          reject(res, std::move(why));
          continue;
        }
        kept.push_back(std::move(i));
        // Into the kept issue: reserved, so it never moves (nor when `kept` becomes res.issues).
        ids.insert(kept.back().id);
      }
      res.issues = std::move(kept);
    }
  }
}

}  // namespace halo::detail

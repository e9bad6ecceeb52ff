#include "halo/weak_point.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "detail/grouping.hpp"  // halo/src (private)
#include "halo/analyzer.hpp"
#include "halo_compare.hpp"  // tests/support

namespace {

using halo::Level;
using octo_test::expect_same_weak_point;

TEST(WeakPoints, GroupingOverUsedStorageMatchesGroupingAfresh) {
  auto issue = [](std::string type, std::string subject, std::string rule, Level severity) {
    halo::Issue i;
    i.id = type + "-" + rule + "-" + subject;
    i.analyzer = "test";
    i.severity = severity;
    i.subject_type = std::move(type);
    i.subject_id = std::move(subject);
    i.rule = std::move(rule);
    i.description = "the description of " + i.id + ", long enough to need its own buffer";
    return i;
  };
  std::vector<halo::AnalyzerResult> results(2);
  results[0].issues = {issue("agent", "a1", "offline", Level::kCritical),
                       issue("agent", "a2", "offline", Level::kHigh),
                       issue("endpoint", "/e", "down", Level::kCritical),
                       issue("squad", "s", "idle", Level::kLow)};
  results[1].issues = {issue("endpoint", "/e", "errors", Level::kHigh),
                       issue("agent", "a2", "unseen", Level::kMedium)};
  results[1].issues[0].data = {{"rate", "0.5"}, {"window", "60s"}};
  const auto expected = halo::group_weak_points(results);
  ASSERT_EQ(expected.size(), 3u);
  halo::Issue junk_issue = issue("junk", "j", "junk", Level::kCritical);
  junk_issue.data = {{"k1", "v1"}, {"k2", "v2"}, {"k3", "v3"}};
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, expected.size(), std::size_t{9}}) {
    SCOPED_TRACE("storage of " + std::to_string(n));
    std::vector<halo::WeakPoint> storage(n);
    for (auto& wp : storage) {
      wp.id = std::string(40, 'j');
      wp.fingerprint = 7;
      wp.subject_type = "a subject type longer than a small string";
      wp.subject_id = "a subject id longer than a small string";
      wp.severity = wp.base_severity = Level::kCritical;
      wp.summary = std::string(100, 's');
      wp.issues.assign(3, junk_issue);
      wp.cycles_seen = 9;
      wp.escalation = 2;
    }
    const auto got = halo::detail::group_weak_points(results, true, std::move(storage));
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t k = 0; k < got.size(); ++k) expect_same_weak_point(got[k], expected[k]);
  }
  // Unsorted, they come in fingerprint order (what the engine's sharded tracking needs).
  const auto unsorted = halo::detail::group_weak_points(results, false);
  ASSERT_EQ(unsorted.size(), expected.size());
  EXPECT_TRUE(std::is_sorted(unsorted.begin(), unsorted.end(), [](const auto& a, const auto& b) {
    return a.fingerprint < b.fingerprint;
  }));
}

}  // namespace

#include "halo/audit.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "text_shape.hpp"  // tests/support

namespace {

using octo_test::has_shape;

TEST(Audit, BoundedAppendOnlyJsonLines) {
  halo::AuditLog log(3);
  for (int i = 0; i < 5; ++i)
    log.append({.kind = halo::AuditKind::kSuppressed,
                .weak_point = "wp-" + std::to_string(i),
                .reason = "rate \"limited\"\n"});
  EXPECT_EQ(log.appended(), 5u);
  EXPECT_EQ(log.dropped(), 2u);
  auto e = log.entries();
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e.front().seq, 3u);
  EXPECT_EQ(e.back().seq, 5u);
  EXPECT_EQ(log.entries(1).at(0).seq, 5u);
  std::ostringstream out;
  log.write_json_lines(out, 1);
  const std::string line = out.str();
  const std::string head = R"({"seq":5,"time":")";
  const std::string tail =
      R"(","kind":"suppressed","weak_point":"wp-4","reason":"rate \"limited\"\n"})"
      "\n";
  ASSERT_GT(line.size(), head.size() + tail.size());
  EXPECT_EQ(line.substr(0, head.size()), head) << line;
  EXPECT_EQ(line.substr(line.size() - tail.size()), tail) << line;
  EXPECT_TRUE(has_shape(line.substr(head.size(), line.size() - head.size() - tail.size()),
                        "dddd-dd-ddTdd:dd:dd.dddZ"))
      << line;
  EXPECT_THROW(halo::AuditLog(0), std::invalid_argument);
}

TEST(Audit, BatchKeepsOrderAndCountsWhatDoesNotFit) {
  halo::AuditLog log(4);
  log.append({.kind = halo::AuditKind::kDispatched, .weak_point = "first"});
  std::vector<halo::AuditEntry> batch;
  for (int i = 0; i < 6; ++i)
    batch.push_back({.kind = halo::AuditKind::kSuggested, .weak_point = std::to_string(i)});
  log.append(std::move(batch));
  EXPECT_EQ(log.appended(), 7u);
  EXPECT_EQ(log.dropped(), 3u);
  std::vector<std::string> kept;
  std::vector<std::uint64_t> seqs;
  for (const auto& e : log.entries()) {
    kept.push_back(e.weak_point);
    seqs.push_back(e.seq);
  }
  EXPECT_EQ(kept, (std::vector<std::string>{"2", "3", "4", "5"}));
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{4, 5, 6, 7}));
}

TEST(Audit, BatchReturnsWhatItPushedOutOldestFirst) {
  auto batch = [](int from, int to) {
    std::vector<halo::AuditEntry> b;
    for (int i = from; i < to; ++i)
      b.push_back({.kind = halo::AuditKind::kSuggested, .weak_point = std::to_string(i)});
    return b;
  };
  auto names = [](const std::vector<halo::AuditEntry>& v) {
    std::vector<std::string> out;
    for (const auto& e : v) out.push_back(e.weak_point);
    return out;
  };
  using V = std::vector<std::string>;
  halo::AuditLog log(4);
  EXPECT_TRUE(log.append(batch(0, 3)).empty());              // fits
  EXPECT_EQ(names(log.append(batch(3, 6))), (V{"0", "1"}));  // fills, then pushes out
  EXPECT_EQ(names(log.entries()), (V{"2", "3", "4", "5"}));
  // Larger than the log: the log's four, then the batch's own first two.
  const auto out = log.append(batch(6, 12));
  EXPECT_EQ(names(out), (V{"2", "3", "4", "5", "6", "7"}));
  EXPECT_EQ(out.front().seq, 3u);
  EXPECT_EQ(out.back().seq, 8u);
  EXPECT_EQ(names(log.entries()), (V{"8", "9", "10", "11"}));
  EXPECT_EQ(names(log.entries(2)), (V{"10", "11"}));
  log.append(halo::AuditEntry{.weak_point = "single"});
  EXPECT_EQ(names(log.entries()), (V{"9", "10", "11", "single"}));
  EXPECT_EQ(log.appended(), 13u);
  EXPECT_EQ(log.dropped(), 9u);
  // Not full yet, and a batch both fills and pushes out.
  halo::AuditLog small(3);
  small.append(halo::AuditEntry{.weak_point = "x"});
  EXPECT_EQ(names(small.append(batch(0, 4))), (V{"x", "0"}));
  EXPECT_EQ(names(small.entries()), (V{"1", "2", "3"}));
  EXPECT_EQ(small.dropped(), 2u);
}

// Every field survives the ring's slot exchanges, whether the entry is kept or handed back.
TEST(Audit, EntriesKeepEveryFieldThroughTheRing) {
  auto make = [](int i) {
    const std::string n = std::to_string(i);
    return halo::AuditEntry{
        .when = std::chrono::system_clock::time_point(std::chrono::seconds(1000 + i)),
        .kind = i % 2 ? halo::AuditKind::kSuppressed : halo::AuditKind::kDispatched,
        .cycle_id = "cycle-" + n + "-long-enough-to-live-on-the-heap",
        .weak_point = "wp-" + n,
        .task_type = "type." + n,
        .subject = "subject-" + n + "-also-long-enough-to-live-on-the-heap",
        .task_id = static_cast<octo::TaskId>(100 + i),
        .approval_id = static_cast<std::uint64_t>(200 + i),
        .reason = "reason " + n};
  };
  auto expect_entry = [&](const halo::AuditEntry& e, int i) {
    const auto want = make(i);
    EXPECT_EQ(e.seq, static_cast<std::uint64_t>(i + 1));
    EXPECT_EQ(e.when, want.when);
    EXPECT_EQ(e.kind, want.kind);
    EXPECT_EQ(e.cycle_id, want.cycle_id);
    EXPECT_EQ(e.weak_point, want.weak_point);
    EXPECT_EQ(e.task_type, want.task_type);
    EXPECT_EQ(e.subject, want.subject);
    EXPECT_EQ(e.task_id, want.task_id);
    EXPECT_EQ(e.approval_id, want.approval_id);
    EXPECT_EQ(e.reason, want.reason);
  };
  halo::AuditLog log(5);
  int next = 0;
  for (const int size : {3, 4, 1, 5, 7, 2}) {
    std::vector<halo::AuditEntry> batch;
    for (int k = 0; k < size; ++k) batch.push_back(make(next + k));
    const auto out = log.append(std::move(batch));
    // Handed back: the oldest entries, in order, ending just before the ones now held.
    const int first_held = std::max(0, next + size - 5);
    for (std::size_t k = 0; k < out.size(); ++k)
      expect_entry(out[k], first_held - static_cast<int>(out.size()) + static_cast<int>(k));
    next += size;
    const auto held = log.entries();
    ASSERT_EQ(held.size(), static_cast<std::size_t>(std::min(next, 5)));
    for (std::size_t k = 0; k < held.size(); ++k)
      expect_entry(held[k], first_held + static_cast<int>(k));
  }
}

}  // namespace

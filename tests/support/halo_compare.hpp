// Field-by-field comparison of HALO results in tests (GoogleTest expectations), so that a
// mismatch names the field.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>

#include "halo/issue.hpp"
#include "halo/weak_point.hpp"

namespace octo_test {

inline void expect_same_issue(const halo::Issue& a, const halo::Issue& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.analyzer, b.analyzer);
  EXPECT_EQ(a.severity, b.severity);
  EXPECT_EQ(a.subject_type, b.subject_type);
  EXPECT_EQ(a.subject_id, b.subject_id);
  EXPECT_EQ(a.rule, b.rule);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.data, b.data);
}

inline void expect_same_weak_point(const halo::WeakPoint& a, const halo::WeakPoint& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.subject_type, b.subject_type);
  EXPECT_EQ(a.subject_id, b.subject_id);
  EXPECT_EQ(a.severity, b.severity) << a.id;
  EXPECT_EQ(a.base_severity, b.base_severity) << a.id;
  EXPECT_EQ(a.summary, b.summary);
  EXPECT_EQ(a.cycles_seen, b.cycles_seen) << a.id;
  EXPECT_EQ(a.escalation, b.escalation) << a.id;
  ASSERT_EQ(a.issues.size(), b.issues.size()) << a.id;
  for (std::size_t k = 0; k < a.issues.size(); ++k) expect_same_issue(a.issues[k], b.issues[k]);
}

}  // namespace octo_test

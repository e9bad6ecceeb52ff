#include "octo/boxed.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "octo/task.hpp"

namespace {

using Strings = std::vector<std::string>;

TEST(Boxed, EmptyReadsAsTheDefaultValueWithoutAllocating) {
  octo::Boxed<Strings> b;
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b->empty());
  EXPECT_EQ(b, Strings{});
  // An empty value given to it stays unallocated: a Task's copy of an empty field costs nothing.
  octo::Boxed<std::string> s = std::string();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(*s, "");
}

TEST(Boxed, HoldsWhatItIsBuiltFrom) {
  octo::Boxed<Strings> list = {"a", "b"};
  EXPECT_FALSE(list.empty());
  EXPECT_EQ(list, (Strings{"a", "b"}));
  octo::Boxed<std::string> literal = "agent-17";
  EXPECT_EQ(*literal, "agent-17");
  octo::Boxed<Strings> from_vector = Strings{"x"};
  EXPECT_EQ(from_vector->size(), 1u);
}

TEST(Boxed, CopiesAreDeepAndMovesSteal) {
  octo::Boxed<Strings> a = {"a"};
  octo::Boxed<Strings> copy = a;
  copy.edit().push_back("b");
  EXPECT_EQ(a, Strings{"a"});
  EXPECT_EQ(copy, (Strings{"a", "b"}));
  copy = a;
  EXPECT_EQ(copy, a);
  octo::Boxed<Strings> moved = std::move(copy);
  EXPECT_EQ(moved, Strings{"a"});
  EXPECT_TRUE(copy.empty());  // NOLINT(bugprone-use-after-move): a moved-from Boxed is empty
  const octo::Boxed<Strings>& self = moved;
  moved = self;
  EXPECT_EQ(moved, Strings{"a"});
}

TEST(Boxed, EditAllocatesAndEmptyAgainReadsEmpty) {
  octo::Boxed<Strings> b;
  b.edit().push_back("a");
  EXPECT_FALSE(b.empty());
  b.edit().clear();
  EXPECT_TRUE(b.empty());  // held, but empty
  EXPECT_EQ(b, octo::Boxed<Strings>{});
  b.reset();
  EXPECT_TRUE(b.empty());
}

TEST(Boxed, KeepsTaskSmall) {
  // The reason the rare fields are boxed: each costs a pointer, not a std::string or vector.
  EXPECT_EQ(sizeof(octo::Boxed<std::string>), sizeof(void*));
  EXPECT_EQ(sizeof(octo::Boxed<Strings>), sizeof(void*));
  octo::Task t{.type = "agent.revive", .target_agents = {"dreamops"}};
  EXPECT_EQ(t.target_agents, Strings{"dreamops"});
}

}  // namespace

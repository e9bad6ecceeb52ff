#include "detail/entry_codec.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace {

using octo::detail::decode_task;
using octo::detail::encode_task;
using octo::detail::id_of;
using octo::detail::key_of;

std::vector<std::string_view> views(const std::vector<std::string>& s) {
  return {s.begin(), s.end()};
}

TEST(EntryCodec, TasksRoundTripThroughTheFields) {
  octo::Task t{.type = "run-batch-job",
               .payload = std::string("bytes \0 and \xff", 13),
               .priority = octo::Priority::kCritical,
               .target_agents = {"a-1", "a-2"},
               .max_attempts = 7,
               .key = "agent-17"};
  t.created = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  t.deadline = t.created + std::chrono::hours(1);
  t.run_at = t.created + std::chrono::minutes(5);
  const auto fields = encode_task(t);
  const auto d = decode_task(views(fields), "1700000000123-5");
  ASSERT_TRUE(d.task) << d.error;
  EXPECT_EQ(d.task->type, t.type);
  EXPECT_EQ(d.task->payload, t.payload);
  EXPECT_EQ(d.task->priority, t.priority);
  EXPECT_EQ(d.task->target_agents, t.target_agents);
  EXPECT_EQ(d.task->max_attempts, 7u);
  EXPECT_EQ(*d.task->key, "agent-17");
  EXPECT_EQ(d.task->created, t.created);
  EXPECT_EQ(d.task->deadline, t.deadline);
  EXPECT_EQ(d.task->run_at, t.run_at);
  EXPECT_EQ(d.task->durable_key, key_of("1700000000123-5"));
  EXPECT_EQ(id_of(d.task->durable_key), "1700000000123-5");
  EXPECT_TRUE(d.task->unique.empty()) << "no claim unless the task had one";
}

TEST(EntryCodec, AUniqueClaimTravelsWithItsTtlAndScope) {
  for (const auto scope : {octo::UniqueScope::kQueued, octo::UniqueScope::kQueuedOrRunning}) {
    octo::Task t{.type = "reindex"};
    t.unique = octo::Unique{.key = "user 42", .ttl = std::chrono::minutes(3), .scope = scope};
    const auto d = decode_task(views(encode_task(t)), "1-1");
    ASSERT_TRUE(d.task) << d.error;
    ASSERT_FALSE(d.task->unique.empty());
    EXPECT_EQ(d.task->unique->key, "user 42");
    EXPECT_EQ(d.task->unique->ttl, std::chrono::minutes(3));
    EXPECT_EQ(d.task->unique->scope, scope);
  }
}

// A bad value is refused with its field and value named; it never becomes a task (a priority of
// -1 once became Priority(255) and indexed past the arm's queues).
TEST(EntryCodec, OutOfRangeAndMalformedValuesAreRefusedByName) {
  struct Case {
    std::vector<std::string> fields;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"type", "t", "priority", "-1"}, "priority '-1' is not 0-3"},
      {{"type", "t", "priority", "4"}, "priority '4' is not 0-3"},
      {{"type", "t", "priority", "2x"}, "priority '2x' is not 0-3"},
      {{"type", "t", "priority", ""}, "priority '' is not 0-3"},
      {{"type", "t", "priority", "99999999999999999999"}, "is not 0-3"},
      {{"type", "t", "max_attempts", "-3"}, "max_attempts '-3' is not a count"},
      {{"type", "t", "created_ms", "soon"}, "created_ms 'soon' is not milliseconds"},
      // Found by entry_codec_fuzzer: milliseconds past 2262 overflowed the conversion to
      // system_clock's nanoseconds (signed overflow, UBSan).
      {{"type", "t", "created_ms", "170000000000000000"}, "created_ms '170000000000000000' is not"},
      {{"type", "t", "created_ms", "-1"}, "created_ms '-1' is not milliseconds from 0"},
      {{"type", "t", "deadline_ms", "tomorrow"}, "deadline_ms 'tomorrow' is not milliseconds"},
      {{"type", "t", "run_at_ms", "9223372036854775807"}, "run_at_ms '9223372036854775807' is not"},
      {{"type", "t", "run_at_ms", "-5"}, "run_at_ms '-5' is not milliseconds from 0"},
      {{"type", "t", "priority", std::string("\xe9\x01", 2)}, "priority '\\xe9\\x01'"},
      {{"type", "t", "unique", ""}, "empty unique key"},
      {{"type", "t", "unique", "k", "unique_ttl_ms", "0"}, "unique_ttl_ms '0' is not a positive"},
      {{"type", "t", "unique", "k", "unique_ttl_ms", "-5"}, "unique_ttl_ms '-5' is not"},
      {{"type", "t", "unique", "k", "unique_ttl_ms", "1", "unique_scope", "2"},
       "unique_scope '2' is not 0-1"},
      {{"type", "t", "unique", "k"}, "unique without it"},
      {{"type", "t", "unique_ttl_ms", "5"}, "unique_ttl_ms without unique"},
      {{"payload", "p"}, "no type field"},
      {{"type", ""}, "no type field"},
      {{"type", "t", "payload"}, "not pairs"},
  };
  for (const auto& c : cases) {
    const auto d = decode_task(views(c.fields), "1-1");
    EXPECT_FALSE(d.task) << c.error;
    EXPECT_NE(d.error.find(c.error), std::string::npos) << d.error;
  }
  // Every valid priority decodes to itself; unknown fields are ignored.
  for (int p = 0; p < octo::kPriorityCount; ++p) {
    const std::vector<std::string> f = {"type", "t", "priority", std::to_string(p), "new", "x"};
    const auto d = decode_task(views(f), "1-1");
    ASSERT_TRUE(d.task) << d.error;
    EXPECT_EQ(static_cast<int>(d.task->priority), p);
  }
  // A long value is cut in the message.
  const std::vector<std::string> long_value = {"type", "t", "priority", std::string(1000, '9')};
  EXPECT_LT(decode_task(views(long_value), "1-1").error.size(), 200u);
}

TEST(EntryCodec, EntryIdsMapToDurableKeysOrToZero) {
  EXPECT_EQ(key_of("5-3"), (std::uint64_t{5} << 20) | 3);
  EXPECT_EQ(id_of(key_of("1700000000123-1048575")), "1700000000123-1048575");
  for (const char* bad :
       {"", "-", "5", "5-", "-3", "0-1", "5-1048576", "x-1", "5-1-1", "5--1", "17592186044416-0"}) {
    EXPECT_EQ(key_of(bad), 0u) << bad;
  }
}

}  // namespace

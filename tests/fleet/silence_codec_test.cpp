// The fleet silence codec (fleet/src/detail/silence_codec.hpp): what another instance or a
// person with redis-cli may have left in the `silences` hash is decoded or refused, never
// trusted into an overflowing time.
#include "detail/silence_codec.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using halo::detail::decode_silence;
using halo::detail::encode_silence;
using halo::detail::silence_unencodable;

std::string value(std::string from, std::string until, int fields = 8) {
  std::string v =
      "dependency\x1f"
      "db\x1f\x1f" +
      from + "\x1f" + until + "\x1freason\x1fops";
  if (fields >= 8) v += "\x1fsim-0";
  for (int i = 8; i < fields; ++i)
    v += "\x1f"
         "extra";
  return v;
}

TEST(SilenceCodec, ASilenceRoundTrips) {
  halo::FleetSilence s{.match = {"endpoint", "/api/pay*", "deploy.*"},
                       .from = std::chrono::system_clock::time_point(std::chrono::milliseconds(5)),
                       .until = std::chrono::system_clock::time_point(std::chrono::hours(1)),
                       .reason = "payments migration",
                       .author = "ops@example",
                       .instance = "web-1"};
  ASSERT_EQ(silence_unencodable(s), "");
  halo::FleetSilence t;
  ASSERT_TRUE(decode_silence("3", encode_silence(s), t));
  EXPECT_EQ(t.id, "3");
  EXPECT_EQ(t.match.subject_id, "/api/pay*");
  EXPECT_EQ(t.match.task_type, "deploy.*");
  EXPECT_EQ(t.from, s.from);
  EXPECT_EQ(t.until, s.until);
  EXPECT_EQ(t.reason, s.reason);
  EXPECT_EQ(t.author, s.author);
  EXPECT_EQ(t.instance, s.instance);
}

// A time past what system_clock holds overflowed the conversion to nanoseconds (undefined
// behaviour, caught by the fuzzer under UBSan): such values are refused now.
TEST(SilenceCodec, ValuesThatAreNotSilencesAreRefused) {
  halo::FleetSilence s;
  EXPECT_TRUE(decode_silence("1", value("0", "9000000000000"), s));
  for (const auto& bad : {value("99999999999999999999", "1"), value("1", "9000000000001"),
                          value("-5", "1"), value("12a", "1"), value("", "1"), value("1", "2", 7),
                          value("1", "2", 9), std::string("just text"), std::string()})
    EXPECT_FALSE(decode_silence("1", bad, s)) << bad;
}

TEST(SilenceCodec, WhatCannotBeStoredIsRefusedWithAReason) {
  halo::FleetSilence s{.until = std::chrono::system_clock::time_point(std::chrono::hours(1)),
                       .reason =
                           "a\x1f"
                           "b"};
  EXPECT_NE(silence_unencodable(s).find("0x1f"), std::string::npos);
  s.reason = "ok";
  s.from = std::chrono::system_clock::time_point(-std::chrono::hours(1));
  EXPECT_NE(silence_unencodable(s).find("between 1970 and 2255"), std::string::npos);
}

}  // namespace

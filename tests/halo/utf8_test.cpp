#include "halo/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

#include "halo/audit.hpp"

namespace {

using halo::is_valid_utf8;
using halo::to_valid_utf8;

const std::string kFffd(halo::kReplacementCharacter);

TEST(Utf8, WellFormedSequencesAreKeptAsTheyAre) {
  for (const char* ok : {"", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xed\x9f\xbf",
                         "\xee\x80\x80", "\xf0\x9f\x90\x99", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(is_valid_utf8(ok)) << ok;
    EXPECT_EQ(to_valid_utf8(ok), ok);
  }
}

TEST(Utf8, EveryByteThatStartsNoSequenceBecomesOneReplacement) {
  const std::pair<std::string, std::string> cases[] = {
      {"caf\xe9", "caf" + kFffd},                           // Latin-1, not UTF-8
      {"\x80", kFffd},                                      // lone continuation byte
      {"\xc0\x80", kFffd + kFffd},                          // overlong NUL
      {"\xc1\xbf", kFffd + kFffd},                          // overlong
      {"\xe0\x80\x80", kFffd + kFffd + kFffd},              // overlong 3-byte
      {"\xed\xa0\x80", kFffd + kFffd + kFffd},              // UTF-16 surrogate
      {"\xf0\x80\x80\x80", kFffd + kFffd + kFffd + kFffd},  // overlong 4-byte
      {"\xf4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // above U+10FFFF
      {"\xf5\x80", kFffd + kFffd},
      {"\xff", kFffd},
      {"ab\xe2\x82", "ab" + kFffd + kFffd},              // truncated at the end
      {std::string("a\0b", 3), std::string("a\0b", 3)},  // NUL is valid UTF-8
  };
  for (const auto& [in, want] : cases) {
    EXPECT_FALSE(is_valid_utf8(in) && in != want) << in;
    const std::string out = to_valid_utf8(in);
    EXPECT_EQ(out, want) << in;
    EXPECT_TRUE(is_valid_utf8(out)) << in;
  }
}

// An audit entry once carried raw bytes into its JSON line, which then failed to parse as JSON
// (and took the HTTP server down with it).
TEST(Utf8, AuditJsonLinesAreValidUtf8WhateverTheEntryHolds) {
  halo::AuditEntry e{.kind = halo::AuditKind::kDispatched,
                     .weak_point = "endpoint:/api/caf\xe9",
                     .subject = "\xff\xfe",
                     .reason = "ok \xe2\x82\xac"};
  const std::string line = halo::to_json_line(e);
  EXPECT_TRUE(is_valid_utf8(line)) << line;
  EXPECT_NE(line.find("/api/caf" + kFffd), std::string::npos) << line;
  EXPECT_NE(line.find("ok \xe2\x82\xac"), std::string::npos) << line;
}

}  // namespace

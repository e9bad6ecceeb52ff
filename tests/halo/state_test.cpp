#include "halo/state.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <latch>
#include <stdexcept>
#include <thread>

#include "manual_state.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;

using StateRig = octo_test::ManualState;

TEST(SystemState, SnapshotIsUnaffectedByLaterWrites) {
  StateRig rig;
  for (int i = 0; i < 3000; ++i) rig.state.upsert_agent({.id = "a" + std::to_string(i)});
  rig.state.upsert_graft({.id = "g1", .status = halo::GraftStatus::kPending});
  auto before = rig.state.snapshot();
  rig.clock->advance(7s);
  ASSERT_TRUE(rig.state.heartbeat("a2500"));
  ASSERT_TRUE(rig.state.set_agent_online("a10", false));
  ASSERT_TRUE(rig.state.set_graft_status("g1", halo::GraftStatus::kFailed, "boom"));
  rig.state.upsert_agent({.id = "a-new"});
  auto after = rig.state.snapshot();

  EXPECT_EQ(before->agents.size(), 3000u);
  EXPECT_EQ(before->agents[2500].last_heartbeat, 0s);
  EXPECT_TRUE(before->agents[10].online);
  EXPECT_EQ(before->grafts[0].status, halo::GraftStatus::kPending);
  EXPECT_EQ(after->agents.size(), 3001u);
  EXPECT_EQ(after->agents[2500].last_heartbeat, 7s);
  EXPECT_FALSE(after->agents[10].online);
  EXPECT_EQ(after->grafts[0].status, halo::GraftStatus::kFailed);
  EXPECT_EQ(after->grafts[0].error, "boom");
  EXPECT_EQ(after->taken_at, 7s);
  EXPECT_EQ(after->agent_count, 3001u);
}

TEST(SystemState, UnknownIdsAndBadInput) {
  StateRig rig;
  EXPECT_FALSE(rig.state.heartbeat("nobody"));
  EXPECT_FALSE(rig.state.set_agent_online("nobody", true));
  EXPECT_FALSE(rig.state.set_graft_status("nobody", halo::GraftStatus::kFailed));
  EXPECT_THROW(rig.state.upsert_agent({.id = ""}), std::invalid_argument);
  EXPECT_THROW(rig.state.add_artifact("/x", "not-hex"), std::invalid_argument);
  EXPECT_THROW(rig.state.add_patrol_check({.name = "dns"}), std::invalid_argument);
  EXPECT_THROW(rig.state.add_patrol_check({.name = "", .run = [] { return halo::CheckResult{}; }}),
               std::invalid_argument);
}

TEST(SystemState, RemovedAgentsAreNotCountedAndCanReturn) {
  StateRig rig;
  rig.state.upsert_agent({.id = "a"});
  rig.state.upsert_agent({.id = "b"});
  EXPECT_TRUE(rig.state.remove_agent("a"));
  EXPECT_FALSE(rig.state.remove_agent("a"));
  EXPECT_EQ(rig.state.snapshot()->agent_count, 1u);
  EXPECT_FALSE(rig.state.agent("a").has_value());
  rig.state.upsert_agent({.id = "a"});
  EXPECT_EQ(rig.state.snapshot()->agent_count, 2u);
}

TEST(SystemState, SquadTaskAccounting) {
  StateRig rig;
  rig.state.record_squad_task("s1", true, 10.0);
  rig.state.record_squad_task("s1", false, 30.0);
  auto s = rig.state.snapshot();
  ASSERT_EQ(s->squads.size(), 1u);
  EXPECT_EQ(s->squads[0].completed, 1u);
  EXPECT_EQ(s->squads[0].failed, 1u);
  EXPECT_DOUBLE_EQ(s->squads[0].average_duration_ms, 20.0);
}

TEST(SystemState, EndpointCountersWindow) {
  StateRig rig;
  auto& ep = rig.state.endpoint("/api/orders");
  EXPECT_EQ(&ep, &rig.state.endpoint("/api/orders"));
  for (int i = 0; i < 10; ++i) ep.record(100.0, i < 3);
  EXPECT_EQ(ep.requests(), 10u);
  EXPECT_EQ(ep.errors(), 3u);
  EXPECT_DOUBLE_EQ(ep.mean_latency_ms(), 100.0);
  rig.clock->advance(11s);
  rig.ticker.tick();
  EXPECT_EQ(ep.requests(), 0u);
}

// Once removed, an endpoint recorded again comes back present and counts from then on (it used
// to keep its old counts and stay invisible to the analyzers until a probe arrived).
TEST(SystemState, ARemovedEndpointRecordedAgainComesBackWithAFreshWindow) {
  StateRig rig;
  auto present = [&] {
    const auto s = rig.state.snapshot();
    for (std::size_t i = 0; i < s->endpoints.size(); ++i)
      if (s->endpoints[i].id == "/api/pay") return s->endpoints[i].present;
    return false;
  };
  auto& before = rig.state.endpoint("/api/pay");
  for (int i = 0; i < 5; ++i) before.record(10.0, true);
  EXPECT_TRUE(present());
  EXPECT_TRUE(rig.state.remove_endpoint("/api/pay"));
  EXPECT_FALSE(present());
  EXPECT_FALSE(rig.state.remove_endpoint("/api/pay"));
  auto& again = rig.state.endpoint("/api/pay");  // cached by this thread before the removal
  EXPECT_TRUE(present()) << "recorded again: back";
  EXPECT_EQ(&again, &before) << "a reference taken before stays valid and records into it";
  EXPECT_EQ(again.requests(), 0u) << "what came before the removal no longer counts";
  rig.advance(again.bucket_width());  // the window counts whole buckets after the re-creation
  again.record(10.0, false);
  EXPECT_EQ(again.requests(), 1u);
  EXPECT_EQ(again.errors(), 0u);
}

// The by-path lookup from many threads, over more paths than a thread's cache holds without
// collisions, and two states with the same paths: every record lands in its own endpoint.
TEST(SystemState, EndpointsByPathFromManyThreadsCountExactly) {
  StateRig rig;
  StateRig other;
  constexpr int kThreads = 4, kPaths = 700, kRecords = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRecords; ++i) {
        const std::string path = "/p/" + std::to_string((i * 7 + t) % kPaths);
        rig.state.endpoint(path).record(1.0, (i % 10) == 0);
        if (i % 5 == 0) other.state.endpoint(path).record(1.0, false);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::uint64_t requests = 0, errors = 0, other_requests = 0;
  for (int p = 0; p < kPaths; ++p) {
    const std::string path = "/p/" + std::to_string(p);
    requests += rig.state.endpoint(path).requests();
    errors += rig.state.endpoint(path).errors();
    other_requests += other.state.endpoint(path).requests();
    EXPECT_NE(&rig.state.endpoint(path), &other.state.endpoint(path));
  }
  EXPECT_EQ(requests, static_cast<std::uint64_t>(kThreads) * kRecords);
  EXPECT_EQ(errors, static_cast<std::uint64_t>(kThreads) * kRecords / 10);
  EXPECT_EQ(other_requests, static_cast<std::uint64_t>(kThreads) * kRecords / 5);
}

// What verification reads: the newest report about each subject type, as the snapshot holds it.
TEST(SystemState, EvidenceAtIsTheNewestReportTheSnapshotHolds) {
  StateRig r;
  const halo::SystemState::EvidenceNeeds needs{.min_requests = 3, .min_squad_tasks = 2};
  r.state.upsert_agent({.id = "a"});
  r.state.upsert_graft({.id = "g"});
  r.state.set_env_snapshot("prod", {});
  r.state.upsert_squad({.id = "q", .completed = 10, .failed = 5});
  auto& ep = r.state.endpoint("/e");
  r.clock->advance(5s);
  r.state.heartbeat("a");
  r.state.set_graft_status("g", halo::GraftStatus::kFailed);
  auto s = r.state.snapshot();
  r.clock->advance(5s);
  r.state.heartbeat("a");  // after the snapshot: not in it
  EXPECT_EQ(r.state.evidence_at(*s, "agent", "a", needs), 5s);
  EXPECT_EQ(r.state.evidence_at(*s, "graft", "g", needs), 5s);
  EXPECT_EQ(r.state.evidence_at(*s, "env", "prod", needs), 0s);
  EXPECT_EQ(r.state.evidence_at(*s, "agent", "nobody", needs), std::nullopt);
  EXPECT_EQ(r.state.evidence_at(*s, "env", "canary", needs), std::nullopt);
  EXPECT_EQ(r.state.evidence_at(*s, "artifact", "/bin/x", needs), s->taken_at)
      << "re-examined by the cycle itself";
  // Squads and endpoints: only what came after the repair's mark counts, and enough of it.
  r.state.mark_repaired("squad", "q");
  r.state.mark_repaired("endpoint", "/e");
  r.state.record_squad_task("q", false, 1.0);
  ep.record(1.0, true);
  ep.record(1.0, true);
  s = r.state.snapshot();
  EXPECT_LT(*r.state.evidence_at(*s, "squad", "q", needs), 0s) << "one task since the mark";
  EXPECT_LT(*r.state.evidence_at(*s, "endpoint", "/e", needs), 0s) << "no bucket after the mark";
  r.advance(100ms);
  for (int i = 0; i < 3; ++i) ep.record(1.0, false);
  r.state.record_squad_task("q", true, 1.0);
  r.state.upsert_squad({.id = "q", .completed = 11, .failed = 6});  // keeps the baseline
  s = r.state.snapshot();
  EXPECT_EQ(r.state.evidence_at(*s, "squad", "q", needs), s->taken_at);
  EXPECT_EQ(r.state.evidence_at(*s, "endpoint", "/e", needs), s->taken_at);
  EXPECT_EQ(ep.requests(), 3u);
  EXPECT_EQ(ep.errors(), 0u) << "the errors before the mark are left out";
  r.state.report_probe("/e", 200, 1.0);
  s = r.state.snapshot();
  EXPECT_EQ(r.state.evidence_at(*s, "endpoint", "/e", needs), s->taken_at);
}

TEST(Checksum, DetectsChangesAndMissingFiles) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("halo-state-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = (dir / "bin").string();
  std::ofstream(file) << "pristine";
  const auto a = halo::checksum_file(file);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->size(), 16u);
  EXPECT_EQ(a, halo::checksum_file(file));
  std::ofstream(file) << "corrupted";
  EXPECT_NE(a, halo::checksum_file(file));
  std::filesystem::remove_all(dir);
  EXPECT_FALSE(halo::checksum_file(file).has_value());
}

}  // namespace

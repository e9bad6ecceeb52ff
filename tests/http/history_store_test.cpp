// HistoryStore: what one run of the service leaves in its directory, the next one reads back
// (cycles, audit, silences, escalations), through the files' rotation and past damaged lines.
#include "halo/http/history_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "engine_rig.hpp"  // tests/support
#include "halo/http/handler.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using octo_test::open_rails;
using octo_test::Rig;

struct TempDir {
  fs::path path =
      fs::temp_directory_path() / ("octo-history-" + std::to_string(::getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

halo::EngineConfig escalating() {
  auto cfg = open_rails();
  cfg.safety.max_repairs = 1;
  cfg.safety.verify_timeout = 1s;
  return cfg;
}

nlohmann::json get(const halo::HttpHandler& h, const std::string& target) {
  return nlohmann::json::parse(h.handle({.method = "GET", .target = target}, "").body);
}

TEST(HistoryStore, CyclesAuditSilencesAndEscalationsSurviveARestart) {
  TempDir dir;
  std::set<std::string> first_run_cycles;
  {
    Rig rig(escalating());
    halo::HistoryStore store(*rig.engine, {.dir = dir.path});
    rig.state.upsert_agent({.id = "a1", .online = false});
    first_run_cycles.insert(rig.cycle()->id);
    rig.clock->advance(1s);
    first_run_cycles.insert(rig.cycle()->id);  // escalated: max_repairs 1, no fresh heartbeat
    ASSERT_EQ(rig.engine->status().escalations, 1u);
    halo::Silence s;
    s.match.subject_type = "endpoint";
    s.reason = "maintenance";
    s.from = rig.clock->now();
    s.until = s.from + 1h;
    rig.engine->silence(s);
    first_run_cycles.insert(rig.cycle()->id);
    store.flush();
    const auto st = store.status();
    EXPECT_EQ(st.cycles_written, 3u);
    EXPECT_GT(st.audit_written, 5u);
    EXPECT_EQ(st.write_errors, 0u) << st.last_error;
  }
  Rig rig(escalating());
  halo::HistoryStore store(*rig.engine, {.dir = dir.path});
  const auto st = store.status();
  EXPECT_EQ(st.restored_cycles, 3u);
  EXPECT_GT(st.restored_audit, 5u);
  EXPECT_EQ(st.restored_silences, 1u);
  EXPECT_EQ(st.restored_escalations, 1u);
  EXPECT_EQ(st.corrupt_lines, 0u);
  // The escalation holds in the new run: no repair of a1 until a person clears it.
  const auto es = rig.engine->status();
  ASSERT_EQ(es.lifecycle.size(), 1u);
  EXPECT_EQ(es.lifecycle[0].subject_id, "a1");
  EXPECT_EQ(es.lifecycle[0].state, halo::WeakPointState::kEscalated);
  rig.state.upsert_agent({.id = "a1", .online = false});
  EXPECT_EQ(octo_test::statuses(*rig.cycle()),
            (std::map<std::string, int>{{"suppressed:escalated", 1}}));
  EXPECT_EQ(rig.ran_count(), 0u);
  ASSERT_EQ(rig.engine->silences().size(), 1u);
  EXPECT_EQ(rig.engine->silences()[0].reason, "maintenance");
  EXPECT_GT(rig.engine->silences()[0].until, rig.clock->now() + 59min);

  // /cycles: this run's cycle, then the first run's, newest first; /audit oldest first.
  const halo::HttpHandler h({.token = "t", .history = &store}, *rig.engine);
  const auto cycles = get(h, "/cycles?limit=10");
  ASSERT_EQ(cycles.size(), 4u);
  EXPECT_EQ(first_run_cycles.count(cycles[0]["id"]), 0u);
  for (std::size_t i = 1; i < 4; ++i)
    EXPECT_EQ(first_run_cycles.count(cycles[i]["id"]), 1u) << cycles[i].dump();
  const auto audit = get(h, "/audit?limit=100000");
  ASSERT_GT(audit.size(), st.restored_audit);
  EXPECT_TRUE(audit[0].value("restored", false));
  EXPECT_FALSE(audit.back().value("restored", false));
  EXPECT_EQ(get(h, "/cycles?limit=1").size(), 1u);
}

TEST(HistoryStore, DamagedLinesAreSkippedAndCounted) {
  TempDir dir;
  {
    std::ofstream(dir.path / "cycles.jsonl")
        << "{\"id\":\"c1\"}\n"
        << "not json\n"
        << "[1,2]\n"
        << "\n"
        << "{\"id\":\"c2\"}\r\n"
        << "\xff\xfe{\n"
        << "{\"id\":\"c3\",\"trunc";  // a write cut short by a crash
    std::ofstream(dir.path / "state.json") << "{\"silences\": [{\"reason\": 5}], \"escalated\": 7";
  }
  Rig rig(open_rails());
  halo::HistoryStore store(*rig.engine, {.dir = dir.path});
  const auto st = store.status();
  EXPECT_EQ(st.restored_cycles, 2u);
  EXPECT_EQ(st.corrupt_lines, 5u);  // four bad lines and the state file
  const auto c = store.restored_cycles(10);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0]["id"], "c2");
  EXPECT_EQ(c[1]["id"], "c1");
}

TEST(HistoryStore, LogsRotateBySizeAndKeepTheNewest) {
  TempDir dir;
  std::string newest;
  {
    Rig rig(open_rails());
    halo::HistoryStore store(*rig.engine,
                             {.dir = dir.path, .max_file_bytes = 4096, .max_files = 3});
    rig.state.upsert_agent({.id = "a1", .online = false});
    for (int i = 0; i < 60; ++i) {
      newest = rig.cycle()->id;
      store.flush();
    }
  }
  EXPECT_TRUE(fs::exists(dir.path / "cycles.jsonl"));
  EXPECT_TRUE(fs::exists(dir.path / "cycles.jsonl.1"));
  EXPECT_TRUE(fs::exists(dir.path / "cycles.jsonl.2"));
  EXPECT_FALSE(fs::exists(dir.path / "cycles.jsonl.3"));
  for (const char* f : {"cycles.jsonl", "cycles.jsonl.1", "cycles.jsonl.2"})
    EXPECT_LE(fs::file_size(dir.path / f), 4096u + 2048u) << f;
  Rig rig(open_rails());
  halo::HistoryStore store(*rig.engine, {.dir = dir.path, .max_files = 3, .keep_cycles = 5});
  const auto c = store.restored_cycles(100);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0]["id"], newest);
}

TEST(HistoryStore, BadConfigAndUnusableDirectoriesAreRefused) {
  TempDir dir;
  Rig rig(open_rails());
  EXPECT_THROW(halo::HistoryStore(*rig.engine, {}), std::invalid_argument);
  EXPECT_THROW(halo::HistoryStore(*rig.engine, {.dir = dir.path, .max_files = 0}),
               std::invalid_argument);
  EXPECT_THROW(halo::HistoryStore(*rig.engine, {.dir = dir.path, .max_file_bytes = 10}),
               std::invalid_argument);
  std::ofstream(dir.path / "file") << "x";
  try {
    halo::HistoryStore s(*rig.engine, {.dir = dir.path / "file"});
    ADD_FAILURE() << "a file taken for a directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("file"), std::string::npos) << e.what();
  }
}

}  // namespace

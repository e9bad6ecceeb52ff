#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <set>

#include "octo/redis_streams.hpp"
#include "redis_rig.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::Outcome;
using octo::RedisStreams;
using octo::Task;
using octo_test::config;
using octo_test::eventually;
using octo_test::first_dead_reason;
using octo_test::redis;
using octo_test::RedisServer;

TEST(RedisStreams, TasksCrossTheStreamWithEverythingTheyCarryAndLeaveNothingBehind) {
  RedisServer server;
  constexpr int kTasks = 500;
  std::latch all(kTasks);
  std::mutex mu;
  std::map<std::string, Task> seen;
  RedisStreams rs(config([&](const Task& t, const octo::Context&) {
                    {
                      std::lock_guard lock(mu);
                      seen.emplace(t.payload, t);
                    }
                    all.count_down();
                    return Outcome::success();
                  }),
                  redis(server.port()));
  std::vector<Task> tasks;
  for (int i = 0; i < kTasks; ++i) {
    Task t{.type = "job", .payload = std::string("p") + std::to_string(i)};
    t.payload.push_back('\0');
    t.priority = octo::Priority::kHigh;
    t.target_agents = {"a 1", "b"};
    t.max_attempts = 4;
    tasks.push_back(std::move(t));
  }
  for (const auto& r : rs.publish(tasks)) ASSERT_TRUE(r) << r.error;
  all.wait();
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kTasks));
  std::set<std::uint64_t> keys;
  for (const auto& [payload, t] : seen) {
    EXPECT_EQ(t.payload.back(), '\0');
    EXPECT_EQ(t.priority, octo::Priority::kHigh);
    EXPECT_EQ(t.target_agents, (std::vector<std::string>{"a 1", "b"}));
    EXPECT_EQ(t.max_attempts, 4u);
    EXPECT_GT(t.created.time_since_epoch().count(), 0);
    keys.insert(t.durable_key);
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kTasks)) << "durable keys are distinct";
  // The counter moves after the server has answered the XACK and XDEL (the handler's count-down
  // comes before both), so the stream is empty once it reads kTasks.
  ASSERT_TRUE(
      eventually([&] { return rs.status().arms[0].acked == static_cast<std::uint64_t>(kTasks); }));
  EXPECT_EQ(server.command({"XLEN", "octo:work"}), "0") << "acked entries are deleted";
  const auto st = rs.status();
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.arms[0].published, static_cast<std::uint64_t>(kTasks));
  EXPECT_EQ(st.arms[0].fetched, static_cast<std::uint64_t>(kTasks));
  EXPECT_EQ(st.arms[0].acked, static_cast<std::uint64_t>(kTasks));
  EXPECT_EQ(st.arms[0].in_flight, 0u);
  EXPECT_EQ(st.arms[0].claimed, 0u);
}

TEST(RedisStreams, ExhaustedRetriesGoToTheDeadStreamWithTheirReason) {
  RedisServer server;
  std::atomic<int> runs{0};
  RedisStreams rs(config(
                      [&](const Task&, const octo::Context&) {
                        ++runs;
                        return Outcome::failure("disk on fire");
                      },
                      2, 3),
                  redis(server.port()));
  ASSERT_TRUE(rs.publish({.type = "job", .payload = "doomed"}));
  ASSERT_TRUE(eventually([&] { return rs.status().arms[0].dead_lettered == 1; }));
  EXPECT_EQ(runs.load(), 3) << "retried in process, as a local arm would";
  EXPECT_EQ(server.command({"XLEN", "octo:work:dead"}), "1");
  EXPECT_EQ(server.command({"XLEN", "octo:work"}), "0");
  EXPECT_EQ(first_dead_reason(server), "disk on fire");
}

TEST(RedisStreams, MaxParallelHoldsPerProcessAndLocalArmsStayLocal) {
  RedisServer server;
  constexpr int kTasks = 200;
  std::atomic<int> running{0}, peak{0};
  std::latch all(kTasks + 1);
  RedisStreams rs(config(
                      [&](const Task& t, const octo::Context&) {
                        const int now = ++running;
                        for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
                        }
                        if (t.type == "job") std::this_thread::yield();
                        --running;
                        all.count_down();
                        return Outcome::success();
                      },
                      1),
                  redis(server.port()));
  for (int i = 0; i < kTasks; ++i) ASSERT_TRUE(rs.publish({.type = "job"}));
  const auto local = rs.publish({.type = "here"});
  ASSERT_TRUE(local);
  EXPECT_TRUE(local.entry_id.starts_with("local-")) << local.entry_id;
  all.wait();
  EXPECT_LE(peak.load(), 2) << "one for the stream arm, one for the local arm";
  EXPECT_EQ(rs.status().arms[0].published, static_cast<std::uint64_t>(kTasks));
  EXPECT_FALSE(rs.publish({.type = "nowhere"}));
}

// A task published with run_at ahead waits in the arm's delayed set, not its stream, and runs
// once it is due, never before, carrying its due time and deadline.
TEST(RedisStreams, ADelayedTaskWaitsInRedisAndRunsWhenDueNeverBefore) {
  RedisServer server;
  std::promise<std::pair<Task, std::chrono::system_clock::time_point>> ran;
  RedisStreams rs(config([&](const Task& t, const octo::Context&) {
                    ran.set_value({t, std::chrono::system_clock::now()});
                    return Outcome::success();
                  }),
                  redis(server.port()));
  const auto due = std::chrono::system_clock::now() + 400ms;
  const auto deadline = due + 1h;
  const auto r =
      rs.publish({.type = "job", .payload = "later", .deadline = deadline, .run_at = due});
  ASSERT_TRUE(r) << r.error;
  EXPECT_TRUE(r.entry_id.starts_with("delayed-")) << r.entry_id;
  // Still ahead (the publish took well under 400 ms): in the set, not the stream.
  EXPECT_EQ(server.command({"ZCARD", "octo:work:delayed"}), "1");
  EXPECT_EQ(server.command({"XLEN", "octo:work"}), "0");
  auto f = ran.get_future();
  ASSERT_EQ(f.wait_for(octo_test::kGenerous), std::future_status::ready);
  const auto [task, when] = f.get();
  EXPECT_GE(when, due) << "ran before its due time";
  EXPECT_EQ(task.payload, "later");
  EXPECT_EQ(task.run_at, std::chrono::ceil<std::chrono::milliseconds>(due));
  EXPECT_EQ(task.deadline, std::chrono::floor<std::chrono::milliseconds>(deadline));
  ASSERT_TRUE(eventually([&] { return rs.status().arms[0].acked == 1; }));
  const auto st = rs.status().arms[0];
  EXPECT_EQ(st.published_delayed, 1u);
  EXPECT_EQ(st.published, 0u);
  EXPECT_EQ(st.moved, 1u);
  EXPECT_EQ(st.delayed, 0u);
  EXPECT_EQ(server.command({"ZCARD", "octo:work:delayed"}), "0");
  EXPECT_EQ(server.command({"EXISTS", "octo:work:delayed:1"}), "0") << "its field list is gone";
}

// Two consumers of one arm move due tasks from the same set: each of 300 delayed tasks runs
// exactly once, none before its time.
TEST(RedisStreams, DelayedTasksRunOnceAcrossConsumers) {
  RedisServer server;
  constexpr int kTasks = 300;
  std::mutex mu;
  std::map<std::string, int> runs;
  std::atomic<int> early{0};
  std::latch all(kTasks);
  auto handler = [&](const Task& t, const octo::Context&) {
    if (std::chrono::system_clock::now() < t.run_at) early.fetch_add(1);
    {
      std::lock_guard lock(mu);
      ++runs[t.payload];
    }
    all.count_down();
    return Outcome::success();
  };
  octo_test::TwoConsumers fleet(handler, server.port());
  RedisStreams& one = fleet.one;
  RedisStreams& two = fleet.two;
  std::vector<Task> tasks;
  const auto now = std::chrono::system_clock::now();
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back({.type = "job",
                     .payload = std::to_string(i),
                     .run_at = now + std::chrono::milliseconds(100 + i % 200)});
  }
  for (const auto& r : one.publish(tasks)) ASSERT_TRUE(r) << r.error;
  all.wait();
  // Every run is counted before the latch releases; a second run of any task would show here.
  ASSERT_TRUE(eventually([&] {
    return one.status().arms[0].acked + two.status().arms[0].acked == std::uint64_t{kTasks};
  }));
  EXPECT_EQ(runs.size(), static_cast<std::size_t>(kTasks));
  for (const auto& [payload, n] : runs) EXPECT_EQ(n, 1) << payload;
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(one.status().arms[0].moved + two.status().arms[0].moved, std::uint64_t{kTasks});
  EXPECT_EQ(server.command({"ZCARD", "octo:work:delayed"}), "0");
}

// A delayed member whose field list is gone or damaged is dead-lettered with a reason when due,
// never lost silently or left to block the set; the tasks after it run.
TEST(RedisStreams, ADamagedDelayedTaskIsDeadLetteredAndTheNextRuns) {
  RedisServer server;
  std::atomic<int> ran{0};
  RedisStreams rs(config([&](const Task&, const octo::Context&) {
                    ++ran;
                    return Outcome::success();
                  }),
                  redis(server.port()));
  server.command({"ZADD", "octo:work:delayed", "1", "900"});  // due long ago, no field list
  server.command({"RPUSH", "octo:work:delayed:901", "type", "job", "payload"});  // odd
  server.command({"ZADD", "octo:work:delayed", "2", "901"});
  ASSERT_TRUE(rs.publish({.type = "job", .run_at = std::chrono::system_clock::now() + 50ms}));
  ASSERT_TRUE(
      eventually([&] { return ran.load() == 1 && rs.status().arms[0].dead_lettered == 2; }));
  EXPECT_EQ(server.command({"XLEN", "octo:work:dead"}), "2");
  EXPECT_NE(first_dead_reason(server).find("no type field"), std::string::npos)
      << first_dead_reason(server);
  EXPECT_EQ(server.command({"ZCARD", "octo:work:delayed"}), "0");
  EXPECT_EQ(server.command({"EXISTS", "octo:work:delayed:901"}), "0");
}

// Two processes' worth of RedisStreams declare the same fleet schedule: every planned firing is
// published once (by one of them), and both see the firings the other took.
TEST(RedisStreams, AFleetScheduleFiresOncePerPeriodAcrossInstances) {
  RedisServer server;
  std::mutex mu;
  std::map<std::int64_t, int> runs;  // planned firing (ms) -> runs
  auto handler = [&](const Task& t, const octo::Context&) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.run_at.time_since_epoch());
    std::lock_guard lock(mu);
    ++runs[ms.count()];
    return Outcome::success();
  };
  octo_test::TwoConsumers fleet(handler, server.port());
  RedisStreams& one = fleet.one;
  RedisStreams& two = fleet.two;
  const octo::ScheduleSpec spec{.name = "tick",
                                .every = 100ms,
                                .task = {.type = "job", .payload = "tick"},
                                .overlap = octo::Overlap::kAllow,
                                .jitter = 20ms};
  one.schedule(spec);
  two.schedule(spec);
  auto fired = [&] {
    return one.schedules()[0].schedule.fired + two.schedules()[0].schedule.fired;
  };
  ASSERT_TRUE(eventually([&] { return fired() >= 12; }));
  // A firing may be on its way while the schedules are removed: it still runs, uncounted here.
  const std::uint64_t counted = fired();
  const auto a = one.schedules()[0], b = two.schedules()[0];
  EXPECT_GT(a.elsewhere + b.elsewhere, 0u) << "each saw firings the other took";
  EXPECT_EQ(a.unavailable + b.unavailable, 0u);
  EXPECT_TRUE(one.remove_schedule("tick") && two.remove_schedule("tick"));
  EXPECT_TRUE(one.schedules().empty() && two.schedules().empty());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return server.command({"XLEN", "octo:work"}) == "0" &&
           one.status().arms[0].in_flight + two.status().arms[0].in_flight == 0 &&
           runs.size() >= counted;
  }));
  std::lock_guard lock(mu);
  for (const auto& [planned, n] : runs) {
    EXPECT_EQ(n, 1) << "planned " << planned << " ran " << n << " times";
    EXPECT_EQ(planned % 100, 0) << "periods are counted from the epoch";
  }
}

// A pause from one instance holds the schedule on every instance (the firing's winner reads the
// fleet's pause key), and a resume from the other starts it again.
TEST(RedisStreams, AFleetSchedulePausedOnOneInstanceIsPausedOnAll) {
  RedisServer server;
  std::atomic<int> runs{0};
  auto handler = [&](const Task&, const octo::Context&) {
    ++runs;
    return Outcome::success();
  };
  octo_test::TwoConsumers fleet(handler, server.port());
  RedisStreams& one = fleet.one;
  RedisStreams& two = fleet.two;
  const octo::ScheduleSpec spec{
      .name = "tick", .every = 50ms, .task = {.type = "job"}, .overlap = octo::Overlap::kAllow};
  one.schedule(spec);
  two.schedule(spec);
  auto total = [&](auto field) { return field(one.schedules()[0]) + field(two.schedules()[0]); };
  auto fired = [](const octo::FleetScheduleStatus& s) { return s.schedule.fired; };
  auto missed = [](const octo::FleetScheduleStatus& s) { return s.schedule.missed; };
  ASSERT_TRUE(eventually([&] { return total(fired) >= 2; }));
  EXPECT_FALSE(one.pause_schedule("nope").found);
  const auto paused = one.pause_schedule("tick");
  ASSERT_TRUE(paused) << paused.error;
  EXPECT_TRUE(one.schedules()[0].schedule.paused);
  // A firing won just before the pause may still publish: at most one per instance.
  const std::uint64_t at_pause = total(fired);
  const std::uint64_t missed_before = total(missed);
  ASSERT_TRUE(eventually([&] { return total(missed) >= missed_before + 4; }));
  EXPECT_LE(total(fired), at_pause + 2) << "fired while paused";
  ASSERT_TRUE(eventually([&] { return two.schedules()[0].schedule.paused; }))
      << "the other instance sees the pause when it wins a firing";
  const std::uint64_t held = total(fired);
  ASSERT_TRUE(two.resume_schedule("tick"));
  ASSERT_TRUE(eventually([&] { return total(fired) >= held + 3; }));
  EXPECT_TRUE(eventually([&] { return !one.schedules()[0].schedule.paused; }))
      << "and the resume likewise";
  EXPECT_EQ(server.command({"EXISTS", "octo:schedule:tick:paused"}), "0");
}

TEST(RedisStreams, FleetSchedulesRefuseBadSpecsAndNeverFireWithoutRedis) {
  std::atomic<int> ran{0};
  RedisStreams rs(config([&](const Task&, const octo::Context&) {
                    ++ran;
                    return Outcome::success();
                  }),
                  redis(octo_test::free_port()));
  auto expect_error = [&](octo::ScheduleSpec spec, const std::string& needle) {
    try {
      rs.schedule(std::move(spec));
      ADD_FAILURE() << "no error for " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const Task job{.type = "job"};
  expect_error(
      {.name = "x", .every = 1s, .task = {.type = "here"}, .overlap = octo::Overlap::kSkip},
      "'x': overlap kSkip or kBufferOne needs a stream-backed arm");
  Task unique_job = job;
  unique_job.unique = octo::Unique{.key = "k", .ttl = 1s};
  expect_error({.name = "x", .every = 1s, .task = unique_job, .overlap = octo::Overlap::kBufferOne},
               "'x': overlap kSkip or kBufferOne sets the task's unique claim itself");
  expect_error({.name = "x", .cron = "* * * 13 *", .task = job, .overlap = octo::Overlap::kAllow},
               "'x': octo::CronSchedule: '* * * 13 *': month field");
  expect_error(
      {.name = "x", .every = 1s, .task = {.type = "nowhere"}, .overlap = octo::Overlap::kAllow},
      "task type 'nowhere' matches no route");
  rs.schedule({.name = "x", .every = 20ms, .task = job, .overlap = octo::Overlap::kAllow});
  expect_error({.name = "x", .every = 1s, .task = job, .overlap = octo::Overlap::kAllow},
               "'x': the name is taken");
  // No Redis: nobody can know who fires, so this process does not (counted, never run).
  ASSERT_TRUE(eventually([&] { return rs.schedules()[0].unavailable >= 3; }));
  const auto pause = rs.pause_schedule("x");
  EXPECT_TRUE(pause.found);
  EXPECT_NE(pause.error.find("redis unavailable"), std::string::npos) << pause.error;
  EXPECT_FALSE(rs.schedules()[0].schedule.paused) << "nothing changed";
  EXPECT_EQ(rs.schedules()[0].schedule.fired, 0u);
  EXPECT_EQ(ran.load(), 0);
}

// Lua's unpack() cannot spread thousands of fields: such a delayed task is refused naming the
// count, and nothing of it is left in Redis; the same task due now is published as usual.
TEST(RedisStreams, ADelayedTaskWithTooManyFieldsIsRefusedNamingTheCount) {
  octo_test::CountingConsumer c;
  Task t{.type = "job", .run_at = std::chrono::system_clock::now() + 1h};
  for (int i = 0; i < 4000; ++i) t.target_agents.edit().push_back("a" + std::to_string(i));
  const auto r = c.rs.publish(t);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error.find("at most 7000 stream fields (this one has 8012)"), std::string::npos)
      << r.error;
  EXPECT_EQ(c.server.command({"EXISTS", "octo:work:delayed"}), "0");
  EXPECT_EQ(c.rs.status().arms[0].published_delayed, 0u);
  t.run_at = {};
  EXPECT_TRUE(c.rs.publish(t)) << "not delayed: no limit";
}

TEST(RedisStreams, BadConfigurationIsRefusedWithoutRedis) {
  auto make = [](octo::ExecutorConfig cfg, octo::RedisStreamsConfig rc) {
    RedisStreams rs(std::move(cfg), std::move(rc));
  };
  auto ok = [](const Task&, const octo::Context&) { return Outcome::success(); };
  octo::RedisStreamsConfig unknown{.port = 1, .arms = {"nope"}};
  EXPECT_THROW(make(config(ok), unknown), std::invalid_argument);
  EXPECT_THROW(make(config(ok), {.port = 1}), std::invalid_argument);  // no arms
  octo::RedisStreamsConfig twice{.port = 1, .arms = {"work", "work"}};
  EXPECT_THROW(make(config(ok), twice), std::invalid_argument);
  // Constructing and stopping against a port where nothing listens neither throws nor hangs.
  EXPECT_NO_THROW(make(config(ok), {.port = octo_test::free_port(), .arms = {"work"}}));
}

// A fresh directory for worker processes' files, and the lines they appended to one of them.
std::filesystem::path worker_dir(const std::string& name) {
  const auto dir =
      std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}
std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// Three worker processes share the arm; one is killed with SIGKILL mid-run. Its unacknowledged
// tasks are taken over by the others after claim_idle; every task completes, and the only repeats
// are tasks the killed worker had fetched and not acknowledged (at most its window of 4).
TEST(RedisStreamsProcesses, AKilledWorkersTasksAreTakenOverAndNoneIsLost) {
  namespace fs = std::filesystem;
  RedisServer server;
  const fs::path dir = worker_dir("octo-redis-mp");
  constexpr int kTasks = 3000;
  {
    octo::ExecutorConfig cfg = config(nullptr);
    RedisStreams publisher(std::move(cfg),
                           {.port = server.port(), .arms = {"work"}, .consume = false});
    std::vector<Task> tasks;
    for (int i = 0; i < kTasks; ++i) tasks.push_back({.type = "job", .payload = std::to_string(i)});
    for (const auto& r : publisher.publish(tasks)) ASSERT_TRUE(r) << r.error;
  }
  auto completed_lines = [&] { return lines_of(dir / "completed"); };
  std::vector<pid_t> workers;
  for (int w = 0; w < 3; ++w) {
    workers.push_back(octo_test::spawn_process(
        {OCTO_REDIS_WORKER, std::to_string(server.port()), dir.string(), "w" + std::to_string(w)}));
  }
  ASSERT_TRUE(eventually([&] { return completed_lines().size() >= kTasks / 5; }));
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  ASSERT_EQ(::waitpid(workers[0], nullptr, 0), workers[0]);
  const std::string orphaned = server.command(
      {"EVAL", "return #redis.call('XPENDING', KEYS[1], 'octo', '-', '+', 100, 'w0')", "1",
       "octo:work"});
  ASSERT_TRUE(eventually(
      [&] {
        return server.command({"XLEN", "octo:work"}) == "0" &&
               server.command({"EVAL", "return redis.call('XPENDING', KEYS[1], 'octo')[1]", "1",
                               "octo:work"}) == "0";
      },
      60s))
      << "the stream drains";
  for (int w = 1; w < 3; ++w) {
    ASSERT_EQ(::kill(workers[w], SIGTERM), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(workers[w], &status, 0), workers[w]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker " << w;
  }
  const auto lines = completed_lines();
  std::set<std::string> distinct(lines.begin(), lines.end());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kTasks)) << "none lost";
  for (int i = 0; i < kTasks; ++i) ASSERT_TRUE(distinct.count(std::to_string(i))) << i;
  const std::size_t duplicates = lines.size() - distinct.size();
  EXPECT_LE(duplicates, 4u) << "repeats are bounded by the killed worker's window";
  EXPECT_EQ(server.command({"XLEN", "octo:work:dead"}), "0");
  std::uint64_t claimed = 0;
  for (int w = 1; w < 3; ++w) {
    std::ifstream in(dir / ("status-w" + std::to_string(w)));
    std::string word;
    std::uint64_t fetched = 0, c = 0;
    in >> word >> fetched >> word >> c;
    claimed += c;
  }
  EXPECT_EQ(claimed, std::stoull(orphaned)) << "exactly the killed worker's pending entries";
  RecordProperty("duplicates", static_cast<int>(duplicates));
  RecordProperty("orphaned", orphaned);
  std::printf("%d tasks, %zu runs, %zu repeated, %s taken over from the killed worker\n", kTasks,
              lines.size(), duplicates, orphaned.c_str());
  fs::remove_all(dir);
}

// Three worker processes declare the same fleet schedule (every 100 ms, jitter 30 ms): each
// planned firing runs once across them, and every process both takes firings and loses some.
TEST(RedisStreamsProcesses, AFleetScheduleFiresOncePerPeriodAcrossThreeProcesses) {
  namespace fs = std::filesystem;
  RedisServer server;
  const fs::path dir = worker_dir("octo-redis-sched");
  auto ticks = [&] { return lines_of(dir / "completed"); };
  std::vector<pid_t> workers;
  for (int w = 0; w < 3; ++w) {
    workers.push_back(
        octo_test::spawn_process({OCTO_REDIS_WORKER, std::to_string(server.port()), dir.string(),
                                  "s" + std::to_string(w), "schedule"}));
  }
  ASSERT_TRUE(eventually([&] { return ticks().size() >= 30; }, 60s));
  for (const pid_t pid : workers) {
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto lines = ticks();
  std::set<std::string> distinct(lines.begin(), lines.end());
  EXPECT_EQ(distinct.size(), lines.size()) << "a planned firing ran twice";
  std::uint64_t fired = 0;
  for (int w = 0; w < 3; ++w) {
    std::ifstream in(dir / ("status-s" + std::to_string(w)));
    std::string word;
    std::uint64_t v = 0, f = 0, e = 0;
    for (int i = 0; i < 4; ++i) in >> word >> v;  // fetched, claimed, acked, dead
    in >> word >> f >> word >> e;
    ASSERT_EQ(word, "elsewhere") << "status of s" << w;
    fired += f;
    EXPECT_GT(e, 0u) << "s" << w << " never lost a firing to another process";
  }
  // Counted when its publish returned, read before stop(): a firing in flight then ran but is not
  // counted (at most one per process); one published as all stopped may not have run.
  EXPECT_LE(lines.size(), fired + 3);
  EXPECT_GE(fired + 3, 30u);
  fs::remove_all(dir);
}

// Three worker processes publish, as fast as they can, tasks unique on five keys while queued or
// running, and run them: no key's task ever starts while another of its tasks runs in any
// process (the shared file's O_APPEND lines are in time order), every process is refused
// duplicates, and each accepted task ran once or is still in the stream.
TEST(RedisStreamsProcesses, UniqueKeysHoldAcrossThreeProcesses) {
  namespace fs = std::filesystem;
  RedisServer server;
  const fs::path dir = worker_dir("octo-redis-unique");
  auto ends = [&] {
    const auto lines = lines_of(dir / "completed");
    return std::count_if(lines.begin(), lines.end(),
                         [](const std::string& l) { return l.starts_with("end "); });
  };
  std::vector<pid_t> workers;
  for (int w = 0; w < 3; ++w) {
    workers.push_back(octo_test::spawn_process({OCTO_REDIS_WORKER, std::to_string(server.port()),
                                                dir.string(), "u" + std::to_string(w), "unique"}));
  }
  ASSERT_TRUE(eventually([&] { return ends() >= 200; }, 60s));
  for (const pid_t pid : workers) {
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::map<std::string, bool> running;
  std::size_t started = 0, ended = 0;
  for (const auto& line : lines_of(dir / "completed")) {
    const auto space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const std::string what = line.substr(0, space), key = line.substr(space + 1);
    if (what == "start") {
      ASSERT_FALSE(running[key]) << key << " started while another of its tasks ran";
      running[key] = true;
      ++started;
    } else {
      ASSERT_TRUE(running[key]) << key << " ended without a start";
      running[key] = false;
      ++ended;
    }
  }
  EXPECT_EQ(started, ended) << "stop() lets running tasks finish";
  std::uint64_t accepted = 0;
  for (int w = 0; w < 3; ++w) {
    std::ifstream in(dir / ("status-u" + std::to_string(w)));
    std::map<std::string, std::uint64_t> counts;
    std::string word;
    for (std::uint64_t v = 0; in >> word >> v;) counts[word] = v;
    EXPECT_GT(counts["accepted"], 0u) << "u" << w;
    EXPECT_GT(counts["duplicates"], 0u) << "u" << w << " was never refused a duplicate";
    accepted += counts["accepted"];
  }
  // Tasks queued in a process at its stop stay in the stream for the next consumer.
  EXPECT_EQ(accepted, ended + std::stoull(server.command({"XLEN", "octo:work"})));
  std::printf("%llu accepted, %zu ran\n", static_cast<unsigned long long>(accepted), ended);
  fs::remove_all(dir);
}

}  // namespace

// A worker process for the Redis multi-process tests. Usage:
//   redis_streams_worker <port> <dir> <name> [schedule | unique]
// Runs arm "work" (max_parallel 2) from the stream until SIGTERM, appending each payload to
// <dir>/completed (one write(2) per line, O_APPEND); on SIGTERM stops cleanly and writes its
// counters to <dir>/status-<name>. With `schedule`, it also declares the fleet schedule "tick"
// (every 100 ms, a "job" with payload "tick"), whose tasks are written as "tick@<planned ms>",
// and its status line adds the schedule's fired and elsewhere counts. With `unique`, it also
// publishes until SIGTERM, every millisecond, a task unique while queued or running on one of
// the keys u0-u4 (payload "u<k>#<name>#<n>"); those tasks write "start u<k>" and, 3 ms later,
// "end u<k>", and its status line adds the accepted and duplicate publishes.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "octo/redis_streams.hpp"

int main(int argc, char** argv) {
  const std::string mode = argc == 5 ? argv[4] : "";
  if (argc < 4 || argc > 5 || (argc == 5 && mode != "schedule" && mode != "unique")) {
    std::fprintf(stderr, "usage: %s <port> <dir> <name> [schedule | unique]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[2], name = argv[3];
  const int out = ::open((dir + "/completed").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out < 0) return 3;
  // SIGTERM is taken by sigwait below, so every thread must have it blocked.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  octo::ExecutorConfig cfg;
  octo::ArmConfig arm;
  arm.name = "work";
  arm.max_parallel = 2;
  arm.handler = [out](const octo::Task& t, const octo::Context&) {
    auto put = [out](const std::string& line) {
      return ::write(out, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    };
    if (t.payload.starts_with("u")) {
      const std::string key = t.payload.substr(0, t.payload.find('#'));
      if (!put("start " + key + "\n")) return octo::Outcome::failure("write failed");
      std::this_thread::sleep_for(std::chrono::milliseconds(3));  // the work
      return put("end " + key + "\n") ? octo::Outcome::success()
                                      : octo::Outcome::failure("write failed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the work
    std::string line = t.payload;
    if (t.payload == "tick") {
      line += "@" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       t.run_at.time_since_epoch())
                                       .count());
    }
    line += "\n";
    if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return octo::Outcome::failure("write failed");
    }
    return octo::Outcome::success();
  };
  cfg.arms = {arm};
  cfg.routes = {};
  cfg.routes.add_exact("job", "work");
  cfg.threads = 2;
  octo::RedisStreams rs(std::move(cfg), {.port = std::stoi(argv[1]),
                                         .consumer = name,
                                         .arms = {"work"},
                                         .claim_idle = std::chrono::milliseconds(500)});
  std::atomic<bool> publishing{mode == "unique"};
  std::uint64_t accepted = 0, duplicates = 0;
  std::thread publisher([&] {
    for (std::uint64_t n = 0; publishing.load(); ++n) {
      octo::Task t{.type = "job",
                   .payload = "u" + std::to_string(n % 5) + "#" + name + "#" + std::to_string(n)};
      t.unique = octo::Unique{.key = "u" + std::to_string(n % 5),
                              .ttl = std::chrono::seconds(60),
                              .scope = octo::UniqueScope::kQueuedOrRunning};
      const auto r = rs.publish(t);
      if (r) ++accepted;
      if (!r.duplicate_of.empty()) ++duplicates;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pacing, not synchronization
    }
  });
  if (mode == "schedule") {
    rs.schedule({.name = "tick",
                 .every = std::chrono::milliseconds(100),
                 .task = {.type = "job", .payload = "tick"},
                 .overlap = octo::Overlap::kAllow,
                 .jitter = std::chrono::milliseconds(30)});
  }
  int sig = 0;
  sigwait(&term, &sig);
  publishing.store(false);
  publisher.join();
  const auto fleet = rs.schedules();
  rs.stop();
  const auto st = rs.status().arms.at(0);
  std::ofstream status(dir + "/status-" + name);
  status << "fetched " << st.fetched << " claimed " << st.claimed << " acked " << st.acked
         << " dead " << st.dead_lettered;
  if (!fleet.empty()) {
    status << " fired " << fleet[0].schedule.fired << " elsewhere " << fleet[0].elsewhere;
  }
  if (mode == "unique") status << " accepted " << accepted << " duplicates " << duplicates;
  status << "\n";
  return 0;
}

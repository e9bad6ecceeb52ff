// A worker process for the Redis multi-process test. Usage:
//   redis_streams_worker <port> <dir> <name>
// Runs arm "work" (max_parallel 2) from the stream until SIGTERM, appending each payload to
// <dir>/completed (one write(2) per line, O_APPEND); on SIGTERM stops cleanly and writes its
// counters to <dir>/status-<name>.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "octo/redis_streams.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <port> <dir> <name>\n", argv[0]);
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
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the work
    const std::string line = t.payload + "\n";
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
  int sig = 0;
  sigwait(&term, &sig);
  rs.stop();
  const auto st = rs.status().arms.at(0);
  std::ofstream(dir + "/status-" + name)
      << "fetched " << st.fetched << " claimed " << st.claimed << " acked " << st.acked << " dead "
      << st.dead_lettered << "\n";
  return 0;
}

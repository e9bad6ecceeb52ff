// One instance of a service for the fleet's multi-process test: an engine, an executor and an
// HTTP server, the HALO loop on a 50 ms timer, one shared dependency ("dependency:db") and the
// fleet on the test's redis-server.
//
//   fleet_instance <redis-port> <dir> <name> <lease-ttl-ms>
//
// The test drives it through files in <dir>: `down` (the dependency is broken for everyone),
// `path-<name>` (broken from this instance only), `hold` (a repair waits while it exists, a long
// repair the test can kill or stop midway). A repair appends "<name>" to `repairs` and removes
// `down`. The instance writes its HTTP port to `http-<name>`, and exits 0 on SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "halo/engine.hpp"
#include "halo/http/server.hpp"
#include "halo/redis_fleet.hpp"
#include "open_rails.hpp"  // tests/support
#include "shared_dependency.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct FileDependency : halo::Analyzer {
  fs::path down, path;
  FileDependency(fs::path d, fs::path p) : down(std::move(d)), path(std::move(p)) {}
  std::string_view name() const noexcept override { return "dependency"; }
  halo::AnalyzerResult analyze(const halo::Snapshot&) override {
    halo::AnalyzerResult r;
    if (fs::exists(down) || fs::exists(path)) r.issues.push_back(octo_test::dependency_issue("db"));
    return r;
  }
};

void write_atomically(const fs::path& to, const std::string& text) {
  const fs::path tmp = to.string() + ".tmp";
  std::ofstream(tmp) << text;
  fs::rename(tmp, to);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: fleet_instance <redis-port> <dir> <name> <lease-ttl-ms>\n");
    return 2;
  }
  const int port = std::stoi(argv[1]);
  const fs::path dir = argv[2];
  const std::string name = argv[3];
  const auto lease_ttl = std::chrono::milliseconds(std::stoi(argv[4]));
  // SIGTERM is taken by sigwait below: blocked before any thread starts, so all inherit it.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  halo::SystemState state;
  halo::EngineConfig cfg = octo_test::open_rails();  // the loop's cycles verify too
  cfg.fleet = std::make_shared<halo::RedisFleet>(halo::RedisFleetConfig{.port = port,
                                                                        .service = "shop",
                                                                        .instance = name,
                                                                        .verdict_ttl = 1s,
                                                                        .lease_ttl = lease_ttl,
                                                                        .timeout = 200ms,
                                                                        .reconnect_base = 20ms,
                                                                        .reconnect_max = 200ms});
  halo::Engine engine(state, std::move(cfg));
  engine.add_analyzer(std::make_unique<FileDependency>(dir / "down", dir / ("path-" + name)));
  engine.add_strategy(std::make_unique<octo_test::RestartDependency>());
  engine.share({"dependency", "db"});

  octo::ExecutorConfig ec;
  ec.threads = 2;
  for (auto& arm : ec.arms) {
    arm.max_attempts = 1;
    arm.handler = [&](const octo::Task&, const octo::Context&) {
      while (fs::exists(dir / "hold")) std::this_thread::sleep_for(5ms);  // a long repair
      const std::string line = name + "\n";
      const int fd = ::open((dir / "repairs").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        if (::write(fd, line.data(), line.size()) < 0) std::perror("repairs");
        ::close(fd);
      }
      fs::remove(dir / "down");
      return octo::Outcome::success();
    };
  }
  octo::Executor executor(std::move(ec));
  engine.attach(executor);
  auto loop = halo::register_loop(engine, {.time_interval = 50ms});
  halo::HttpServer http({.port = 0, .token = "t"}, engine, &executor, &*loop);
  http.start();
  write_atomically(dir / ("http-" + name), std::to_string(http.port()));

  int sig = 0;
  sigwait(&term, &sig);
  http.stop();
  loop.stop();
  executor.shutdown(octo::ShutdownMode::kDrain, 5s);
  return 0;
}

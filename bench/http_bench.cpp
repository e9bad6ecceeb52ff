// GET /status latency of the HTTP server (Boost.Beast), unloaded and with 200 idle connections
// and 20 half-sent requests held open beside it: abusive clients must not slow normal requests
// (target: within 2x of unloaded, p99 < 100 ms). One keep-alive client connection, as a scraper
// uses; p50 and p99 of each request's round trip are reported as counters.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "halo/http/server.hpp"
#include "octo/clock.hpp"
#include "octo/ticker.hpp"

namespace {

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One request on a kept-alive connection; false when the answer did not come whole.
bool get_status(int fd, std::string& buf) {
  static const std::string req = "GET /status HTTP/1.1\r\nHost: bench\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return false;
  buf.clear();
  std::size_t need = std::string::npos;
  char chunk[8192];
  while (need == std::string::npos || buf.size() < need) {
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
    if (need == std::string::npos) {
      const auto end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      const auto cl = buf.find("Content-Length: ");
      if (cl == std::string::npos || cl > end) return false;
      need = end + 4 + std::stoul(buf.substr(cl + 16));
    }
  }
  return true;
}

void run(benchmark::State& state, bool abused) {
  auto clock = std::make_shared<octo::SteadyClock>();
  octo::Ticker ticker({.clock = clock});
  halo::SystemState sys(clock, &ticker);
  for (int i = 0; i < 100; ++i) sys.upsert_agent({.id = "agent-" + std::to_string(i)});
  halo::Engine engine(sys);
  engine.run_cycle("bench");
  halo::HttpServer http({.port = 0, .token = "bench"}, engine);
  http.start();
  std::vector<int> abusers;
  if (abused) {
    for (int i = 0; i < 220; ++i) {
      const int fd = connect_to(http.port());
      if (fd >= 0 && i >= 200) {
        const std::string partial = "GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n";
        ::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL);
      }
      abusers.push_back(fd);
    }
  }
  const int fd = connect_to(http.port());
  std::string buf;
  std::vector<double> us;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!get_status(fd, buf)) {
      state.SkipWithError("request failed");
      break;
    }
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  if (!us.empty()) {
    std::sort(us.begin(), us.end());
    state.counters["p50_us"] = us[us.size() / 2];
    state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  }
  ::close(fd);
  for (const int a : abusers)
    if (a >= 0) ::close(a);
  http.stop();
}

void BM_HttpStatus_Unloaded(benchmark::State& state) { run(state, false); }
void BM_HttpStatus_With200IdleAnd20SlowClients(benchmark::State& state) { run(state, true); }

BENCHMARK(BM_HttpStatus_Unloaded)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_HttpStatus_With200IdleAnd20SlowClients)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

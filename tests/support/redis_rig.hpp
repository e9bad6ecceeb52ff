// Stream arms against a private redis-server for the Redis tests: an executor configuration
// with one stream arm ("work") and one local arm, the stream settings, a bounded wait for a
// condition the system reaches on its own, and consumers that count their runs.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "eventually.hpp"
#include "octo/redis_streams.hpp"
#include "redis_server.hpp"

namespace octo_test {

using namespace std::chrono_literals;

inline constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a wait

inline octo::ExecutorConfig config(octo::Handler h, std::uint32_t parallel = 2,
                                   std::uint32_t max_attempts = 3) {
  octo::ExecutorConfig cfg;
  octo::ArmConfig work;
  work.name = "work";
  work.max_parallel = parallel;
  work.max_attempts = max_attempts;
  work.backoff_base = 1ms;
  work.backoff_max = 1ms;
  work.handler = std::move(h);
  octo::ArmConfig local = work;
  local.name = "local";
  cfg.arms = {work, local};
  cfg.routes = {};
  cfg.routes.add_exact("job", "work").add_exact("here", "local");
  cfg.threads = 2;
  return cfg;
}

inline octo::RedisStreamsConfig redis(int port) {
  return {.port = port,
          .arms = {"work"},
          .block = 50ms,
          .reconnect_base = 10ms,
          .reconnect_max = 100ms};
}

// Two consumers of the same stream arms ("c1" and "c2"), as two processes of a fleet would be,
// with one handler.
struct TwoConsumers {
  TwoConsumers(const octo::Handler& h, int port)
      : one(config(h), named(port, "c1")), two(config(h), named(port, "c2")) {}
  static octo::RedisStreamsConfig named(int port, std::string consumer) {
    octo::RedisStreamsConfig rc = redis(port);
    rc.consumer = std::move(consumer);
    return rc;
  }
  octo::RedisStreams one;
  octo::RedisStreams two;
};

// The fourth field (the reason) of the oldest entry in the arm's dead-letter stream.
inline std::string first_dead_reason(const RedisServer& server) {
  return server.command(
      {"EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')[1][2][4]", "1", "octo:work:dead"});
}

// A private redis-server and stream arms whose handler only counts its runs.
struct CountingConsumer {
  RedisServer server;
  std::atomic<int> runs{0};
  octo::RedisStreams rs{config([this](const octo::Task&, const octo::Context&) {
                          ++runs;
                          return octo::Outcome::success();
                        }),
                        redis(server.port())};
};

}  // namespace octo_test

// halo/redis_fleet.hpp — halo::Fleet (halo/fleet.hpp) over one Redis server: the instances of a
// service that share `service` coordinate through keys under "halo:fleet:<service>:".
//
//   auto fleet = std::make_shared<halo::RedisFleet>(
//       halo::RedisFleetConfig{.port = 6379, .service = "payments"});
//   halo::Engine engine(state, {.fleet = fleet});
//
// Each call is one Lua script (EVAL): one pipelined round trip whatever the number of subjects,
// run atomically on the server and timed by the server's clock (TIME), so the instances' clocks
// need not agree. Keys: `peers` (a sorted set of heartbeats by expiry), `v:<subject>` (a hash of
// instance -> verdict and expiry, expiring with the newest verdict), `lease:<subject>` ("<token>
// <instance>", SET NX PX), `fence:<subject>` (INCR: the fencing tokens, never expiring),
// `outcome:<subject>` ("<token> <1 healed | 0 failed> <instance>"), `repairs:<subject>` (the
// fleet's budget), `bucket` (the fleet's token bucket), `judged` (outcomes within the breaker's
// window) and `silences` (a hash). The scripts name keys they build from their arguments, which a
// single Redis server allows and Redis Cluster does not: the fleet needs one server (or a primary
// with replicas).
//
// Failures are values: a refused connect or an I/O error gives ok = false with the address and
// the reason, drops the connection, and the next call after a backoff (doubling from
// reconnect_base to reconnect_max) connects again; calls before that fail at once without
// touching the network. Thread safety: every member may be called from any thread (one mutex
// around the connection). Cost: sync() sends about 40 bytes per subject and runs four commands
// per subject inside the server.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "halo/fleet.hpp"

namespace halo {

struct RedisFleetConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  // The fleet: instances with the same service coordinate. Non-empty, no whitespace.
  std::string service = "default";
  // This instance's name; empty = "<hostname>-<pid>". No whitespace (it is stored after a space).
  std::string instance{};
  // The evidence window: verdicts and heartbeats live this long. Two cycle intervals: the
  // default is two of the time trigger's default interval (5 min); set it to two of the loop's.
  // Shorter than the interval between an instance's cycles, its verdicts would lapse between
  // them and each instance would mostly decide alone.
  std::chrono::milliseconds verdict_ttl{std::chrono::minutes(10)};
  // A repair lease lives this long without renewal: a dead holder's lease passes to another
  // instance after it. Every cycle renews it, including the verify cycles the engine runs every
  // SafetyConfig::verify_interval (2 s) while a repair is in flight or verifying: keep it
  // several of those (or of the loop's interval, with verify cycles off).
  std::chrono::milliseconds lease_ttl{std::chrono::seconds(30)};
  // Connect and per-call I/O timeouts.
  std::chrono::milliseconds timeout{std::chrono::seconds(1)};
  std::chrono::milliseconds reconnect_base{std::chrono::milliseconds(100)};
  std::chrono::milliseconds reconnect_max{std::chrono::seconds(5)};
};

class RedisFleet final : public Fleet {
 public:
  // Throws std::invalid_argument naming the field for an empty or spaced service or instance, a
  // port outside 1..65535, or a TTL or timeout <= 0. Does not connect (the first call does).
  explicit RedisFleet(RedisFleetConfig config);
  ~RedisFleet() override;
  RedisFleet(const RedisFleet&) = delete;
  RedisFleet& operator=(const RedisFleet&) = delete;

  std::string_view instance() const noexcept override { return instance_; }
  std::chrono::milliseconds lease_ttl() const noexcept override { return config_.lease_ttl; }
  FleetSyncResult sync(const std::vector<FleetVerdict>& verdicts,
                       const std::vector<FleetLease>& held) override;
  FleetExchangeResult exchange(const std::vector<FleetOutcome>& outcomes,
                               const std::vector<std::string>& claims,
                               const FleetRails& rails) override;
  std::string add_silence(const FleetSilence& silence, std::string& error) override;
  bool remove_silence(std::string_view id) override;
  std::uint64_t round_trips() const noexcept override {
    // Relaxed: a counter read by benchmarks and tests after the calls they count.
    return round_trips_.load(std::memory_order_relaxed);
  }
  // The key prefix, "halo:fleet:<service>:".
  const std::string& prefix() const noexcept { return prefix_; }

 private:
  struct Connection;
  const RedisFleetConfig config_;
  const std::string instance_;
  const std::string prefix_;
  std::mutex mu_;
  std::unique_ptr<Connection> conn_;  // guarded by mu_
  std::atomic<std::uint64_t> round_trips_{0};
};

}  // namespace halo

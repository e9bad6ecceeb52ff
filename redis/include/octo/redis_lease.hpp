// octo/redis_lease.hpp — a named lease in Redis, held by one process of a fleet at a time, with a
// fencing token.
//
// For work that must happen once across every instance of a service: a periodic schedule's
// firing (RedisStreams::schedule), a repair of a dependency they all share. `acquire` takes the
// lease with `SET <prefix>lease:<name> ... NX PX <ttl>` and numbers it from `INCR` on
// `<prefix>lease:<name>:fence`: tokens only grow, so whatever the holder writes can carry its
// token, and a write from a holder whose lease expired (a stale holder, paused past its TTL) is
// told apart from the current one's by a smaller token (`holds`). A holder that dies loses the
// lease after its TTL; `renew` extends it while work goes on; `release` ends it early. Renew and
// release act only for the token that holds the lease (compare-and-set scripts), never on a
// successor's.
//
//   octo::RedisLease lease({.port = 6379}, "worker-3");
//   if (auto l = lease.acquire("repair:payments-db", std::chrono::seconds(30)); l.token != 0) {
//     ... lease.renew("repair:payments-db", l.token, std::chrono::seconds(30)) ...
//     lease.release("repair:payments-db", l.token);
//   }
//
// Contract: thread-safe (one connection under a mutex); every call is one round trip, blocking,
// and never throws: Redis unreachable is `error` set (and `token` 0), so a caller can stay
// conservative (not do the work) rather than risk doing it twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "octo/redis_streams.hpp"

namespace octo {

struct LeaseResult {
  std::uint64_t token = 0;  // > 0: this process holds the lease under this fencing token
  std::string holder{};     // token 0: the current holder's owner name (empty if it just expired)
  std::string error{};      // Redis unreachable or refused: nothing is known
};

class RedisLease {
 public:
  // `connection`: host, port, block (the reply timeout is block + 2 s), reconnect_* and
  // stream_prefix (keys are `<stream_prefix>lease:<name>`). `owner` names this process in the
  // lease's value; empty = "<hostname>-<pid>".
  explicit RedisLease(RedisStreamsConfig connection, std::string owner = {});
  ~RedisLease();
  RedisLease(const RedisLease&) = delete;
  RedisLease& operator=(const RedisLease&) = delete;

  // Throws std::invalid_argument for an empty name or a TTL below 1 ms.
  LeaseResult acquire(std::string_view name, std::chrono::milliseconds ttl);
  // True when `token` still held the lease and its TTL was set to `ttl` from now.
  bool renew(std::string_view name, std::uint64_t token, std::chrono::milliseconds ttl);
  // True when `token` held the lease and it is released.
  bool release(std::string_view name, std::uint64_t token);
  // True when `token` holds the lease now (the fencing check before a write).
  bool holds(std::string_view name, std::uint64_t token);

  const std::string& owner() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo

// One hiredis connection to the Redis server, re-established with exponential backoff, and the
// small pieces every command uses: owned replies, argv building, reply strings.
//
//   detail::Connection conn(config, health);
//   if (conn.ensure(/*wait=*/true))
//     detail::Reply r = conn.run(detail::Command() << "XLEN" << stream);  // nullptr: I/O error
//
// Not thread-safe: each thread owns its own connection (the publisher's is guarded by a lock).
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "octo/redis_streams.hpp"

namespace octo::detail {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// The text of a string, status or error reply; empty for any other reply (or none).
std::string_view reply_text(const redisReply* r) noexcept;
bool is_error(const redisReply* r) noexcept;
// "<hostname>-<pid>": how this process names itself to Redis (consumer, lease owner) by default.
std::string process_name();

// An argv for hiredis built from string pieces (binary-safe).
class Command {
 public:
  Command& operator<<(std::string_view s) {
    parts_.emplace_back(s);
    return *this;
  }
  Command& operator<<(std::uint64_t n) { return *this << std::string_view(std::to_string(n)); }
  int argc() const noexcept { return static_cast<int>(parts_.size()); }
  void fill(std::vector<const char*>& argv, std::vector<std::size_t>& len) const;

 private:
  std::deque<std::string> parts_;  // stable addresses
};

// What a connection tells its owner about the server's health; called on the connection's
// thread.
class ConnectionHealth {
 public:
  virtual ~ConnectionHealth() = default;
  // A command or a connect went through.
  virtual void succeeded() noexcept = 0;
  // Connected again after a lost connection.
  virtual void reconnected() noexcept = 0;
  // A connect or I/O error, described with the server's address or hiredis's message.
  virtual void failed(std::string what) = 0;
  // Waits `d` after a failed connect, returning early when the owner stops.
  virtual void pause(std::chrono::milliseconds d) = 0;
};

class Connection {
 public:
  // `config` (host, port, block, reconnect_*) and `health` must outlive the connection.
  Connection(const RedisStreamsConfig& config, ConnectionHealth& health)
      : cfg_(config), health_(health) {}
  ~Connection() { drop(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const noexcept { return ctx_ != nullptr; }
  // The wait after the last failed connect (0 once connected).
  std::chrono::milliseconds backoff() const noexcept { return backoff_; }
  void drop() noexcept;
  // Connects if needed and checks the server answers PING; false when it could not. `wait`:
  // after a failure, pause for the backoff (doubling from reconnect_base to reconnect_max).
  bool ensure(bool wait);
  // Pipelines `c` (sent with the next read).
  void append(const Command& c);
  // Reads one pipelined reply; nullptr (and the connection dropped) on an I/O error.
  Reply read();
  // append() and read(); nullptr when not connected.
  Reply run(const Command& c);
  // How long a command may wait for its reply: `block` plus two seconds.
  std::chrono::milliseconds io_timeout() const noexcept;

 private:
  const RedisStreamsConfig& cfg_;
  ConnectionHealth& health_;
  redisContext* ctx_ = nullptr;
  std::chrono::milliseconds backoff_{0};
  bool ever_connected_ = false;
  std::vector<const char*> argv_;
  std::vector<std::size_t> len_;
};

}  // namespace octo::detail

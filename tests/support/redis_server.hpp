// A private redis-server for one test: a free 127.0.0.1 port, a temp dir, no persistence.
// Started with posix_spawn and stopped (SIGKILL, or SIGTERM for a clean stop) by the destructor.
#pragma once

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace octo_test {

class RedisServer {
 public:
  explicit RedisServer(int port = 0) : port_(port ? port : free_port()) {
    dir_ = std::filesystem::temp_directory_path() /
           ("octo-redis-" + std::to_string(::getpid()) + "-" + std::to_string(port_));
    std::filesystem::create_directories(dir_);
    start();
  }
  ~RedisServer() {
    kill();
    std::filesystem::remove_all(dir_);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const noexcept { return port_; }

  // Starts the server and waits until it answers PING (the readiness check, bounded at 10 s).
  void start() {
    pid_ = spawn_process({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                          "--dir", dir_.string(), "--save", "", "--appendonly", "no", "--logfile",
                          (dir_ / "redis.log").string()});
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (auto r = command({"PING"}); r == "PONG") return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("redis-server exited at start (see " + dir_.string() + ")");
      }
      std::this_thread::yield();
    }
    throw std::runtime_error("redis-server did not answer PING within 10 s");
  }

  // Sends `sig` to the server (SIGSTOP freezes it: connections are still accepted by the
  // kernel, commands get no answer; SIGCONT thaws it).
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // Runs one command on a fresh connection; the reply as text ("" on a nil or a failure; an
  // integer as its decimal digits).
  std::string command(const std::vector<std::string>& args) const {
    const timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c == nullptr || c->err) {
      if (c) redisFree(c);
      return "";
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> len;
    for (const auto& a : args) {
      argv.push_back(a.data());
      len.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), len.data()));
    std::string out;
    if (r) {
      if (r->type == REDIS_REPLY_INTEGER) {
        out = std::to_string(r->integer);
      } else if (r->str) {
        out.assign(r->str, r->len);
      }
      freeReplyObject(r);
    }
    redisFree(c);
    return out;
  }

 private:
  int port_;
  pid_t pid_ = -1;
  std::filesystem::path dir_;
};

}  // namespace octo_test

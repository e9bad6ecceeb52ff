// A real server for one test (prometheus-alertmanager, prometheus): started with posix_spawn on
// a free 127.0.0.1 port in a temp dir of its own, ready once an HTTP GET of `ready_path`
// answers 200 (bounded), stopped (SIGTERM, then SIGKILL) and its dir removed by the destructor.
// Tests that need one skip when its binary is not installed.
#pragma once

#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace octo_test {

inline bool have_binary(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

class ServiceProcess {
 public:
  // `args(dir, port)` gives the command line; `files` are written into the dir first.
  // `port` 0: a free one.
  ServiceProcess(std::string name,
                 const std::function<std::vector<std::string>(const std::string&, int)>& args,
                 const std::vector<std::pair<std::string, std::string>>& files,
                 const std::string& ready_path, int port = 0)
      : name_(std::move(name)), port_(port != 0 ? port : free_port()) {
    dir_ = std::filesystem::temp_directory_path() /
           ("octo-" + name_ + "-" + std::to_string(::getpid()) + "-" + std::to_string(port_));
    std::filesystem::create_directories(dir_);
    for (const auto& [file, text] : files) std::ofstream(dir_ / file) << text;
    pid_ = spawn_process(args(dir_.string(), port_));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    httplib::Client cli("127.0.0.1", port_);
    cli.set_connection_timeout(std::chrono::seconds(1));
    while (std::chrono::steady_clock::now() < until) {
      if (auto r = cli.Get(ready_path); r && r->status == 200) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(name_ + " exited at start (dir " + dir_.string() + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a child's start
    }
    stop();
    throw std::runtime_error(name_ + " not ready within 30 s");
  }
  ~ServiceProcess() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& dir() const noexcept { return dir_; }
  httplib::Client client() const { return httplib::Client("127.0.0.1", port_); }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a clean exit, bounded
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string name_;
  int port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

// Polls `done` until it holds or `limit` passes (for state a real server reaches on its own
// time: an alert becoming active, a scrape landing). Returns whether it held.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace octo_test

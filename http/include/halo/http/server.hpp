// halo/http/server.hpp — an HTTP face for an embedding service (cpp-httplib).
//
//   GET  /metrics            Prometheus text (see metrics.hpp)
//   GET  /status             engine, executor and trigger status (JSON)
//   GET  /cycles?limit=N     recent cycles, newest first (JSON, N <= history)
//   GET  /audit?limit=N      newest audit entries, oldest first (JSON)
//   POST /trigger            {"type": "...", "severity": "..."}: the event trigger
//   POST /approve/{id}       approve a pending repair
//   POST /reject/{id}        reject it
// Mutating routes need `Authorization: Bearer <token>` when a token is configured. Errors are
// JSON {"error": "..."} with a 4xx status: malformed JSON, bad limits, unknown ids, bodies over
// max_body_bytes (413). Binds 127.0.0.1 by default.
//
//   halo::HttpServer http({.port = 9464, .token = "s3cret"}, engine, &executor, &*loop);
//   http.start();   // serves on its own threads until stop() or destruction
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "halo/engine.hpp"
#include "halo/triggers.hpp"
#include "octo/executor.hpp"

namespace halo {

struct HttpConfig {
  std::string host = "127.0.0.1";
  int port = 0;         // 0: any free port (see HttpServer::port())
  std::string token{};  // empty: mutating routes are open (bind to loopback only, then)
  std::size_t max_body_bytes = std::size_t{64} * 1024;
};

class HttpServer {
 public:
  // `executor` and `triggers` may be null. All must outlive the server.
  HttpServer(HttpConfig config, Engine& engine, const octo::Executor* executor = nullptr,
             Triggers* triggers = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving; throws std::runtime_error naming host and port when binding fails.
  void start();
  void stop();
  int port() const noexcept { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace halo

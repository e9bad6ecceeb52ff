// halo/http/server.hpp — an HTTP face for an embedding service (Boost.Beast on two threads).
//
//   GET  /metrics            Prometheus text (see metrics.hpp)
//   GET  /status             engine, executor and trigger status (JSON)
//   GET  /cycles?limit=N     recent cycles, newest first (JSON, N <= history)
//   GET  /audit?limit=N      newest audit entries, oldest first (JSON)
//   POST /trigger            {"type": "...", "severity": "..."}: the event trigger
//   POST /approve/{id}       approve a pending repair
//   POST /reject/{id}        reject it
// Mutating routes need `Authorization: Bearer <token>` when a token is configured; it is checked
// from the request's head, before any body is read. Errors are JSON {"error": "..."}: 400
// malformed requests, JSON or limits, 401 token, 404 routes and ids, 405 methods, 413 bodies over
// max_body_bytes however they are sent (Content-Length or chunked), 415 compressed bodies, 431
// heads over max_header_bytes. Every response is valid UTF-8. A request must arrive whole within
// request_timeout (a kept-alive connection idle that long is closed); connections beyond
// max_connections are closed on accept; stop() drops every connection at once. Binds 127.0.0.1
// by default.
//
//   halo::HttpServer http({.port = 9464, .token = "s3cret"}, engine, &executor, &*loop);
//   http.start();   // serves on its own threads until stop() or destruction
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "halo/engine.hpp"
#include "halo/triggers.hpp"
#include "octo/executor.hpp"

namespace halo {

struct HttpConfig {
  std::string host = "127.0.0.1";
  int port = 0;         // 0: any free port (see HttpServer::port())
  std::string token{};  // empty: mutating routes are open (bind to loopback only, then)
  std::size_t max_body_bytes = std::size_t{64} * 1024;
  std::size_t max_header_bytes = std::size_t{16} * 1024;  // request line and headers
  // Each connection buffers at most max_header_bytes + max_body_bytes.
  std::size_t max_connections = 512;
  std::chrono::milliseconds request_timeout{10'000};
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
  // Stops serving and closes every connection; returns once the server's threads have left.
  void stop();
  int port() const noexcept { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace halo

// halo/http/server.hpp — octohalo's HTTP routes (handler.hpp) on a port of their own: Boost.Beast
// on two threads. A request must arrive whole within request_timeout (a kept-alive connection
// idle that long is closed); heads over max_header_bytes are a 431 and bodies over
// max_body_bytes a 413 however they are sent (Content-Length or chunked); connections beyond
// max_connections are closed on accept; stop() drops every connection at once. Binds 127.0.0.1
// by default; with an empty token (open_loopback) only a loopback address.
//
//   halo::HttpServer http({.port = 9464, .token = "s3cret"}, engine, &executor, &*loop);
//   http.start();   // serves on its own threads until stop() or destruction
#pragma once

#include <memory>

#include "halo/engine.hpp"
#include "halo/http/handler.hpp"
#include "halo/triggers.hpp"
#include "octo/executor.hpp"

namespace halo {

class HttpServer {
 public:
  // `executor` and `triggers` may be null. All must outlive the server. Throws
  // std::invalid_argument on a bad config (see HttpHandler, and a port outside 0..65535).
  HttpServer(HttpConfig config, Engine& engine, const octo::Executor* executor = nullptr,
             Triggers* triggers = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving; throws std::runtime_error naming host and port when binding fails,
  // std::invalid_argument when an open (tokenless) server is asked to bind a non-loopback host.
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

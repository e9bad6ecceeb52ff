// halo/http/handler.hpp — octohalo's HTTP routes as a plain request-in, response-out handler, for
// a service that serves them from its own HTTP server instead of a second port (HttpServer in
// server.hpp is this handler behind Boost.Beast). Nothing here depends on a server library.
//
//   GET  / (or /ui)          the operator console: one HTML page, compiled in (no network)
//   GET  /metrics            Prometheus text (see metrics.hpp)
//   GET  /status             engine, executor and trigger status (JSON)
//   GET  /cycles?limit=N     recent cycles, newest first (JSON, N <= history)
//   GET  /audit?limit=N      newest audit entries, oldest first (JSON)
//   GET  /approvals          pending approvals (JSON)
//   GET  /series?limit=N     the console's charts: one point per sample(), oldest first (JSON)
//   POST /trigger            {"type": "...", "severity": "..."}: the event trigger
//   POST /approve/{id}       approve a pending repair
//   POST /reject/{id}        reject it
//   GET|POST /silences, DELETE /silences/{id}, POST /weak-points/{id}/clear
// Mutating routes (and /silences) need `Authorization: Bearer <token>`, compared in constant time.
// An empty token is refused at construction unless `open_loopback` says the routes may be open
// (HttpServer then binds only to a loopback address). Errors are JSON {"error": "..."}: 400
// malformed bodies, queries or limits, 401 token, 404 routes and ids, 405 methods, 413 bodies
// over max_body_bytes, 415 compressed bodies, 500 an internal error. Every response is valid
// UTF-8. Thread-safe: any number of threads may call check_head() and handle() at once.
//
//   halo::HttpHandler octohalo({.token = "s3cret"}, engine, &executor, &*loop);
//   // in the service's own request handler, for paths it hands to octohalo:
//   halo::HttpRequest req{.method = "GET", .target = "/metrics"};
//   if (auto early = octohalo.check_head(req)) return reply(*early);  // before reading a body
//   halo::HttpResponse res = octohalo.handle(req, body);
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "halo/engine.hpp"
#include "halo/http/history_store.hpp"
#include "halo/http/metrics.hpp"
#include "halo/triggers.hpp"
#include "octo/executor.hpp"

namespace halo {

namespace detail {
class Series;
}

struct HttpConfig {
  std::string host = "127.0.0.1";  // HttpServer only
  int port = 0;                    // HttpServer only; 0: any free port (see HttpServer::port())
  std::string token{};
  // With an empty token the mutating routes are open to anyone who can connect: refused unless
  // this is set, and then HttpServer binds only to a loopback address (127.0.0.0/8, ::1).
  bool open_loopback = false;
  std::size_t max_body_bytes = std::size_t{64} * 1024;
  std::size_t max_header_bytes = std::size_t{16} * 1024;  // HttpServer: request line and headers
  // HttpServer: each connection buffers at most max_header_bytes + max_body_bytes.
  std::size_t max_connections = 512;
  std::chrono::milliseconds request_timeout{10'000};  // HttpServer
  MetricsConfig metrics{};                            // what /metrics exports (metrics.hpp)
  // /cycles and /audit go on into what earlier runs left (history_store.hpp); may be null.
  const HistoryStore* history = nullptr;
};

// A request's head: views valid for the call they are passed to.
struct HttpRequest {
  std::string_view method{};         // "GET", "POST", ...
  std::string_view target{};         // path and query, as sent
  std::string_view authorization{};  // the Authorization header, empty when absent
  std::string_view content_encoding{};
  std::optional<std::uint64_t> content_length{};  // nullopt: none declared (chunked or no body)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body{};
  bool www_authenticate = false;  // a 401: add WWW-Authenticate: Bearer
};

class HttpHandler {
 public:
  // `executor` and `triggers` may be null; all must outlive the handler. Throws
  // std::invalid_argument naming the field on a bad config (an empty token without
  // open_loopback, limits of zero).
  HttpHandler(HttpConfig config, Engine& engine, const octo::Executor* executor = nullptr,
              Triggers* triggers = nullptr);
  ~HttpHandler();
  HttpHandler(const HttpHandler&) = delete;
  HttpHandler& operator=(const HttpHandler&) = delete;

  // The refusal a request gets from its head alone, or nullopt when its body (if any) should be
  // read and the request handled: unknown route 404, wrong method 405, missing or wrong token on
  // a mutating route 401, a declared body over max_body_bytes 413, a compressed body 415.
  std::optional<HttpResponse> check_head(const HttpRequest& head) const noexcept;
  // The answer to a request (check_head is applied first). Never throws: an internal error is
  // a 500.
  HttpResponse handle(const HttpRequest& head, std::string_view body) const noexcept;
  // A JSON error response (valid UTF-8 whatever `message` holds).
  static HttpResponse error(int status, std::string_view message) noexcept;
  // Adds a point to /series (the request and error rate of the triggers' window, cycles and
  // repairs since the last point, open weak points; at most 600 kept). HttpServer calls it once
  // a second; a service serving this handler from its own server calls it likewise. Costs one
  // Engine::status(). Thread-safe.
  void sample() const noexcept;

  const HttpConfig& config() const noexcept { return config_; }

 private:
  HttpResponse add_silence(std::string_view body) const;
  HttpResponse route(const HttpRequest& head, std::string_view path, std::string_view query,
                     std::string_view body) const;

  HttpConfig config_;
  std::unique_ptr<detail::Series> series_;
  std::string expected_authorization_;  // "Bearer <token>"
  Engine& engine_;
  const octo::Executor* executor_;
  Triggers* triggers_;
};

}  // namespace halo

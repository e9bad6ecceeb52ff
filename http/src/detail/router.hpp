// The server's routes, apart from the transport: what a request's head alone decides (before any
// body is read) and the answer to a whole request. The Beast server (server.cpp) and the HTTP
// fuzzer (fuzz/http_fuzzer.cpp) both go through it, so the fuzzer exercises the real handling.
//
//   detail::Router router(config, engine, &executor, &triggers);
//   if (auto early = router.check_head(head)) send(*early);        // 401, 404, 405, 413, 415
//   else send(router.handle(head, body));                          // never throws
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "halo/engine.hpp"
#include "halo/http/server.hpp"
#include "halo/triggers.hpp"
#include "octo/executor.hpp"

namespace halo::detail {

struct RequestHead {
  std::string_view method;         // "GET", "POST", ...
  std::string_view target;         // path and query, as sent
  std::string_view authorization;  // the Authorization header, empty when absent
  std::string_view content_encoding;
  std::optional<std::uint64_t> content_length;  // nullopt: none declared (chunked or no body)
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  bool www_authenticate = false;  // a 401: add WWW-Authenticate: Bearer
};

class Router {
 public:
  Router(const HttpConfig& config, Engine& engine, const octo::Executor* executor,
         Triggers* triggers)
      : config_(config), engine_(engine), executor_(executor), triggers_(triggers) {}

  // The refusal a request gets from its head alone, or nullopt when its body (if any) should be
  // read and the request handled: unknown route 404, wrong method 405, missing or wrong token on
  // a mutating route 401, a declared body over max_body_bytes 413, a compressed body 415.
  std::optional<Response> check_head(const RequestHead& head) const noexcept;
  // The answer to a request that passed check_head. Never throws: an internal error is a 500.
  Response handle(const RequestHead& head, std::string_view body) const noexcept;
  // A JSON error response (valid UTF-8 whatever `message` holds).
  static Response error(int status, std::string_view message) noexcept;

 private:
  // POST /silences.
  Response add_silence(std::string_view body) const;
  Response route(const RequestHead& head, std::string_view path, std::string_view query,
                 std::string_view body) const;

  const HttpConfig& config_;
  Engine& engine_;
  const octo::Executor* executor_;
  Triggers* triggers_;
};

}  // namespace halo::detail

// One HTTP/1.1 POST with a deadline over the whole exchange (resolve, connect, write, read),
// for the notifiers: Boost.Beast on a private io_context, so a slow or silent peer costs the
// calling thread at most `timeout`.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace halo::detail {

struct Url {
  std::string host;
  std::string port = "80";
  std::string target = "/";  // path and query
};

// "http://host[:port][/path]". Throws std::invalid_argument naming the URL otherwise (https,
// no host, a port outside 1..65535).
Url parse_url(std::string_view url);

struct PostResult {
  int status = 0;       // the HTTP status; 0 when no response came
  std::string error{};  // why, when status is 0 or not 2xx (the body's start, for a refusal)
  bool ok() const noexcept { return status >= 200 && status < 300; }
};

PostResult post_json(const Url& url, std::string_view target, std::string body,
                     std::chrono::milliseconds timeout);

}  // namespace halo::detail

// A Beast request parser's head as the handler sees it (views into the parser's message, valid
// while it lives): what the server and the HTTP fuzzer hand to HttpHandler::check_head.
#pragma once

#include <boost/beast/http.hpp>

#include <string_view>

#include "halo/http/handler.hpp"

namespace halo::detail {

inline HttpRequest head_of(
    const boost::beast::http::request_parser<boost::beast::http::string_body>& parser) {
  namespace http = boost::beast::http;
  const auto view = [](boost::beast::string_view s) {
    return std::string_view(s.data(), s.size());
  };
  const auto& req = parser.get();
  HttpRequest head;
  head.method = view(req.method_string());
  head.target = view(req.target());
  head.authorization = view(req[http::field::authorization]);
  head.content_encoding = view(req[http::field::content_encoding]);
  if (const auto n = parser.content_length()) head.content_length = *n;
  return head;
}

}  // namespace halo::detail

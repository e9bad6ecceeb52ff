#include "detail/http_post.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <optional>
#include <stdexcept>

namespace halo::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Url parse_url(std::string_view url) {
  auto bad = [&](const char* why) {
    return std::invalid_argument("halo notifier: url '" + std::string(url) + "' " + why);
  };
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) throw bad("must start with http:// (https is not supported)");
  std::string_view rest = url.substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url u;
  if (slash != std::string_view::npos) u.target = std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) throw bad("must not carry credentials");
  std::string_view host = authority;
  if (authority.starts_with('[')) {  // [::1]:9093
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad("has an unclosed [");
    host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority[0] != ':') throw bad("has text after ]");
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (host.empty()) throw bad("has no host");
  u.host = std::string(host);
  if (authority.size() > 1) {
    const std::string_view digits = authority.substr(1);
    int port = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port < 1 || port > 65535)
      throw bad("has a port outside 1..65535");
    u.port = std::string(digits);
  }
  for (const char c : u.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw bad("has a space or control byte");
  return u;
}

PostResult post_json(const Url& url, std::string_view target, std::string body,
                     std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{http::verb::post, std::string(target), 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, "octohalo");
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{64} *
                    1024);  // only the status matters; a large answer is cut short
  PostResult out;
  auto fail = [&](const char* step, beast::error_code ec) {
    out.error =
        std::string(step) + ": " +
        (ec == beast::error::timeout ? "timed out after " + std::to_string(timeout.count()) + " ms"
                                     : ec.message());
  };
  // One deadline for the whole exchange: the stream's expiry covers connect, write and read;
  // the resolver is cancelled by a timer of its own.
  asio::steady_timer resolve_deadline(ioc, timeout);
  resolve_deadline.async_wait([&](beast::error_code ec) {
    if (!ec) resolver.cancel();
  });
  resolver.async_resolve(
      url.host, url.port, [&](beast::error_code ec, const tcp::resolver::results_type& r) {
        resolve_deadline.cancel();
        if (ec)
          return fail("resolve", ec == asio::error::operation_aborted ? beast::error::timeout : ec);
        stream.expires_after(timeout);
        stream.async_connect(r, [&](beast::error_code ec2, const tcp::endpoint&) {
          if (ec2) return fail("connect", ec2);
          http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
            if (ec3) return fail("write", ec3);
            http::async_read(stream, buffer, parser, [&](beast::error_code ec4, std::size_t) {
              if (ec4 && ec4 != http::error::body_limit) return fail("read", ec4);
              out.status = static_cast<int>(parser.get().result_int());
              if (!out.ok())
                out.error = "HTTP " + std::to_string(out.status) + ": " +
                            parser.get().body().substr(0, 200);
            });
          });
        });
      });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

}  // namespace halo::detail

// HTTP requests from arbitrary bytes, in process, through the server's real parsing (Beast's
// request parser with the server's limits) and its handler: every answer is valid UTF-8 with a
// status the server documents, and nothing throws or crashes. The engine is real (no executor:
// approvals find nothing to approve).
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <limits>
#include <memory>

#include "detail/beast_head.hpp"
#include "halo/engine.hpp"
#include "halo/http/handler.hpp"
#include "halo/utf8.hpp"
#include "octo/clock.hpp"
#include "octo/ticker.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

struct World {
  std::shared_ptr<octo::ManualClock> clock = std::make_shared<octo::ManualClock>();
  octo::Ticker ticker{{.clock = clock, .own_thread = false}};
  halo::SystemState state{clock, &ticker};
  halo::Engine engine{state, halo::EngineConfig{}};
  halo::HttpHandler handler{{.token = "s3cret"}, engine, nullptr, nullptr};
};

void check(const halo::HttpResponse& r) {
  static constexpr int kStatuses[] = {200, 201, 202, 400, 401, 404, 405,
                                      409, 413, 415, 431, 500, 503};
  bool known = false;
  for (const int s : kStatuses) known = known || s == r.status;
  if (!known || !halo::is_valid_utf8(r.body)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World;  // one engine for the process (it has a thread)
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(world->handler.config().max_header_bytes));
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.eager(false);
  beast::error_code ec;
  const char* p = reinterpret_cast<const char*>(data);
  std::size_t left = size;
  // The head first, as the server reads it; the handler may refuse from it alone.
  while (left > 0 && !parser.is_header_done()) {
    const std::size_t used = parser.put(boost::asio::buffer(p, left), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;  // the server answers 400/431 without the handler
    p += used;
    left -= used;
    if (used == 0) break;
  }
  if (!parser.is_header_done()) return 0;
  const halo::HttpRequest head = halo::detail::head_of(parser);
  if (auto early = world->handler.check_head(head)) return check(*early), 0;
  parser.body_limit(world->handler.config().max_body_bytes);
  parser.eager(true);
  while (left > 0 && !parser.is_done()) {
    const std::size_t used = parser.put(boost::asio::buffer(p, left), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;  // 413 or 400 from the transport
    p += used;
    left -= used;
    if (used == 0) break;
  }
  if (parser.need_eof()) parser.put_eof(ec);
  if (!parser.is_done() || ec) return 0;
  check(world->handler.handle(head, parser.get().body()));
  return 0;
}

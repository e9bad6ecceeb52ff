#include "halo/http/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "detail/beast_head.hpp"
#include "octo/detail/thread_name.hpp"

namespace halo {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One connection: read a head (bounded in size and time), let the handler refuse it before any
// body is read, read the body (bounded however it is encoded), answer, repeat while kept alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpConfig& config, const HttpHandler& handler,
          std::atomic<std::size_t>& open)
      : stream_(std::move(socket)), config_(config), handler_(handler), open_(open) {}
  ~Session() { open_.fetch_sub(1, std::memory_order_relaxed); }

  void start() { read_head(); }
  // Closes the connection from any thread (on the session's strand): what stop() does to each.
  void shut() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  void read_head() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
    // No body limit while the head is read: a declared length over it is the handler's 413, but
    // only after the route and the token (an unknown route is a 404 whatever its body). The
    // largest value, not boost::none: Beast 1.74 compares a declared length with an empty limit
    // as "over it".
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    // The whole request (head and body) must arrive within request_timeout; a connection kept
    // alive with no request for that long is closed too.
    stream_.expires_after(config_.request_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_head(ec); });
  }

  void on_head(beast::error_code ec) {
    if (ec) return fail_read(ec);
    head_ = detail::head_of(*parser_);
    if (auto early = handler_.check_head(head_)) return send(std::move(*early), false);
    if (parser_->is_done()) return answer();
    parser_->body_limit(config_.max_body_bytes);  // chunked bodies: counted as they arrive
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec2, std::size_t) {
                       if (ec2) return self->fail_read(ec2);
                       self->answer();
                     });
  }

  void answer() {
    const auto& req = parser_->get();
    send(handler_.handle(head_, req.body()), req.keep_alive());
  }

  void fail_read(beast::error_code ec) {
    if (ec == http::error::body_limit)
      return send(HttpHandler::error(
                      413, "body larger than " + std::to_string(config_.max_body_bytes) + " bytes"),
                  false);
    if (ec == http::error::header_limit)
      return send(HttpHandler::error(431, "request head larger than " +
                                              std::to_string(config_.max_header_bytes) + " bytes"),
                  false);
    if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
      return close();
    // Anything else is a request that is not HTTP/1.x: answer 400 and close.
    send(HttpHandler::error(400, "malformed request: " + ec.message()), false);
  }

  void send(HttpResponse r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), 11);
    res->set(http::field::content_type, r.content_type);
    if (r.www_authenticate) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(config_.request_timeout);
    http::async_write(
        stream_, *res,
        [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
          if (ec || !keep_alive) return self->close();
          self->read_head();
        });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  const HttpConfig& config_;
  const HttpHandler& handler_;
  std::atomic<std::size_t>& open_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest head_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(HttpConfig c, Engine& e, const octo::Executor* x, Triggers* t)
      : handler(std::move(c), e, x, t), config(handler.config()) {}

  void accept() {
    acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
        return accept();  // a failed accept (out of descriptors, say) does not stop the server
      }
      if (open.load(std::memory_order_relaxed) >= config.max_connections) {
        // Over the cap: closed at once, so idle clients cannot hold every slot for long and the
        // server's memory stays bounded.
        beast::error_code ignored;
        s.close(ignored);
      } else {
        open.fetch_add(1, std::memory_order_relaxed);
        auto session = std::make_shared<Session>(std::move(s), config, handler, open);
        {
          // Under the lock stop() closes sessions with: one accepted as it runs is closed too.
          std::lock_guard lock(sessions_mu);
          if (stopping) return;
          std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
          sessions.push_back(session);
        }
        session->start();
      }
      accept();
    });
  }

  // The console's series: one point a second, on the server's own threads.
  void sample_every_second() {
    sampler->expires_after(std::chrono::seconds(1));
    sampler->async_wait([this](beast::error_code ec) {
      if (ec) return;  // cancelled by stop()
      handler.sample();
      sample_every_second();
    });
  }

  HttpHandler handler;  // validates the config
  const HttpConfig& config;
  asio::io_context ioc{kThreads};
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> sampler;
  std::atomic<std::size_t> open{0};
  std::mutex sessions_mu;  // sessions
  std::vector<std::weak_ptr<Session>> sessions;
  bool stopping = false;  // under sessions_mu
  std::vector<std::thread> threads;
  static constexpr int kThreads = 2;
};

HttpServer::HttpServer(HttpConfig config, Engine& engine, const octo::Executor* executor,
                       Triggers* triggers)
    : impl_(std::make_unique<Impl>(std::move(config), engine, executor, triggers)) {
  const auto& c = impl_->config;
  if (c.port < 0 || c.port > 65535)
    throw std::invalid_argument("halo::HttpConfig: port " + std::to_string(c.port) +
                                " is not in 0..65535");
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  if (!impl_->threads.empty()) return;
  auto& im = *impl_;
  const auto& c = im.config;
  beast::error_code ec;
  const auto address = asio::ip::make_address(c.host, ec);
  if (ec)
    throw std::runtime_error("halo::HttpServer: cannot bind " + c.host + ":" +
                             std::to_string(c.port) + ": not an IP address");
  if (c.token.empty() && !address.is_loopback())
    throw std::invalid_argument(
        "halo::HttpServer: open_loopback serves the mutating routes "
        "without a token, so it binds only to loopback, not " +
        c.host);
  im.ioc.restart();
  im.stopping = false;
  im.acceptor.emplace(im.ioc);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(c.port));
  im.acceptor->open(endpoint.protocol(), ec);
  if (!ec) im.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor->bind(endpoint, ec);
  if (!ec) im.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    im.acceptor.reset();
    throw std::runtime_error("halo::HttpServer: cannot bind " + c.host + ":" +
                             std::to_string(c.port) + ": " + ec.message());
  }
  port_ = im.acceptor->local_endpoint().port();
  im.accept();
  im.handler.sample();
  im.sampler.emplace(im.ioc);
  im.sample_every_second();
  for (int i = 0; i < Impl::kThreads; ++i)
    im.threads.emplace_back([&im] {
      octo::detail::name_this_thread("halo-http");
      for (;;) {
        try {
          im.ioc.run();
          return;
        } catch (...) {  // a handler threw (out of memory): keep serving
        }
      }
    });
}

void HttpServer::stop() {
  auto& im = *impl_;
  if (im.threads.empty()) return;
  // Close the acceptor and every connection (idle and half-sent ones included); their pending
  // operations end with operation_aborted, nothing new starts, and the loop runs out of work.
  asio::post(im.ioc, [&im] {
    beast::error_code ignored;
    if (im.acceptor) im.acceptor->close(ignored);
    if (im.sampler) im.sampler->cancel();
    std::lock_guard lock(im.sessions_mu);
    im.stopping = true;
    for (auto& w : im.sessions)
      if (auto s = w.lock()) s->shut();
    im.sessions.clear();
  });
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  im.acceptor.reset();
  im.sampler.reset();
}

}  // namespace halo

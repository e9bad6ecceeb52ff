#include "halo/http/server.hpp"

#include <httplib.h>

#include <atomic>
#include <charconv>
#include <stdexcept>
#include <utility>

#include "halo/http/json.hpp"
#include "halo/http/metrics.hpp"

namespace halo {

namespace {

// Every string in a response is made valid UTF-8 (invalid bytes become U+FFFD) rather than
// letting the JSON library throw on a byte that came from outside.
void reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void error(httplib::Response& res, int status, const std::string& message) {
  reply(res, status, {{"error", message}});
}

// Parses ?limit=N (1..max); writes a 400 and returns false on anything else.
bool parse_limit(const httplib::Request& req, httplib::Response& res, std::size_t fallback,
                 std::size_t max, std::size_t& out) {
  out = fallback;
  if (!req.has_param("limit")) return true;
  const std::string v = req.get_param_value("limit");
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n == 0 || n > max) {
    error(res, 400,
          "limit must be an integer from 1 to " + std::to_string(max) + ", got '" + v + "'");
    return false;
  }
  out = n;
  return true;
}

bool parse_id(const std::string& text, std::uint64_t& id) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

struct HttpServer::Impl {
  Impl(HttpConfig c, Engine& e, const octo::Executor* x, Triggers* t)
      : config(std::move(c)), engine(e), executor(x), triggers(t) {}

  HttpConfig config;
  Engine& engine;
  const octo::Executor* executor;
  Triggers* triggers;
  httplib::Server server;
  std::atomic<bool> listener_done{false};

  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    if (config.token.empty()) return true;
    if (req.get_header_value("Authorization") == "Bearer " + config.token) return true;
    res.set_header("WWW-Authenticate", "Bearer");
    error(res, 401, "missing or wrong bearer token");
    return false;
  }

  void routes() {
    server.set_payload_max_length(config.max_body_bytes);
    // Neither handler may throw: an exception leaving them would end the process.
    server.set_error_handler([this](const httplib::Request&, httplib::Response& res) noexcept {
      try {
        if (!res.body.empty()) return;
        if (res.status == 413)
          error(res, 413, "body larger than " + std::to_string(config.max_body_bytes) + " bytes");
        else
          error(res, res.status, res.status == 404 ? "no such route" : "request failed");
      } catch (...) {  // out of memory: the status goes out without a body
      }
    });
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) noexcept {
          try {
            std::string what = "internal error";
            try {
              std::rethrow_exception(std::move(ep));
            } catch (const std::exception& e) {
              what = e.what();
            } catch (...) {
            }
            error(res, 500, what);
          } catch (...) {
            res.status = 500;
          }
        });

    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(prometheus_text(&engine, executor, triggers),
                      "text/plain; version=0.0.4; charset=utf-8");
    });
    server.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
      nlohmann::json j = {{"engine", to_json(engine.status())}};
      if (executor != nullptr) j["executor"] = to_json(executor->status());
      if (triggers != nullptr) j["triggers"] = to_json(triggers->status());
      reply(res, 200, j);
    });
    server.Get("/cycles", [this](const httplib::Request& req, httplib::Response& res) {
      std::size_t limit = 0;
      if (!parse_limit(req, res, 20, 1000, limit)) return;
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& c : engine.history(limit)) arr.push_back(to_json(*c));
      reply(res, 200, arr);
    });
    server.Get("/audit", [this](const httplib::Request& req, httplib::Response& res) {
      std::size_t limit = 0;
      if (!parse_limit(req, res, 100, 100'000, limit)) return;
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& e : engine.audit().entries(limit)) arr.push_back(to_json(e));
      reply(res, 200, arr);
    });
    server.Post("/trigger", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      if (triggers == nullptr) return error(res, 503, "no triggers registered");
      const auto body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded() || !body.is_object())
        return error(res, 400, "body must be a JSON object {\"type\", \"severity\"}");
      const auto type = body.find("type");
      const auto severity = body.find("severity");
      if (type == body.end() || !type->is_string() || severity == body.end() ||
          !severity->is_string())
        return error(res, 400, "\"type\" and \"severity\" must be strings");
      try {
        const auto outcome =
            triggers->trigger_from_event(type->get<std::string>(), severity->get<std::string>());
        reply(res, outcome == EventOutcome::kFired ? 202 : 200, {{"outcome", to_string(outcome)}});
      } catch (const std::invalid_argument& e) {
        error(res, 400, e.what());
      }
    });
    auto decide = [this](bool approve) {
      return [this, approve](const httplib::Request& req, httplib::Response& res) {
        if (!authorized(req, res)) return;
        std::uint64_t id = 0;
        if (!parse_id(req.matches[1], id)) return error(res, 404, "unknown approval id");
        const auto outcome = approve ? engine.approve(id) : engine.reject(id, "rejected over HTTP");
        if (outcome == ApprovalOutcome::kUnknownId)
          return error(res, 404, "unknown approval id " + std::to_string(id));
        reply(res, outcome == ApprovalOutcome::kDispatchFailed ? 409 : 200,
              {{"id", id}, {"outcome", to_string(outcome)}});
      };
    };
    server.Post(R"(/approve/(\d+))", decide(true));
    server.Post(R"(/reject/(\d+))", decide(false));
  }
};

HttpServer::HttpServer(HttpConfig config, Engine& engine, const octo::Executor* executor,
                       Triggers* triggers)
    : impl_(std::make_unique<Impl>(std::move(config), engine, executor, triggers)) {
  if (impl_->config.port < 0 || impl_->config.port > 65535)
    throw std::invalid_argument("halo::HttpConfig: port " + std::to_string(impl_->config.port) +
                                " is not in 0..65535");
  if (impl_->config.max_body_bytes == 0)
    throw std::invalid_argument("halo::HttpConfig: max_body_bytes must be at least 1");
  impl_->routes();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  if (thread_.joinable()) return;
  auto& s = impl_->server;
  const auto& c = impl_->config;
  if (c.port == 0) {
    port_ = s.bind_to_any_port(c.host);
    if (port_ < 0) port_ = 0;
  } else if (s.bind_to_port(c.host, c.port)) {
    port_ = c.port;
  }
  if (port_ == 0)
    throw std::runtime_error("halo::HttpServer: cannot bind " + c.host + ":" +
                             std::to_string(c.port));
  impl_->listener_done = false;
  thread_ = std::thread([this, &s] {
    s.listen_after_bind();
    impl_->listener_done = true;
  });
  // stop() before the listener has started would be lost (cpp-httplib only stops a running
  // server), so start() returns once it runs: a short, bounded wait for the thread's first steps.
  while (!s.is_running() && !impl_->listener_done.load()) std::this_thread::yield();
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  impl_->server.stop();
  thread_.join();
}

}  // namespace halo

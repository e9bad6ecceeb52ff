#include "detail/router.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "halo/http/json.hpp"
#include "halo/http/metrics.hpp"

namespace halo::detail {

namespace {

// Every string in a response is made valid UTF-8 (invalid bytes become U+FFFD) rather than
// letting the JSON library throw on a byte that came from outside.
Response json(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

enum class Method { kGet, kPost };

struct Route {
  std::string_view path;  // exact, or a prefix ending in '/' followed by a decimal id
  Method method;
  bool with_id;
  bool mutating;
};

constexpr Route kRoutes[] = {
    {"/metrics", Method::kGet, false, false}, {"/status", Method::kGet, false, false},
    {"/cycles", Method::kGet, false, false},  {"/audit", Method::kGet, false, false},
    {"/trigger", Method::kPost, false, true}, {"/approve/", Method::kPost, true, true},
    {"/reject/", Method::kPost, true, true},
};

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

const Route* find_route(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (!r.with_id && path == r.path) return &r;
    if (r.with_id && path.size() > r.path.size() && path.starts_with(r.path)) return &r;
  }
  return nullptr;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The decoded value of `name` in a query string ("a=1&limit=20"); nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    const std::string_view raw = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
        out += static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
        i += 2;
      } else {
        out += raw[i] == '+' ? ' ' : raw[i];
      }
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace

Response Router::error(int status, std::string_view message) noexcept {
  try {
    return json(status, {{"error", std::string(message)}});
  } catch (...) {  // out of memory: the status alone
    Response r;
    r.status = status;
    return r;
  }
}

std::optional<Response> Router::check_head(const RequestHead& head) const noexcept {
  const Route* r = find_route(path_of(head.target));
  if (r == nullptr) return error(404, "no such route");
  const Method m = head.method == "GET"    ? Method::kGet
                   : head.method == "POST" ? Method::kPost
                                           : static_cast<Method>(-1);
  if (m != r->method)
    return error(405, std::string("use ") + (r->method == Method::kGet ? "GET" : "POST") + " on " +
                          std::string(r->path));
  if (r->mutating && !config_.token.empty() && head.authorization != "Bearer " + config_.token) {
    Response res = error(401, "missing or wrong bearer token");
    res.www_authenticate = true;
    return res;
  }
  if (head.content_length && *head.content_length > config_.max_body_bytes)
    return error(413, "body larger than " + std::to_string(config_.max_body_bytes) + " bytes");
  if (!head.content_encoding.empty() && head.content_encoding != "identity")
    return error(415, "bodies must not be compressed (Content-Encoding '" +
                          std::string(head.content_encoding) + "')");
  return std::nullopt;
}

Response Router::handle(const RequestHead& head, std::string_view body) const noexcept {
  try {
    if (auto early = check_head(head)) return *early;
    const std::string_view path = path_of(head.target);
    const auto q = head.target.find('?');
    const std::string_view query =
        q == std::string_view::npos ? std::string_view() : head.target.substr(q + 1);
    return route(head, path, query, body);
  } catch (const std::exception& e) {
    return error(500, e.what());
  } catch (...) {
    return error(500, "internal error");
  }
}

Response Router::route(const RequestHead&, std::string_view path, std::string_view query,
                       std::string_view body) const {
  // ?limit=N (1..max) or the fallback; a 400 naming the range on anything else.
  auto limit = [&](std::size_t fallback, std::size_t max,
                   std::optional<Response>& bad) -> std::size_t {
    const auto v = query_param(query, "limit");
    if (!v) return fallback;
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n == 0 || n > max)
      bad = error(
          400, "limit must be an integer from 1 to " + std::to_string(max) + ", got '" + *v + "'");
    return n;
  };
  if (path == "/metrics") {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = prometheus_text(&engine_, executor_, triggers_);
    return r;
  }
  if (path == "/status") {
    nlohmann::json j = {{"engine", to_json(engine_.status())}};
    if (executor_ != nullptr) j["executor"] = to_json(executor_->status());
    if (triggers_ != nullptr) j["triggers"] = to_json(triggers_->status());
    return json(200, j);
  }
  if (path == "/cycles" || path == "/audit") {
    std::optional<Response> bad;
    const bool cycles = path == "/cycles";
    const std::size_t n = cycles ? limit(20, 1000, bad) : limit(100, 100'000, bad);
    if (bad) return *bad;
    nlohmann::json arr = nlohmann::json::array();
    if (cycles) {
      for (const auto& c : engine_.history(n)) arr.push_back(to_json(*c));
    } else {
      for (const auto& e : engine_.audit().entries(n)) arr.push_back(to_json(e));
    }
    return json(200, arr);
  }
  if (path == "/trigger") {
    if (triggers_ == nullptr) return error(503, "no triggers registered");
    const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return error(400, "body must be a JSON object {\"type\", \"severity\"}");
    const auto type = j.find("type");
    const auto severity = j.find("severity");
    if (type == j.end() || !type->is_string() || severity == j.end() || !severity->is_string())
      return error(400, "\"type\" and \"severity\" must be strings");
    try {
      const auto outcome =
          triggers_->trigger_from_event(type->get<std::string>(), severity->get<std::string>());
      return json(outcome == EventOutcome::kFired ? 202 : 200, {{"outcome", to_string(outcome)}});
    } catch (const std::invalid_argument& e) {
      return error(400, e.what());
    }
  }
  // /approve/{id} and /reject/{id}
  const bool approve = path.starts_with("/approve/");
  const std::string_view text = path.substr(approve ? 9 : 8);
  std::uint64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size())
    return error(404, "unknown approval id");
  const auto outcome = approve ? engine_.approve(id) : engine_.reject(id, "rejected over HTTP");
  if (outcome == ApprovalOutcome::kUnknownId)
    return error(404, "unknown approval id " + std::to_string(id));
  return json(outcome == ApprovalOutcome::kDispatchFailed ? 409 : 200,
              {{"id", id}, {"outcome", to_string(outcome)}});
}

}  // namespace halo::detail

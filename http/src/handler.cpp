#include "halo/http/handler.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "detail/console_page.hpp"
#include "detail/series.hpp"
#include "halo/http/json.hpp"
#include "halo/http/metrics.hpp"

namespace halo {

namespace {

// Every string in a response is made valid UTF-8 (invalid bytes become U+FFFD) rather than
// letting the JSON library throw on a byte that came from outside.
HttpResponse json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

enum class Method { kGet, kPost, kDelete };

std::string_view method_name(Method m) {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kPost:
      return "POST";
    case Method::kDelete:
      return "DELETE";
  }
  return "?";
}

struct Route {
  // Exact, or (with_id) a prefix ending in '/', an id, then `suffix`.
  std::string_view path;
  Method method;
  bool with_id;
  bool mutating;  // the bearer token is required
  std::string_view suffix = {};
};

constexpr Route kRoutes[] = {
    {"/", Method::kGet, false, false},
    {"/ui", Method::kGet, false, false},
    {"/approvals", Method::kGet, false, false},
    {"/series", Method::kGet, false, false},
    {"/metrics", Method::kGet, false, false},
    {"/status", Method::kGet, false, false},
    {"/cycles", Method::kGet, false, false},
    {"/audit", Method::kGet, false, false},
    {"/trigger", Method::kPost, false, true},
    {"/approve/", Method::kPost, true, true},
    {"/reject/", Method::kPost, true, true},
    {"/silences", Method::kGet, false, true},
    {"/silences", Method::kPost, false, true},
    {"/silences/", Method::kDelete, true, true},
    {"/weak-points/", Method::kPost, true, true, "/clear"},
};

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

bool matches(const Route& r, std::string_view path) {
  if (!r.with_id) return path == r.path;
  return path.size() > r.path.size() + r.suffix.size() && path.starts_with(r.path) &&
         path.ends_with(r.suffix);
}

std::optional<Method> parse_method(std::string_view m) {
  if (m == "GET") return Method::kGet;
  if (m == "POST") return Method::kPost;
  if (m == "DELETE") return Method::kDelete;
  return std::nullopt;
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

// Compares every byte whatever the first difference, so the time taken does not tell an
// attacker how much of a guessed token was right (the length is not secret).
bool same_secret(std::string_view given, std::string_view expected) noexcept {
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  // The volatile read keeps the compiler from turning the loop back into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

}  // namespace

HttpHandler::HttpHandler(HttpConfig config, Engine& engine, const octo::Executor* executor,
                         Triggers* triggers)
    : config_(std::move(config)),
      series_(std::make_unique<detail::Series>()),
      expected_authorization_("Bearer " + config_.token),
      engine_(engine),
      executor_(executor),
      triggers_(triggers) {
  const auto& c = config_;
  if (c.token.empty() && !c.open_loopback)
    throw std::invalid_argument(
        "halo::HttpConfig: token is empty, which leaves approve, reject, trigger, silences and "
        "clear open to anyone; set a token, or set open_loopback to serve them open on loopback");
  if (c.token.find_first_of("\r\n") != std::string::npos)
    throw std::invalid_argument("halo::HttpConfig: token must not contain CR or LF");
  if (c.max_body_bytes == 0)
    throw std::invalid_argument("halo::HttpConfig: max_body_bytes must be at least 1");
  if (c.max_header_bytes < 512 || c.max_header_bytes > std::size_t{1024} * 1024)
    throw std::invalid_argument("halo::HttpConfig: max_header_bytes " +
                                std::to_string(c.max_header_bytes) + " is not in 512..1048576");
  if (c.max_connections == 0)
    throw std::invalid_argument("halo::HttpConfig: max_connections must be at least 1");
  if (c.request_timeout.count() <= 0)
    throw std::invalid_argument("halo::HttpConfig: request_timeout must be positive");
}

HttpHandler::~HttpHandler() = default;

void HttpHandler::sample() const noexcept {
  try {
    const EngineStatus es = engine_.status();
    double rps = 0, error_rate = 0;
    if (triggers_ != nullptr) {
      const TriggersStatus ts = triggers_->status();
      const double seconds = std::chrono::duration<double>(ts.window).count();
      rps = seconds > 0 ? static_cast<double>(ts.window_requests) / seconds : 0;
      error_rate = ts.error_rate;
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    series_->add(now.count(), rps, error_rate, es.cycles, es.repairs_dispatched,
                 es.open_weak_points);
  } catch (...) {  // out of memory: this point is skipped
  }
}

HttpResponse HttpHandler::error(int status, std::string_view message) noexcept {
  try {
    return json(status, {{"error", std::string(message)}});
  } catch (...) {  // out of memory: the status alone
    HttpResponse r;
    r.status = status;
    return r;
  }
}

std::optional<HttpResponse> HttpHandler::check_head(const HttpRequest& head) const noexcept {
  const std::string_view path = path_of(head.target);
  const auto m = parse_method(head.method);
  const Route* r = nullptr;
  std::string allowed;
  for (const Route& c : kRoutes) {
    if (!matches(c, path)) continue;
    if (m && c.method == *m) {
      r = &c;
      break;
    }
    if (!allowed.empty()) allowed += " or ";
    allowed += method_name(c.method);
  }
  if (r == nullptr && allowed.empty()) return error(404, "no such route");
  if (r == nullptr) return error(405, "use " + allowed + " on " + std::string(path));
  if (r->mutating && !config_.token.empty() &&
      !same_secret(head.authorization, expected_authorization_)) {
    HttpResponse res = error(401, "missing or wrong bearer token");
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

HttpResponse HttpHandler::handle(const HttpRequest& head, std::string_view body) const noexcept {
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

HttpResponse HttpHandler::add_silence(std::string_view body) const {
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return error(400,
                 "body must be a JSON object {\"subject_type\", \"subject_id\", \"task_type\", "
                 "\"duration_s\", \"starts_in_s\", \"reason\", \"author\", \"fleet\"}");
  Silence s;
  for (auto [field, to] :
       {std::pair{"subject_type", &s.match.subject_type},
        std::pair{"subject_id", &s.match.subject_id}, std::pair{"task_type", &s.match.task_type},
        std::pair{"reason", &s.reason}, std::pair{"author", &s.author}}) {
    const auto it = j.find(field);
    if (it == j.end()) continue;
    if (!it->is_string()) return error(400, std::string("\"") + field + "\" must be a string");
    *to = it->get<std::string>();
  }
  auto seconds = [&](const char* field, double fallback, double min) -> std::optional<double> {
    const auto it = j.find(field);
    if (it == j.end()) return fallback;
    if (!it->is_number()) return std::nullopt;
    const double v = it->get<double>();
    if (!(v >= min) || v > 366.0 * 24 * 3600) return std::nullopt;
    return v;
  };
  if (const auto it = j.find("fleet"); it != j.end()) {
    if (!it->is_boolean()) return error(400, "\"fleet\" must be true or false");
    s.fleet = it->get<bool>();
  }
  const auto duration = seconds("duration_s", 0, 0.001);
  const auto starts_in = seconds("starts_in_s", 0, 0);
  if (!duration || j.find("duration_s") == j.end())
    return error(400, "\"duration_s\" must be a number of seconds from 0.001 to a year");
  if (!starts_in) return error(400, "\"starts_in_s\" must be a number of seconds from 0 to a year");
  if (s.reason.empty()) return error(400, "\"reason\" must be a non-empty string");
  const auto now = engine_.state().now();
  auto ns = [](double secs) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(secs));
  };
  s.from = now + ns(*starts_in);
  s.until = s.from + ns(*duration);
  std::uint64_t id = 0;
  try {
    id = engine_.silence(s);
  } catch (const std::invalid_argument& e) {
    return error(400, e.what());
  }
  s.id = id;
  return json(201, to_json(s, now));
}

HttpResponse HttpHandler::route(const HttpRequest& head, std::string_view path,
                                std::string_view query, std::string_view body) const {
  // ?limit=N (1..max) or the fallback; a 400 naming the range on anything else.
  auto limit = [&](std::size_t fallback, std::size_t max,
                   std::optional<HttpResponse>& bad) -> std::size_t {
    const auto v = query_param(query, "limit");
    if (!v) return fallback;
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n == 0 || n > max)
      bad = error(
          400, "limit must be an integer from 1 to " + std::to_string(max) + ", got '" + *v + "'");
    return n;
  };
  if (path == "/" || path == "/ui") {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(detail::console_page());
    return r;
  }
  if (path == "/approvals") {
    nlohmann::json arr = nlohmann::json::array();
    const auto now = engine_.state().now();
    for (const auto& p : engine_.pending_approvals()) {
      arr.push_back(
          {{"id", p.id},
           {"cycle_id", p.cycle_id},
           {"weak_point", p.planned.weak_point},
           {"subject_type", p.planned.subject_type},
           {"subject_id", p.planned.task.payload},
           {"strategy", p.planned.strategy},
           {"task_type", p.planned.task.type},
           {"expires_in_s",
            p.expires_at == std::chrono::nanoseconds::max()
                ? nlohmann::json(nullptr)
                : nlohmann::json(std::chrono::duration<double>(p.expires_at - now).count())}});
    }
    return json(200, arr);
  }
  if (path == "/series") {
    std::optional<HttpResponse> bad;
    const std::size_t n = limit(detail::Series::kMaxPoints, detail::Series::kMaxPoints, bad);
    if (bad) return *bad;
    nlohmann::json points = nlohmann::json::array();
    for (const auto& p : series_->last(n)) {
      points.push_back({{"t_ms", p.t_ms},
                        {"requests_per_s", p.requests_per_s},
                        {"error_rate", p.error_rate},
                        {"cycles", p.cycles},
                        {"repairs", p.repairs},
                        {"open_weak_points", p.open_weak_points}});
    }
    return json(200, {{"points", std::move(points)}});
  }
  if (path == "/metrics") {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = prometheus_text(&engine_, executor_, triggers_, config_.metrics);
    return r;
  }
  if (path == "/status") {
    nlohmann::json j = {{"engine", to_json(engine_.status())}};
    if (executor_ != nullptr) j["executor"] = to_json(executor_->status());
    if (triggers_ != nullptr) j["triggers"] = to_json(triggers_->status());
    return json(200, j);
  }
  if (path == "/cycles" || path == "/audit") {
    std::optional<HttpResponse> bad;
    const bool cycles = path == "/cycles";
    const std::size_t n = cycles ? limit(20, 1000, bad) : limit(100, 100'000, bad);
    if (bad) return *bad;
    nlohmann::json arr = nlohmann::json::array();
    const HistoryStore* store = config_.history;
    if (cycles) {
      for (const auto& c : engine_.history(n)) arr.push_back(to_json(*c));
      // Then earlier runs' cycles, newest first.
      if (store != nullptr && arr.size() < n)
        for (auto& c : store->restored_cycles(n - arr.size())) arr.push_back(std::move(c));
    } else {
      const auto entries = engine_.audit().entries(n);
      // Earlier runs' entries first (oldest first overall), marked "restored".
      if (store != nullptr && entries.size() < n)
        for (auto& e : store->restored_audit(n - entries.size())) arr.push_back(std::move(e));
      for (const auto& e : entries) arr.push_back(to_json(e));
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
  if (path == "/silences" && head.method == "GET") {
    nlohmann::json arr = nlohmann::json::array();
    const auto now = engine_.state().now();
    for (const auto& sil : engine_.silences()) arr.push_back(to_json(sil, now));
    return json(200, arr);
  }
  if (path == "/silences") return add_silence(body);
  if (path.starts_with("/silences/")) {
    const std::string_view text = path.substr(std::string_view("/silences/").size());
    std::uint64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size() || !engine_.unsilence(id))
      return error(404, "no active silence " + std::string(text));
    return json(200, {{"id", id}, {"ended", true}});
  }
  if (path.starts_with("/weak-points/")) {
    constexpr std::string_view kPrefix = "/weak-points/", kSuffix = "/clear";
    const std::string id(
        path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size()));
    if (!engine_.clear(id))
      return error(404, "weak point " + id + " is neither escalated nor flapping");
    return json(200, {{"weak_point", id}, {"cleared", true}});
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

}  // namespace halo

#include "halo/redis_fleet.hpp"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <deque>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "detail/silence_codec.hpp"

namespace halo {

namespace {

// Round trip 1. ARGV: prefix, instance, verdict_ttl_ms, lease_ttl_ms, n, n x (subject, 0|1),
// m, m x (subject, token). A verdict is stored as "<0|1><expiry_ms>:<prev>:<fence>": the
// subject's fencing token now and at this instance's previous sync ("-" when none is live). Returns
// {peers, views (3 per verdict: reporters, unhealthy, holder), renewed (1 per lease), silences
// (hash values)}.
constexpr std::string_view kSyncScript = R"lua(
local p, inst = ARGV[1], ARGV[2]
local vttl, lttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', p .. 'peers', now + vttl, inst)
redis.call('ZREMRANGEBYSCORE', p .. 'peers', '-inf', now)
local peers = redis.call('ZRANGE', p .. 'peers', 0, -1)
local i = 5
local n = tonumber(ARGV[i]); i = i + 1
local views = {}
for k = 1, n do
  local s, u = ARGV[i], ARGV[i + 1]; i = i + 2
  local key = p .. 'v:' .. s
  local all = redis.call('HGETALL', key)
  local prev = '-'
  local rep, bad = 1, 0  -- this instance's verdict counts (written below)
  if u == '1' then bad = 1 end
  for j = 1, #all, 2 do
    local f, v = all[j], all[j + 1]
    if f == inst then
      prev = string.match(v, ':(%d+)$') or '-'
    elseif (tonumber(string.match(v, '^.(%d+)')) or 0) > now then
      rep = rep + 1
      if string.sub(v, 1, 1) == '1' then bad = bad + 1 end
    else
      redis.call('HDEL', key, f)
    end
  end
  local fence = redis.call('GET', p .. 'fence:' .. s) or '0'
  redis.call('HSET', key, inst, u .. (now + vttl) .. ':' .. prev .. ':' .. fence)
  redis.call('PEXPIRE', key, vttl)
  local holder = ''
  if bad > 0 then
    local l = redis.call('GET', p .. 'lease:' .. s)
    if l then
      local sp = string.find(l, ' ', 1, true)
      if sp then holder = string.sub(l, sp + 1) end
    end
  end
  views[#views + 1] = rep
  views[#views + 1] = bad
  views[#views + 1] = holder
end
local m = tonumber(ARGV[i]); i = i + 1
local renewed = {}
for k = 1, m do
  local s, tok = ARGV[i], ARGV[i + 1]; i = i + 2
  local key = p .. 'lease:' .. s
  if redis.call('GET', key) == tok .. ' ' .. inst then
    redis.call('PEXPIRE', key, lttl)
    renewed[k] = 1
  else
    renewed[k] = 0
  end
end
local sil = redis.call('HGETALL', p .. 'silences')
local live = {}
for j = 1, #sil, 2 do
  local v = sil[j + 1]
  local f = {}
  for part in string.gmatch(v, '([^\31]*)\31?') do f[#f + 1] = part end
  if (tonumber(f[5]) or 0) > now then
    live[#live + 1] = sil[j]
    live[#live + 1] = v
  else
    redis.call('HDEL', p .. 'silences', sil[j])
  end
end
return {peers, views, renewed, live}
)lua";

// Round trip 2. ARGV: prefix, instance, lease_ttl_ms, max_repairs, budget_ms, rate (per s),
// burst, breaker_ms, breaker_min, breaker_ratio, n, n x (subject, token, 0|1), m, m x subject.
// Returns {accepted (1 per outcome), claims (2 per claim: code, token or holder)}. An outcome
// is stored as "<token> <0|1> <instance>".
constexpr std::string_view kExchangeScript = R"lua(
local p, inst = ARGV[1], ARGV[2]
local lttl, maxr, budget = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local rate, burst = tonumber(ARGV[6]), tonumber(ARGV[7])
local bwin, bmin, bratio = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local judged = p .. 'judged'
-- Who last repaired s, when a repair was granted since this instance's previous sync (or, with
-- no previous sync, when one ended within the budget window); nil otherwise.
local function stale(s)
  local v = redis.call('HGET', p .. 'v:' .. s, inst)
  local prev = v and tonumber(string.match(v, ':([^:]+):%d+$'))
  local fence = tonumber(redis.call('GET', p .. 'fence:' .. s) or '0')
  local o = redis.call('GET', p .. 'outcome:' .. s)
  local who = o and string.match(o, '^%d+ %d (%S+)') or 'another instance'
  if prev then
    if fence > prev and who ~= inst then return who end
  elseif o and who ~= inst then
    return who
  end
  return nil
end
local i = 11
local n = tonumber(ARGV[i]); i = i + 1
local accepted = {}
for k = 1, n do
  local s, tok, healed = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
  local lease = p .. 'lease:' .. s
  if redis.call('GET', p .. 'fence:' .. s) == tok then
    if redis.call('GET', lease) == tok .. ' ' .. inst then redis.call('DEL', lease) end
    redis.call('SET', p .. 'outcome:' .. s, tok .. ' ' .. healed .. ' ' .. inst, 'PX', budget)
    redis.call('ZADD', judged, now, healed .. ':' .. tok .. ':' .. s)
    redis.call('PEXPIRE', judged, bwin)
    accepted[k] = 1
  else
    accepted[k] = 0
  end
end
local m = tonumber(ARGV[i]); i = i + 1
local claims = {}
if m > 0 then
  redis.call('ZREMRANGEBYSCORE', judged, '-inf', now - bwin)
  local all = redis.call('ZRANGE', judged, 0, -1)
  local failed = 0
  for j = 1, #all do
    if string.sub(all[j], 1, 1) == '0' then failed = failed + 1 end
  end
  local breaker = #all >= bmin and failed > bratio * #all
  local b = redis.call('HMGET', p .. 'bucket', 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
  for k = 1, m do
    local s = ARGV[i]; i = i + 1
    local lease = p .. 'lease:' .. s
    local l = redis.call('GET', lease)
    local sp = l and string.find(l, ' ', 1, true)
    if l and sp and string.sub(l, sp + 1) == inst then
      claims[#claims + 1] = 0
      claims[#claims + 1] = string.sub(l, 1, sp - 1)
    elseif l then
      claims[#claims + 1] = 1
      claims[#claims + 1] = sp and string.sub(l, sp + 1) or l
    elseif stale(s) then
      claims[#claims + 1] = 5
      claims[#claims + 1] = stale(s)
    elseif breaker then
      claims[#claims + 1] = 4
      claims[#claims + 1] = failed .. ' of ' .. #all
    else
      local rk = p .. 'repairs:' .. s
      redis.call('ZREMRANGEBYSCORE', rk, '-inf', now - budget)
      local spent = redis.call('ZCARD', rk)
      if spent >= maxr then
        claims[#claims + 1] = 2
        claims[#claims + 1] = tostring(spent)
      elseif tokens < 1 then
        claims[#claims + 1] = 3
        claims[#claims + 1] = ''
      else
        local tok = redis.call('INCR', p .. 'fence:' .. s)
        redis.call('SET', lease, tok .. ' ' .. inst, 'PX', lttl)
        redis.call('ZADD', rk, now, tok)
        redis.call('PEXPIRE', rk, budget)
        tokens = tokens - 1
        claims[#claims + 1] = 0
        claims[#claims + 1] = tostring(tok)
      end
    end
  end
  redis.call('HSET', p .. 'bucket', 'tokens', tostring(tokens), 'at', now)
  -- The bucket lives as long as a refill takes (capped: PEXPIRE takes an integer).
  local refill = math.ceil(burst / rate * 1000)
  redis.call('PEXPIRE', p .. 'bucket', math.min(1e12, math.max(1000, refill)))
end
return {accepted, claims}
)lua";

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

std::string_view text(const redisReply* r) noexcept {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
               r->type == REDIS_REPLY_ERROR)
             ? std::string_view(r->str, r->len)
             : std::string_view();
}

std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

long long integer(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  return static_cast<long long>(to_u64(text(r)));
}

bool has_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

std::string default_instance() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] ? host : "host") + "-" + std::to_string(::getpid());
}

// The args of one EVAL (binary-safe, stable addresses).
class Args {
 public:
  Args& operator<<(std::string_view s) {
    parts_.emplace_back(s);
    return *this;
  }
  Args& operator<<(long long v) { return *this << std::string_view(std::to_string(v)); }
  // Every digit: std::to_string's six decimals would send a rate of 1e-7 per second as 0.
  Args& operator<<(double v) {
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
    return *this << std::string_view(buf, static_cast<std::size_t>(n));
  }
  const std::deque<std::string>& parts() const noexcept { return parts_; }

 private:
  std::deque<std::string> parts_;
};

}  // namespace

struct RedisFleet::Connection {
  const RedisFleetConfig& config;
  redisContext* ctx = nullptr;
  std::chrono::steady_clock::time_point retry_at{};
  std::chrono::milliseconds backoff{0};
  std::string last_error;
  std::vector<const char*> argv;
  std::vector<std::size_t> len;

  explicit Connection(const RedisFleetConfig& c) : config(c) {}
  ~Connection() { drop(); }
  void drop() noexcept {
    if (ctx != nullptr) redisFree(ctx);
    ctx = nullptr;
  }
  std::string where() const { return config.host + ":" + std::to_string(config.port); }
  void failed(std::string why) {
    drop();
    last_error = std::move(why);
    backoff = std::clamp(backoff * 2, config.reconnect_base, config.reconnect_max);
    retry_at = std::chrono::steady_clock::now() + backoff;
  }
  bool ensure() {
    if (ctx != nullptr) return true;
    if (std::chrono::steady_clock::now() < retry_at) return false;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(config.timeout).count();
    const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
    ctx = redisConnectWithTimeout(config.host.c_str(), config.port, tv);
    if (ctx == nullptr || ctx->err != 0) {
      failed("redis " + where() + ": connect: " + (ctx ? ctx->errstr : "out of memory"));
      return false;
    }
    redisSetTimeout(ctx, tv);
    return true;
  }
  // One command; nullptr with `error` set when the server cannot be reached or answers an error.
  Reply run(const Args& args, std::string& error) {
    if (!ensure()) {
      error = last_error + " (retrying in " + std::to_string(backoff.count()) + " ms)";
      return nullptr;
    }
    argv.clear();
    len.clear();
    for (const auto& a : args.parts()) {
      argv.push_back(a.data());
      len.push_back(a.size());
    }
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), len.data())));
    if (!r) {
      failed("redis " + where() + ": " + (ctx->errstr[0] ? ctx->errstr : "connection lost"));
      error = last_error;
      return nullptr;
    }
    backoff = std::chrono::milliseconds(0);
    if (r->type == REDIS_REPLY_ERROR) {
      error = "redis " + where() + ": " + std::string(text(r.get()));
      return nullptr;
    }
    return r;
  }
};

RedisFleet::RedisFleet(RedisFleetConfig config)
    : config_(std::move(config)),
      instance_(config_.instance.empty() ? default_instance() : config_.instance),
      prefix_("halo:fleet:" + config_.service + ":"),
      conn_(std::make_unique<Connection>(config_)) {
  auto bad = [](const std::string& field, const std::string& value, const char* expected) {
    throw std::invalid_argument("halo::RedisFleetConfig: " + field + " = '" + value +
                                "': expected " + expected);
  };
  if (config_.service.empty() || has_space(config_.service))
    bad("service", config_.service, "a non-empty name without whitespace");
  if (has_space(instance_)) bad("instance", instance_, "a name without whitespace");
  if (config_.port < 1 || config_.port > 65535)
    bad("port", std::to_string(config_.port), "1..65535");
  for (auto [field, v] :
       {std::pair{"verdict_ttl", config_.verdict_ttl}, std::pair{"lease_ttl", config_.lease_ttl},
        std::pair{"timeout", config_.timeout}, std::pair{"reconnect_base", config_.reconnect_base}})
    if (v.count() <= 0) bad(field, std::to_string(v.count()) + " ms", "> 0");
  if (config_.reconnect_max < config_.reconnect_base)
    bad("reconnect_max", std::to_string(config_.reconnect_max.count()) + " ms",
        ">= reconnect_base");
}

RedisFleet::~RedisFleet() = default;

namespace {

const redisReply* element(const redisReply* r, std::size_t i) {
  return r != nullptr && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : nullptr;
}

std::size_t size(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

}  // namespace

FleetSyncResult RedisFleet::sync(const std::vector<FleetVerdict>& verdicts,
                                 const std::vector<FleetLease>& held) {
  Args a;
  a << "EVAL" << kSyncScript << "0" << prefix_ << instance_
    << static_cast<long long>(config_.verdict_ttl.count())
    << static_cast<long long>(config_.lease_ttl.count()) << static_cast<long long>(verdicts.size());
  for (const auto& v : verdicts) a << v.subject << (v.unhealthy ? "1" : "0");
  a << static_cast<long long>(held.size());
  for (const auto& l : held) a << l.subject << static_cast<long long>(l.token);

  FleetSyncResult out;
  std::lock_guard lock(mu_);
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  Reply r = conn_->run(a, out.error);
  if (!r) return out;
  const redisReply* peers = element(r.get(), 0);
  const redisReply* views = element(r.get(), 1);
  const redisReply* renewed = element(r.get(), 2);
  const redisReply* live = element(r.get(), 3);
  if (size(views) != 3 * verdicts.size() || size(renewed) != held.size()) {
    out.error = "redis " + conn_->where() + ": unexpected reply to the fleet's sync script";
    return out;
  }
  for (std::size_t i = 0; i < size(peers); ++i) out.peers.emplace_back(text(element(peers, i)));
  out.views.resize(verdicts.size());
  for (std::size_t k = 0; k < verdicts.size(); ++k) {
    auto& v = out.views[k];
    v.reporters = static_cast<std::uint32_t>(integer(element(views, 3 * k)));
    v.unhealthy = static_cast<std::uint32_t>(integer(element(views, 3 * k + 1)));
    v.holder.assign(text(element(views, 3 * k + 2)));
  }
  out.renewed.resize(held.size());
  for (std::size_t k = 0; k < held.size(); ++k) out.renewed[k] = integer(element(renewed, k)) == 1;
  for (std::size_t j = 0; j + 1 < size(live); j += 2) {
    FleetSilence s;
    if (detail::decode_silence(text(element(live, j)), text(element(live, j + 1)), s))
      out.silences.push_back(std::move(s));
  }
  out.ok = true;
  return out;
}

FleetExchangeResult RedisFleet::exchange(const std::vector<FleetOutcome>& outcomes,
                                         const std::vector<std::string>& claims,
                                         const FleetRails& rails) {
  Args a;
  a << "EVAL" << kExchangeScript << "0" << prefix_ << instance_
    << static_cast<long long>(config_.lease_ttl.count())
    << static_cast<long long>(rails.max_repairs)
    << static_cast<long long>(std::max<long long>(1, rails.budget_window.count()))
    << rails.repairs_per_second << static_cast<long long>(rails.repair_burst)
    << static_cast<long long>(std::max<long long>(1, rails.breaker_window.count()))
    << static_cast<long long>(rails.breaker_min_repairs) << rails.breaker_failure_ratio
    << static_cast<long long>(outcomes.size());
  for (const auto& o : outcomes)
    a << o.lease.subject << static_cast<long long>(o.lease.token) << (o.healed ? "1" : "0");
  a << static_cast<long long>(claims.size());
  for (const auto& c : claims) a << c;

  FleetExchangeResult out;
  std::lock_guard lock(mu_);
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  Reply r = conn_->run(a, out.error);
  if (!r) return out;
  const redisReply* accepted = element(r.get(), 0);
  const redisReply* granted = element(r.get(), 1);
  if (size(accepted) != outcomes.size() || size(granted) != 2 * claims.size()) {
    out.error = "redis " + conn_->where() + ": unexpected reply to the fleet's exchange script";
    return out;
  }
  out.accepted.resize(outcomes.size());
  for (std::size_t k = 0; k < outcomes.size(); ++k)
    out.accepted[k] = integer(element(accepted, k)) == 1;
  out.claims.resize(claims.size());
  for (std::size_t k = 0; k < claims.size(); ++k) {
    const long long code = integer(element(granted, 2 * k));
    const std::string_view detail = text(element(granted, 2 * k + 1));
    auto& c = out.claims[k];
    c.refusal =
        code >= 0 && code <= 5 ? static_cast<FleetRefusal>(code) : FleetRefusal::kHeldElsewhere;
    if (c.refusal == FleetRefusal::kNone)
      c.token = to_u64(detail);
    else
      c.holder.assign(detail);
  }
  out.ok = true;
  return out;
}

std::string RedisFleet::add_silence(const FleetSilence& silence, std::string& error) {
  FleetSilence s = silence;
  if (s.instance.empty()) s.instance = instance_;
  if (error = detail::silence_unencodable(s); !error.empty()) return {};
  Args a;
  a << "EVAL"
    << "local id = redis.call('INCR', ARGV[1] .. 'silence_seq') "
       "redis.call('HSET', ARGV[1] .. 'silences', id, ARGV[2]) return id"
    << "0" << prefix_ << detail::encode_silence(s);
  std::lock_guard lock(mu_);
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  Reply r = conn_->run(a, error);
  if (!r) return {};
  return std::to_string(integer(r.get()));
}

bool RedisFleet::remove_silence(std::string_view id) {
  Args a;
  a << "HDEL" << prefix_ + "silences" << id;
  std::string error;
  std::lock_guard lock(mu_);
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  Reply r = conn_->run(a, error);
  return r && integer(r.get()) == 1;
}

}  // namespace halo

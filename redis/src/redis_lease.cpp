#include "octo/redis_lease.hpp"

#include <stdexcept>

#include "octo/detail/annotated_mutex.hpp"

#include "detail/connection.hpp"

namespace octo {

namespace {

using detail::Command;
using detail::is_error;
using detail::Reply;
using detail::reply_text;

// The lease's value is "<token> <owner>". KEYS[1] the lease, KEYS[2] its fence counter; ARGV[1]
// the owner, ARGV[2] the TTL in ms. SET NX PX first, so a lost race costs no token.
constexpr std::string_view kAcquire = R"lua(
if not redis.call('SET', KEYS[1], '0 ' .. ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('GET', KEYS[1]) or ''}
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t .. ' ' .. ARGV[1], 'XX', 'KEEPTTL')
return {t, ''}
)lua";
// KEYS[1] the lease; ARGV[1] the token; ARGV[2] what to do while that token holds it: 'renew'
// (with ARGV[3] the TTL in ms), 'release' or 'holds'. 1 when the token held it, else 0.
constexpr std::string_view kWhileHeld = R"lua(
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. ' ' then return 0 end
if ARGV[2] == 'renew' then redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif ARGV[2] == 'release' then redis.call('DEL', KEYS[1]) end
return 1
)lua";

}  // namespace

struct RedisLease::Impl {
  struct Health final : detail::ConnectionHealth {
    std::string last;
    void succeeded() noexcept override {}
    void reconnected() noexcept override {}
    void failed(std::string what) override { last = std::move(what); }
    void pause(std::chrono::milliseconds) override {}
  };

  Impl(RedisStreamsConfig c, std::string o) : cfg(std::move(c)), owner(std::move(o)) {
    if (owner.empty()) owner = detail::process_name();
  }

  std::string key(std::string_view name) const {
    if (name.empty()) throw std::invalid_argument("octo::RedisLease: empty lease name");
    return cfg.stream_prefix + "lease:" + std::string(name);
  }

  // One command; nullptr with `why` set when Redis could not answer.
  Reply run(const Command& c, std::string& why) OCTO_REQUIRES(mu) {
    if (!conn.ensure(false)) {
      why = "redis unavailable: " + health.last;
      return nullptr;
    }
    Reply r = conn.run(c);
    if (!r) why = "redis connection lost: " + health.last;
    return r;
  }

  bool while_held(std::string_view name, std::uint64_t token, std::string_view what,
                  std::chrono::milliseconds ttl = {}) {
    const std::string k = key(name);
    Command c;
    c << "EVAL" << kWhileHeld << "1" << k << token << what;
    if (what == "renew") c << static_cast<std::uint64_t>(std::max<std::int64_t>(1, ttl.count()));
    octo::detail::LockGuard lock(mu);
    std::string why;
    Reply r = run(c, why);
    return r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  }

  RedisStreamsConfig cfg;
  std::string owner;
  octo::detail::Mutex mu;
  Health health OCTO_GUARDED_BY(mu);
  detail::Connection conn OCTO_GUARDED_BY(mu){cfg, health};
};

RedisLease::RedisLease(RedisStreamsConfig connection, std::string owner)
    : impl_(std::make_unique<Impl>(std::move(connection), std::move(owner))) {}

RedisLease::~RedisLease() = default;

LeaseResult RedisLease::acquire(std::string_view name, std::chrono::milliseconds ttl) {
  if (ttl.count() < 1) {
    throw std::invalid_argument("octo::RedisLease: lease '" + std::string(name) +
                                "' needs a TTL of at least 1 ms (got " +
                                std::to_string(ttl.count()) + " ms)");
  }
  const std::string k = impl_->key(name);
  LeaseResult out;
  octo::detail::LockGuard lock(impl_->mu);
  Reply r = impl_->run(Command() << "EVAL" << kAcquire << "2" << k << k + ":fence" << impl_->owner
                                 << static_cast<std::uint64_t>(ttl.count()),
                       out.error);
  if (!r) return out;
  if (is_error(r.get()) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    out.error = "lease '" + std::string(name) +
                "': " + (is_error(r.get()) ? std::string(reply_text(r.get())) : "unexpected reply");
    return out;
  }
  out.token = static_cast<std::uint64_t>(r->element[0]->integer);
  if (out.token == 0) {
    const std::string_view v = reply_text(r->element[1]);
    const auto space = v.find(' ');
    out.holder = space == std::string_view::npos ? std::string() : std::string(v.substr(space + 1));
  }
  return out;
}

bool RedisLease::renew(std::string_view name, std::uint64_t token, std::chrono::milliseconds ttl) {
  return token != 0 && impl_->while_held(name, token, "renew", ttl);
}

bool RedisLease::release(std::string_view name, std::uint64_t token) {
  return token != 0 && impl_->while_held(name, token, "release");
}

bool RedisLease::holds(std::string_view name, std::uint64_t token) {
  return token != 0 && impl_->while_held(name, token, "holds");
}

const std::string& RedisLease::owner() const noexcept { return impl_->owner; }

}  // namespace octo

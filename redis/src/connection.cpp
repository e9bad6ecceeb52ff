#include "detail/connection.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace octo::detail {

std::string_view reply_text(const redisReply* r) noexcept {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
               r->type == REDIS_REPLY_ERROR)
             ? std::string_view(r->str, r->len)
             : std::string_view();
}

bool is_error(const redisReply* r) noexcept { return r && r->type == REDIS_REPLY_ERROR; }

std::string process_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] ? host : "host") + "-" + std::to_string(::getpid());
}

void Command::fill(std::vector<const char*>& argv, std::vector<std::size_t>& len) const {
  argv.clear();
  len.clear();
  for (const auto& p : parts_) {
    argv.push_back(p.data());
    len.push_back(p.size());
  }
}

std::chrono::milliseconds Connection::io_timeout() const noexcept {
  // A blocking read waits up to `block` on the server, plus room for the network.
  return cfg_.block + std::chrono::seconds(2);
}

void Connection::drop() noexcept {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

bool Connection::ensure(bool wait) {
  if (ctx_) return true;
  const timeval connect_tv{1, 0};
  ctx_ = redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, connect_tv);
  if (ctx_ && ctx_->err == 0) {
    const auto io = std::chrono::duration_cast<std::chrono::microseconds>(io_timeout());
    const timeval io_tv{static_cast<time_t>(io.count() / 1'000'000),
                        static_cast<suseconds_t>(io.count() % 1'000'000)};
    redisSetTimeout(ctx_, io_tv);
    // A frozen (SIGSTOPped) or wedged server still completes TCP handshakes in its kernel: only
    // an answer says it is there. read() reports the failure and drops the connection.
    Reply pong = run(Command() << "PING");
    if (pong && reply_text(pong.get()) == "PONG") {
      backoff_ = std::chrono::milliseconds(0);
      if (ever_connected_) health_.reconnected();
      ever_connected_ = true;
      return true;
    }
    if (pong) {
      health_.failed("connect " + cfg_.host + ":" + std::to_string(cfg_.port) +
                     ": PING answered '" + std::string(reply_text(pong.get())) + "'");
      drop();
    }
  } else {
    health_.failed(std::string("connect ") + cfg_.host + ":" + std::to_string(cfg_.port) + ": " +
                   (ctx_ ? ctx_->errstr : "out of memory"));
    drop();
  }
  backoff_ = std::clamp(backoff_ * 2, cfg_.reconnect_base, cfg_.reconnect_max);
  if (wait) health_.pause(backoff_);
  return false;
}

void Connection::append(const Command& c) {
  c.fill(argv_, len_);
  redisAppendCommandArgv(ctx_, c.argc(), argv_.data(), len_.data());
}

Reply Connection::read() {
  void* r = nullptr;
  errno = 0;
  if (redisGetReply(ctx_, &r) != REDIS_OK || r == nullptr) {
    const int err = errno;
    if (ctx_->err == REDIS_ERR_IO && (err == EAGAIN || err == EWOULDBLOCK)) {
      health_.failed("redis " + cfg_.host + ":" + std::to_string(cfg_.port) + ": no reply within " +
                     std::to_string(io_timeout().count()) +
                     " ms (command timeout: the server is frozen, overloaded or unreachable)");
    } else {
      health_.failed(std::string("redis I/O: ") + (ctx_->errstr[0] ? ctx_->errstr : "no reply"));
    }
    drop();
    return nullptr;
  }
  health_.succeeded();
  return Reply(static_cast<redisReply*>(r));
}

Reply Connection::run(const Command& c) {
  if (!ctx_) return nullptr;
  append(c);
  return read();
}

}  // namespace octo::detail

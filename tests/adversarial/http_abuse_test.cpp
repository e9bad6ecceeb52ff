// Clients that try to take the HTTP server down, over raw sockets: huge, chunked and compressed
// bodies, header floods, bodies without a token, idle and half-sent requests by the hundred.
// Each once worked against the previous server (cpp-httplib): a 10 MB chunked body was
// accepted, 24 MB of headers too, 100 idle connections made GET /status wait 18-40 s and
// stop() wait for them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "halo/http/server.hpp"
#include "manual_state.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;

struct Rig : octo_test::ManualState {
  std::unique_ptr<halo::Engine> engine;
  std::unique_ptr<halo::HttpServer> http;
  explicit Rig(halo::HttpConfig config = {}) {
    engine = std::make_unique<halo::Engine>(state, halo::EngineConfig{});
    config.port = 0;
    if (config.token.empty()) config.token = "s3cret";
    http = std::make_unique<halo::HttpServer>(config, *engine);
    http->start();
  }
};

// A blocking client socket with a receive timeout (a bound for a failing test, not a wait).
class Conn {
 public:
  explicit Conn(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    const timeval tv{20, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Conn() { ::close(fd_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  bool connected() const { return connected_; }
  // False once the server has closed its side (the write fails; no SIGPIPE).
  bool send(std::string_view s) {
    while (!s.empty()) {
      const auto n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Everything until the server closes (or the receive timeout): the response(s).
  std::string read_all() {
    std::string out;
    char buf[4096];
    for (;;) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  // The status code of the first response ("HTTP/1.1 413 ..."), 0 if none came.
  int status() {
    const std::string r = read_all();
    return r.size() > 12 && r.starts_with("HTTP/1.1 ") ? std::stoi(r.substr(9, 3)) : 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string chunked(std::size_t total, std::size_t chunk) {
  std::string out;
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk);
  const std::string piece = std::string(size) + std::string(chunk, 'x') + "\r\n";
  for (std::size_t sent = 0; sent < total; sent += chunk) out += piece;
  return out;
}

TEST(HttpAbuse, AChunkedBodyIsBoundedLikeAnyOther) {
  Rig rig;
  Conn c(rig.http->port());
  ASSERT_TRUE(c.connected());
  c.send(
      "POST /trigger HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
      "Transfer-Encoding: chunked\r\n\r\n");
  c.send(chunked(10 * 1024 * 1024, 16 * 1024));  // stops once the server has closed
  EXPECT_EQ(c.status(), 413);
}

TEST(HttpAbuse, AMutatingRequestWithoutTheTokenIsRefusedBeforeItsBodyIsRead) {
  Rig rig;
  {
    // The head only: a server that read the body first would wait for it (and 200 MB of it once
    // grew the previous server by 250 MB before its 401).
    Conn c(rig.http->port());
    c.send("POST /trigger HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string r = c.read_all();
    EXPECT_TRUE(r.starts_with("HTTP/1.1 401")) << r;
    EXPECT_NE(r.find("WWW-Authenticate: Bearer"), std::string::npos) << r;
  }
  {
    // No body and no Content-Length: answered at once (it once waited 5 s, then said 400).
    Conn c(rig.http->port());
    c.send("POST /approve/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(c.status(), 401);
  }
  {
    Conn c(rig.http->port());
    c.send("POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n");
    EXPECT_EQ(c.status(), 404);
  }
  {
    Conn c(rig.http->port());
    c.send("GET /trigger HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(c.status(), 405);
  }
}

TEST(HttpAbuse, CompressedBodiesAndHeaderFloodsAreRefused) {
  Rig rig;
  {
    Conn c(rig.http->port());
    c.send(
        "POST /trigger HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
        "Content-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd");
    EXPECT_EQ(c.status(), 415);
  }
  {
    Conn c(rig.http->port());
    std::string head = "GET /status HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 20'000; ++i) head += "X-Flood-" + std::to_string(i) + ": y\r\n";
    c.send(head + "\r\n");
    EXPECT_EQ(c.status(), 431);
  }
  {
    Conn c(rig.http->port());
    c.send("NOT HTTP AT ALL\r\n\r\n");
    EXPECT_EQ(c.status(), 400);
  }
}

TEST(HttpAbuse, AHalfSentRequestIsCutOffAtTheRequestTimeout) {
  Rig rig(halo::HttpConfig{.request_timeout = 200ms});
  Conn c(rig.http->port());
  c.send("GET /status HTTP/1.1\r\nHost: x\r\n");  // the head never ends
  EXPECT_EQ(c.read_all(), "") << "closed without an answer";
}

TEST(HttpAbuse, IdleAndSlowClientsNeitherStarveRequestsNorHoldUpStop) {
  Rig rig;
  std::vector<std::unique_ptr<Conn>> abusers;
  for (int i = 0; i < 200; ++i) abusers.push_back(std::make_unique<Conn>(rig.http->port()));
  for (int i = 0; i < 20; ++i) {
    abusers.push_back(std::make_unique<Conn>(rig.http->port()));
    abusers.back()->send("GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n");  // and no more
  }
  for (const auto& a : abusers) ASSERT_TRUE(a->connected());
  httplib::Client cli("127.0.0.1", rig.http->port());
  cli.set_read_timeout(20, 0);
  for (int i = 0; i < 5; ++i) {
    auto r = cli.Get("/status");
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
  }
  rig.http->stop();  // with all 220 still connected
  // Every abuser's connection was closed by stop().
  for (const auto& a : abusers) EXPECT_EQ(a->read_all().find("HTTP/1.1 2"), std::string::npos);
}

}  // namespace

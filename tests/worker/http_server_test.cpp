#include "yw/worker/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "yw/common/error.hpp"

namespace yw::worker {
namespace {

std::string request(int port, const std::string& raw) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(s);
    return "";
  }
  ::send(s, raw.data(), raw.size(), 0);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(s, buf, sizeof buf, 0)) > 0)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(s);
  return out;
}

TEST(HttpServerTest, ServesRoutesAndRefusesTheRest) {
  int ready_calls = 0;
  HttpServer server("127.0.0.1:0",
                    {{"/healthz",
                      [] {
                        return HttpResponse{200, "text/plain", "ok\n"};
                      }},
                     {"/readyz", [&] {
                        ++ready_calls;
                        return HttpResponse{503, "text/plain", "database unreachable\n"};
                      }}});
  ASSERT_GT(server.port(), 0);
  std::string r = request(server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\nok\n")) << r;
  EXPECT_NE(r.find("Content-Length: 3"), std::string::npos) << r;
  r = request(server.port(), "GET /readyz?verbose=1 HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 503")) << r;
  EXPECT_EQ(ready_calls, 1);
  EXPECT_TRUE(request(server.port(), "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(request(server.port(), "POST /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
  EXPECT_TRUE(request(server.port(), "garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
  r = request(server.port(), "HEAD /healthz HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(r.ends_with("\r\n\r\n")) << "HEAD has no body: " << r;
}

TEST(HttpServerTest, ABusyPortIsAClearError) {
  HttpServer first("127.0.0.1:0", {});
  try {
    HttpServer second("127.0.0.1:" + std::to_string(first.port()), {});
    FAIL() << "binding a busy port must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace yw::worker

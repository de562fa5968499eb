#include "yw/worker/http_server.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"

namespace yw::worker {
namespace {

constexpr std::size_t kMaxRequestBytes = 8192;
constexpr int kReadTimeoutMs = 2000;

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 400:
      return "Bad Request";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

void send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

struct HttpServer::Impl {
  int fd = -1;
  int port = 0;
  int wake[2] = {-1, -1};
  std::map<std::string, Handler> routes;
  std::thread thread;

  void serve(int client) {
    std::string req;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadTimeoutMs);
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < kMaxRequestBytes) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return;
      pollfd p{client, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) return;
      char buf[2048];
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<std::size_t>(n));
    }
    HttpResponse resp;
    bool head = false;
    const auto line_end = req.find("\r\n");
    const std::string line = req.substr(0, line_end);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) {
      resp = {400, "text/plain; charset=utf-8", "bad request\n"};
    } else {
      const std::string method = line.substr(0, sp1);
      std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
      path = path.substr(0, path.find('?'));
      head = method == "HEAD";
      const auto it = routes.find(path);
      if (method != "GET" && !head) {
        resp = {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
      } else if (it == routes.end()) {
        resp = {404, "text/plain; charset=utf-8", "not found\n"};
      } else {
        try {
          resp = it->second();
        } catch (const std::exception& e) {
          resp = {500, "text/plain; charset=utf-8", fmt::format("error: {}\n", e.what())};
        }
      }
    }
    send_all(client,
             fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                         "Connection: close\r\n\r\n",
                         resp.status, reason(resp.status), resp.content_type, resp.body.size()));
    if (!head) send_all(client, resp.body);
  }

  void loop() {
    while (true) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if ((fds[1].revents & POLLIN) != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const int client = ::accept(fd, nullptr, nullptr);
      if (client < 0) continue;
      serve(client);
      ::close(client);
    }
  }
};

HttpServer::HttpServer(const std::string& address, std::map<std::string, Handler> routes)
    : impl_(std::make_unique<Impl>()) {
  impl_->routes = std::move(routes);
  const auto colon = address.rfind(':');
  YW_CHECK(colon != std::string::npos, "metrics: address '{}' is not host:port", address);
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (const int rc =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    YW_THROW("metrics: cannot resolve '{}': {}", address, gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int s = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) continue;
    const int one = 1;
    ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(s, 16) == 0) {
      impl_->fd = s;
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      ::getsockname(s, reinterpret_cast<sockaddr*>(&bound), &len);
      impl_->port = bound.ss_family == AF_INET6
                        ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      break;
    }
    last_error = std::strerror(errno);
    ::close(s);
  }
  ::freeaddrinfo(res);
  YW_CHECK(impl_->fd >= 0, "metrics: cannot listen on {}: {}", address, last_error);
  YW_CHECK(::pipe2(impl_->wake, O_CLOEXEC) == 0, "metrics: pipe failed");
  impl_->thread = std::thread([impl = impl_.get()] { impl->loop(); });
}

HttpServer::~HttpServer() {
  if (impl_->wake[1] >= 0) {
    const char c = 'x';
    [[maybe_unused]] const ssize_t n = ::write(impl_->wake[1], &c, 1);
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  for (const int fd : {impl_->fd, impl_->wake[0], impl_->wake[1]})
    if (fd >= 0) ::close(fd);
}

int HttpServer::port() const {
  return impl_->port;
}

}  // namespace yw::worker

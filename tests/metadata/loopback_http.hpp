#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for storage tests: one connection at a time, one request per
// connection (it answers with `Connection: close`). Each test installs a handler that sees the
// parsed request and chooses the response, including misbehaviour (a stalled body).
#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace yw::test {

struct HttpRequest {
  std::string method;
  std::string target;                          // path and query exactly as sent
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Send no Content-Length (the body ends when the connection closes).
  bool omit_length = false;
  // When >= 0: send the headers and this many body bytes, then keep the connection open and silent
  // until the server stops (a stalled transfer).
  long stall_after = -1;
};

class LoopbackHttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit LoopbackHttpServer(Handler handler);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }

 private:
  void serve();
  void handle(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace yw::test
